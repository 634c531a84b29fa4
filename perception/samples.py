"""Real face photos shipped inside installed packages, and deterministic edits of them.

For tests, the benchmark and demos: no photo is downloaded and none is stored by the project.

- ``astronaut``: Eileen Collins, NASA portrait (scikit-image's ``data.astronaut()``), smiling.
- ``hopper``: Grace Hopper, U.S. Navy portrait (matplotlib's sample data, which the mediapipe
  wheel depends on), closed-mouth expression.

The edits move parts of a real photo the way a face would move (a head turn, mouth corners
drawn in, brows raised, lids lowered) so a test can check a feature moves the right way on a
real face; they are image warps, not new expressions, and the docs say so.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from functools import cache
from pathlib import Path

import numpy as np

PHOTOS = ("astronaut", "hopper")


@cache
def _photo(name: str) -> np.ndarray:
    if name == "astronaut":
        from skimage import data

        image = data.astronaut()
    elif name == "hopper":
        import cv2
        import matplotlib

        path = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise FileNotFoundError(path)
        image = bgr[:, :, ::-1]
    else:
        raise KeyError(f"unknown photo {name!r}; known: {', '.join(PHOTOS)}")
    image = np.ascontiguousarray(image)
    image.setflags(write=False)
    return image


def photo(name: str) -> np.ndarray:
    """A real face photo as RGB uint8 (read-only)."""
    return _photo(name)


def crop_face(image: np.ndarray, points: np.ndarray, size: int = 320,
              margin: float = 1.7) -> np.ndarray:
    """A square crop centred on the face (``points``: landmarks in pixels), ``size`` pixels."""
    import cv2

    centre = points[:, :2].mean(axis=0)
    side = float((points[:, :2].max(axis=0) - points[:, :2].min(axis=0)).max()) * margin
    s = size / side
    m = np.array([[s, 0, size / 2 - centre[0] * s], [0, s, size / 2 - centre[1] * s]],
                 dtype=np.float32)
    return cv2.warpAffine(image, m, (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)


def turn(image: np.ndarray, points: np.ndarray, degrees: float) -> np.ndarray:
    """Simulate a head turn: the face is mapped onto a vertical cylinder and rotated.

    ``points`` are the face's landmarks in ``image``; + turns toward the image's right. Outside
    the cylinder the picture is shifted so the mapping stays continuous.
    """
    import cv2

    h, w = image.shape[:2]
    cx = float(points[234, 0] + points[454, 0]) / 2
    radius = 0.55 * float(np.linalg.norm(points[234, :2] - points[454, :2]))
    a = math.radians(degrees)
    x = np.arange(w, dtype=np.float64)
    s = (x - cx) / radius
    theta = np.arcsin(np.clip(s, -1, 1)) - a
    inside = cx + radius * np.sin(np.clip(theta, -math.pi / 2, math.pi / 2))
    right = x - radius + radius * math.sin(min(math.pi / 2, max(-math.pi / 2, math.pi / 2 - a)))
    left = x + radius + radius * math.sin(min(math.pi / 2, max(-math.pi / 2, -math.pi / 2 - a)))
    src = np.where(s > 1, right, np.where(s < -1, left, inside)).astype(np.float32)
    map_x = np.tile(src, (h, 1))
    map_y = np.tile(np.arange(h, dtype=np.float32)[:, None], (1, w))
    return cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def displace(image: np.ndarray, anchors: np.ndarray, moves: np.ndarray,
             sigma: float) -> np.ndarray:
    """Move the image content at ``anchors`` (N, 2) by ``moves`` (N, 2) pixels, smoothly.

    A Gaussian displacement field of width ``sigma`` around each anchor (backward mapping).
    """
    import cv2

    h, w = image.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    map_x, map_y = xx.copy(), yy.copy()
    for (ax, ay), (dx, dy) in zip(anchors, moves, strict=True):
        weight = np.exp(-((xx - ax - dx) ** 2 + (yy - ay - dy) ** 2) / (2 * sigma ** 2))
        map_x -= dx * weight
        map_y -= dy * weight
    return cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _iod(points: np.ndarray) -> float:
    right = (points[33, :2] + points[133, :2]) / 2
    left = (points[263, :2] + points[362, :2]) / 2
    return float(np.linalg.norm(left - right))


def relax_smile(image: np.ndarray, points: np.ndarray, amount: float = 1.0) -> np.ndarray:
    """Draw the mouth corners in and down (the reverse of AU12, lip corner puller)."""
    iod = _iod(points)
    corners = points[[61, 291], :2]
    centre = points[[13, 14], :2].mean(axis=0)
    inward = (centre - corners) / np.linalg.norm(centre - corners, axis=1, keepdims=True)
    moves = inward * 0.09 * iod * amount + np.array([0.0, 0.07 * iod * amount])
    return displace(image, corners, moves, sigma=0.14 * iod)


def raise_brows(image: np.ndarray, points: np.ndarray, amount: float = 1.0) -> np.ndarray:
    """Lift both eyebrows (AU1 + AU2, inner and outer brow raiser)."""
    iod = _iod(points)
    brows = points[[70, 63, 105, 66, 107, 336, 296, 334, 293, 300], :2]
    moves = np.tile([0.0, -0.10 * iod * amount], (len(brows), 1))
    return displace(image, brows, moves, sigma=0.12 * iod)


def lower_lids(image: np.ndarray, points: np.ndarray, amount: float = 0.5) -> np.ndarray:
    """Lower both upper eyelids toward the lower ones (eyes closing)."""
    iod = _iod(points)
    upper = points[[160, 159, 158, 387, 386, 385], :2]
    lower = points[[144, 145, 153, 373, 374, 380], :2]
    moves = (lower - upper) * amount
    return displace(image, upper, moves, sigma=0.11 * iod)


def place(face: np.ndarray, *, width: int = 640, height: int = 480, scale: float = 1.0,
          dx: float = 0.0, dy: float = 0.0, angle: float = 0.0,
          background: int = 40) -> np.ndarray:
    """``face`` on a plain ``width``×``height`` canvas: scaled, rotated (degrees), shifted."""
    import cv2

    h, w = face.shape[:2]
    fit = min(width / w, height / h) * scale
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, fit)
    m[0, 2] += width / 2 - w / 2 + dx
    m[1, 2] += height / 2 - h / 2 + dy
    return cv2.warpAffine(face, m, (width, height), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT,
                          borderValue=(background, background, background))


def blank(width: int = 640, height: int = 480, value: int = 40) -> np.ndarray:
    return np.full((height, width, 3), value, dtype=np.uint8)


def drift(face: np.ndarray, n: int, *, width: int = 640, height: int = 480,
          scales: Sequence[float] = (0.75, 0.95), shift: float = 60.0,
          angle: float = 6.0) -> Iterator[np.ndarray]:
    """``n`` frames of ``face`` moving smoothly: sideways, up and down, nearer and farther."""
    lo, hi = scales
    for i in range(n):
        phase = 2 * math.pi * i / max(n, 1)
        yield place(face, width=width, height=height,
                    scale=lo + (hi - lo) * (0.5 + 0.5 * math.sin(phase)),
                    dx=shift * math.sin(phase * 2), dy=0.4 * shift * math.cos(phase),
                    angle=angle * math.sin(phase))


def face_crops(name: str = "astronaut", size: int = 320) -> dict[str, np.ndarray]:
    """The photo's face crop and its edits: ``face``, ``relaxed``, ``turned``, ``brows``,
    ``lids`` (each ``size``² RGB). Landmarks for the edits come from a static face mesh."""
    from perception.frames import Frame
    from perception.landmarks import FaceMeshLandmarker

    with FaceMeshLandmarker(static_images=True) as mesh:
        image = photo(name)
        found = mesh.detect(Frame(0, 0.0, np.ascontiguousarray(image)))
        if found is None:
            raise RuntimeError(f"no face found in {name}")
        crop = crop_face(image, found.points, size)
        again = mesh.detect(Frame(0, 0.0, crop))
        if again is None:
            raise RuntimeError(f"no face found in the crop of {name}")
        p = again.points
    return {"face": crop, "relaxed": relax_smile(crop, p), "turned": turn(crop, p, 30.0),
            "brows": raise_brows(crop, p), "lids": lower_lids(crop, p)}


# (start s, end s, what, scale): a visitor's session, with the truth a test can check
SCENARIO = (
    (0.0, 3.0, "relaxed", 0.70),
    (3.0, 5.0, "face", 0.92),  # smiles and leans in
    (5.0, 6.0, "relaxed", 0.70),
    (6.0, 9.5, None, 0.0),  # steps out of view
    (9.5, 12.0, "turned", 0.70),  # back, but turned away from the screen
)


def scenario(fps: float = 10.0, name: str = "astronaut", width: int = 640,
             height: int = 480) -> list[np.ndarray]:
    """Frames of `SCENARIO` at ``fps``, with a little sideways drift throughout."""
    crops = face_crops(name)
    frames = []
    n = round(SCENARIO[-1][1] * fps)
    for i in range(n):
        t = i / fps
        _, _, what, scale = next(s for s in SCENARIO if s[0] <= t < s[1])
        if what is None:
            frames.append(blank(width, height))
            continue
        frames.append(place(crops[what], width=width, height=height, scale=scale,
                            dx=25.0 * math.sin(t), dy=8.0 * math.cos(1.3 * t),
                            angle=3.0 * math.sin(0.7 * t)))
    return frames


def record_scenario(path: Path, fps: float = 10.0, name: str = "astronaut") -> Path:
    """Write `scenario` as a Motion-JPEG AVI: what a kiosk recording looks like to OpenCV.

    This writes a synthetic demo video the caller asked for; a live session never writes.
    """
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (640, 480))
    if not writer.isOpened():
        raise OSError(f"OpenCV cannot write a Motion-JPEG video at {path}")
    try:
        for image in scenario(fps, name):
            writer.write(np.ascontiguousarray(image[:, :, ::-1]))
    finally:
        writer.release()
    return path
