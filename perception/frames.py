"""Frame sources: a camera through OpenCV, a video file, an image sequence, or arrays in memory.

Every source yields `Frame`s: an RGB ``uint8`` array of shape (H, W, 3) and its timestamp in
seconds from the start of the source. Frames exist only in memory: sources read, never write,
and nothing here keeps a frame after yielding it.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Protocol, runtime_checkable

import numpy as np

from core.errors import VelocityError


class SourceError(VelocityError):
    """A frame source could not be opened or read."""

    code = "frame_source"


@dataclass(frozen=True, slots=True)
class Frame:
    index: int  # position in the source (before any skipping)
    t: float  # seconds since the start of the source
    image: np.ndarray  # RGB uint8, (H, W, 3), C-contiguous


@runtime_checkable
class FrameSource(Protocol):
    def __iter__(self) -> Iterator[Frame]: ...

    def close(self) -> None: ...


class _Closing:
    def __enter__(self) -> _Closing:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Release the device or file."""


def as_rgb(image: np.ndarray) -> np.ndarray:
    """A C-contiguous RGB uint8 (H, W, 3) view or copy of an RGB/RGBA/grey image."""
    if image.dtype != np.uint8:
        raise SourceError(f"frames must be uint8, got {image.dtype}")
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    elif image.ndim == 3 and image.shape[2] == 4:
        image = image[:, :, :3]
    elif image.ndim != 3 or image.shape[2] != 3:
        raise SourceError(f"frames must be (H, W, 3) RGB, got shape {image.shape}")
    return np.ascontiguousarray(image)


def _bgr_to_rgb(image: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(image[:, :, ::-1])


class ArraySource(_Closing):
    """Frames already in memory (RGB arrays), stamped at a fixed rate."""

    def __init__(self, images: Iterable[np.ndarray], fps: float = 15.0) -> None:
        if fps <= 0:
            raise SourceError("fps must be positive")
        self._images = images
        self.fps = fps

    def __iter__(self) -> Iterator[Frame]:
        for i, image in enumerate(self._images):
            yield Frame(i, i / self.fps, as_rgb(image))


class ImageSequenceSource(_Closing):
    """Image files (a folder's images in name order, or a list of paths) at a fixed rate."""

    SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")

    def __init__(self, paths: Path | Sequence[Path], fps: float = 15.0) -> None:
        if fps <= 0:
            raise SourceError("fps must be positive")
        if isinstance(paths, Path):
            if not paths.is_dir():
                raise SourceError(f"not a folder of images: {paths}")
            paths = sorted(p for p in paths.iterdir() if p.suffix.lower() in self.SUFFIXES)
        self._paths = list(paths)
        self.fps = fps

    def __iter__(self) -> Iterator[Frame]:
        import cv2

        for i, path in enumerate(self._paths):
            bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if bgr is None:
                raise SourceError(f"cannot read image {path}")
            yield Frame(i, i / self.fps, _bgr_to_rgb(bgr))


class VideoFileSource(_Closing):
    """A recorded video, decoded by OpenCV, sampled down to at most ``max_fps``.

    Timestamps are frame index / the file's frame rate, so they match the video's own timeline.
    """

    def __init__(self, path: Path, max_fps: float | None = None) -> None:
        import cv2

        if not Path(path).is_file():
            raise SourceError(f"no such video file: {path}")
        self._cap = cv2.VideoCapture(str(path))
        if not self._cap.isOpened():
            raise SourceError(f"OpenCV cannot open the video {path}")
        native = float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self.native_fps = native if 0 < native < 1000 else 30.0
        self.fps = min(self.native_fps, max_fps) if max_fps else self.native_fps
        self.frame_count = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self.path = Path(path)

    def __iter__(self) -> Iterator[Frame]:
        step = self.native_fps / self.fps  # ≥ 1: keep a frame whenever we cross a step
        index, next_keep = 0, 0.0
        while True:
            ok, bgr = self._cap.read()
            if not ok:
                return
            if index + 1e-9 >= next_keep:
                next_keep += step
                yield Frame(index, index / self.native_fps, _bgr_to_rgb(bgr))
            index += 1

    def close(self) -> None:
        self._cap.release()


class CameraSource(_Closing):
    """A live camera through OpenCV; timestamps from a monotonic clock since the first frame."""

    def __init__(self, device: int = 0, width: int = 640, height: int = 480,
                 fps: float = 15.0, max_frames: int | None = None) -> None:
        import cv2

        self._cap = cv2.VideoCapture(device)
        if not self._cap.isOpened():
            raise SourceError(f"cannot open camera {device}")
        self._cap.set(cv2.CAP_PROP_FRAME_WIDTH, width)
        self._cap.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
        self._cap.set(cv2.CAP_PROP_FPS, fps)
        self.fps = fps
        self.max_frames = max_frames

    def __iter__(self) -> Iterator[Frame]:
        start: float | None = None
        period = 1.0 / self.fps
        last = -period
        index = yielded = 0
        while self.max_frames is None or yielded < self.max_frames:
            ok, bgr = self._cap.read()
            if not ok:
                raise SourceError("the camera stopped delivering frames")
            now = time.monotonic()
            start = now if start is None else start
            t = now - start
            index += 1
            if t - last < period * 0.95:
                continue  # the camera runs faster than we analyse: drop this one
            last = t
            yield Frame(index - 1, t, _bgr_to_rgb(bgr))
            yielded += 1

    def close(self) -> None:
        self._cap.release()
