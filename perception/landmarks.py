"""Face landmarks from MediaPipe's face mesh (the detector and 478-point models in the wheel).

`FaceMeshLandmarker.detect(frame)` returns a `Face` (points in pixels) or ``None`` when no face
is in the frame. The models run offline from the mediapipe wheel; nothing is downloaded.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol, runtime_checkable

import numpy as np

from perception.frames import Frame
from perception.quiet import filter_native_logs

N_POINTS = 478  # 468 mesh points + 10 iris points (refined landmarks)
N_MESH_POINTS = 468  # without iris refinement

# one NormalizedLandmark on the wire when only x, y, z are set: tag, length, 3 × (tag, float32)
_WIRE = np.dtype([("tag", "u1"), ("len", "u1"), ("tx", "u1"), ("x", "<f4"), ("ty", "u1"),
                  ("y", "<f4"), ("tz", "u1"), ("z", "<f4")])


@dataclass(frozen=True, slots=True)
class Face:
    """One face in one frame.

    ``points`` is (478, 3) float64 in pixels: x right, y down, z away from the camera on the same
    scale as x (MediaPipe's convention). ``blendshapes`` is set only by the Tasks source.
    """

    points: np.ndarray
    width: int
    height: int
    blendshapes: Mapping[str, float] | None = None


@runtime_checkable
class Landmarker(Protocol):
    name: str

    def detect(self, frame: Frame) -> Face | None: ...

    def close(self) -> None: ...


def normalized_to_pixels(xyz: np.ndarray, width: int, height: int) -> np.ndarray:
    out = xyz.astype(np.float64, copy=True)
    out[:, 0] *= width
    out[:, 1] *= height
    out[:, 2] *= width
    return out


def wire_to_array(raw: bytes) -> np.ndarray | None:
    """(N, 3) coordinates from a serialized NormalizedLandmarkList, or None if its landmarks
    carry more than x, y, z (then the caller takes the slow path)."""
    if not raw or len(raw) % _WIRE.itemsize:
        return None
    rows = np.frombuffer(raw, dtype=_WIRE)
    if (np.all(rows["tag"] == 0x0A) and np.all(rows["len"] == 15)
            and np.all(rows["tx"] == 0x0D) and np.all(rows["ty"] == 0x15)
            and np.all(rows["tz"] == 0x1D)):
        return np.stack([rows["x"], rows["y"], rows["z"]], axis=1).astype(np.float64)
    return None


def landmark_list_to_array(landmarks: Any) -> np.ndarray:
    """(N, 3) normalised coordinates of a NormalizedLandmarkList message."""
    fast = wire_to_array(landmarks.SerializeToString())
    if fast is not None:
        return fast
    return np.array([(p.x, p.y, p.z) for p in landmarks.landmark], dtype=np.float64)


class FaceMeshLandmarker:
    """MediaPipe face mesh (legacy solution API), one face, tracking mode; with iris refinement
    (478 points) unless ``iris=False`` (468 points, gaze from the head alone).

    ``fast=True`` feeds the solution's graph directly and reads the landmarks' serialized bytes
    (skipping ``process()``'s per-call namedtuple and protobuf objects, ~0.3 ms a frame); it
    uses attributes private to mediapipe 0.10.21's ``SolutionBase`` and falls back to
    ``process()`` when they are absent.
    """

    name = "face_mesh"
    OUTPUT = "multi_face_landmarks"

    def __init__(self, *, static_images: bool = False, min_detection_confidence: float = 0.5,
                 min_tracking_confidence: float = 0.5, fast: bool = True,
                 iris: bool = True) -> None:
        from mediapipe.python.solutions import face_mesh

        self._points = N_POINTS if iris else N_MESH_POINTS
        filter_native_logs()
        self._mesh = face_mesh.FaceMesh(
            static_image_mode=static_images, max_num_faces=1, refine_landmarks=iris,
            min_detection_confidence=min_detection_confidence,
            min_tracking_confidence=min_tracking_confidence)
        self._feed: Any = None
        if fast:
            self._feed = self._fast_feed()

    def _fast_feed(self) -> Any:
        mesh = self._mesh
        try:
            from mediapipe.python import packet_creator
            from mediapipe.python._framework_bindings import _packet_getter, image_frame

            graph, outputs = mesh._graph, mesh._graph_outputs
            (stream,) = mesh._input_stream_type_info.keys()
            _ = mesh._simulated_timestamp
            serialized = _packet_getter._get_serialized_proto_list
        except (AttributeError, ImportError, ValueError):
            return None
        srgb = image_frame.ImageFormat.SRGB

        def feed(image: np.ndarray) -> np.ndarray | None:
            outputs.clear()
            mesh._simulated_timestamp += 33333  # what process() does: a 30 fps clock
            packet = packet_creator.create_image_frame(image, image_format=srgb)
            graph.add_packet_to_input_stream(stream=stream,
                                             packet=packet.at(mesh._simulated_timestamp))
            graph.wait_until_idle()
            out = outputs.get(self.OUTPUT)
            if out is None or out.is_empty():
                return None
            faces = serialized(out)
            if not faces:
                return None
            xyz = wire_to_array(faces[0])
            if xyz is None:  # landmarks with extra fields: parse them properly
                from mediapipe.framework.formats import landmark_pb2

                xyz = landmark_list_to_array(landmark_pb2.NormalizedLandmarkList.FromString(
                    faces[0]))
            return xyz

        return feed

    def _slow_feed(self, image: np.ndarray) -> np.ndarray | None:
        faces = self._mesh.process(image).multi_face_landmarks
        return landmark_list_to_array(faces[0]) if faces else None

    def detect(self, frame: Frame) -> Face | None:
        image = frame.image
        height, width = image.shape[:2]
        xyz = self._feed(image) if self._feed is not None else self._slow_feed(image)
        if xyz is None or xyz.shape[0] != self._points:
            return None
        return Face(normalized_to_pixels(xyz, width, height), width, height)

    def close(self) -> None:
        self._mesh.close()

    def __enter__(self) -> FaceMeshLandmarker:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
