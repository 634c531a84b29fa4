"""``velocity sentinel …``: score a recorded session, or run live from a camera or a video."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Annotated, Any

import typer

app = typer.Typer(help="Sentinel: on-device face perception → engagement features → QD.",
                  no_args_is_help=True, add_completion=False)

ConsentOpt = Annotated[str | None, typer.Option(
    "--consent", help="The visitor's consent reference (e.g. the signed form's id). Required: "
    "nothing is analysed without it.", envvar="VELOCITY_SENTINEL_CONSENT")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the session result as JSON.",
                                       envvar="VELOCITY_SENTINEL_JSON")]
FpsOpt = Annotated[float | None, typer.Option(help="Frames analysed per second.",
                                              envvar="VELOCITY_SENTINEL_FPS")]
OnnxOpt = Annotated[Path | None, typer.Option(
    "--onnx-model", help="A tenant's ONNX scorer.", envvar="VELOCITY_SENTINEL_ONNX_MODEL")]
TaskOpt = Annotated[Path | None, typer.Option(
    "--face-landmarker-task", help="face_landmarker.task bundle for blendshapes.",
    envvar="VELOCITY_SENTINEL_FACE_LANDMARKER_TASK")]


def _settings(**overrides: Any) -> Any:
    from perception.settings import load_sentinel_settings

    return load_sentinel_settings(**{k: v for k, v in overrides.items() if v is not None})


def _fail(message: str, code: int = 1) -> typer.Exit:
    from rich.console import Console

    Console(stderr=True).print(f"[red]error:[/red] {message}", highlight=False)
    return typer.Exit(code)


def _gate(consent: str | None, session_id: str) -> Any:
    from perception.consent import InMemoryConsentGate

    if not consent or not consent.strip():
        raise _fail("no consent record for this session: pass --consent REF (the visitor's "
                    "consent reference); Sentinel analyses nothing without it", 2)
    gate = InMemoryConsentGate()
    gate.grant(session_id, consent)
    return gate


def _print_result(result: Any, as_json: bool) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if as_json:
        console.print_json(result.model_dump_json())
        return
    console.print(f"[bold]QD {result.qd}[/bold]  (engagement {result.engagement:.2f}, "
                  f"{result.scorer}, {result.feature_source})")
    console.print(f"frames {result.frames_seen}, with a face {result.frames_with_face}, "
                  f"{result.duration_s:.1f} s, dwell {result.summary.dwell_s:.1f} s, "
                  f"attention {result.summary.attention:.2f}, smile {result.summary.smile:.2f}")
    if result.signals:
        table = Table("at", "signal", "strength")
        for s in result.signals:
            table.add_row(s.at, s.label, f"{s.strength:.2f}")
        console.print(table)
    else:
        console.print("no signals")


def _run(session_id: str, source: Any, gate: Any, settings: Any, live: bool) -> Any:
    from perception.session import Pipeline, run_session

    pipeline = Pipeline.from_settings(settings)
    if not live:
        return run_session(session_id, source, gate, pipeline)
    from rich.console import Console
    from rich.live import Live

    from perception.scoring import mmss

    console = Console()
    with Live(console=console, refresh_per_second=8, transient=False) as view:
        def show(f: Any, scorer: Any) -> None:
            face = "face" if f.present else "no face"
            view.update(f"{mmss(f.t)}  QD {scorer.current_qd():3d}  {face:7s}  "
                        f"attention {f.attention:.2f}  smile {f.smile:.2f}  "
                        f"yaw {f.head_yaw:+5.1f}°")

        return run_session(session_id, source, gate, pipeline, on_frame=show)


@app.command()
def score(
    file: Annotated[Path, typer.Argument(help="A recorded video of the session.")],
    consent: ConsentOpt = None,
    as_json: JsonOpt = False,
    fps: FpsOpt = None,
    onnx_model: OnnxOpt = None,
    face_landmarker_task: TaskOpt = None,
    session: Annotated[str | None, typer.Option(help="Session id (default: a new one).",
                                                envvar="VELOCITY_SENTINEL_SESSION")] = None,
) -> None:
    """Print a session's QD and signals from a recorded video (frames stay in memory)."""
    from core.errors import VelocityError
    from perception.frames import VideoFileSource

    session_id = session or uuid.uuid4().hex
    gate = _gate(consent, session_id)
    try:
        settings = _settings(fps=fps, onnx_model=onnx_model,
                             face_landmarker_task=face_landmarker_task)
        source = VideoFileSource(file, max_fps=settings.fps)
        result = _run(session_id, source, gate, settings, live=False)
    except VelocityError as exc:
        raise _fail(str(exc)) from None
    _print_result(result, as_json)


@app.command()
def run(
    camera: Annotated[int | None, typer.Option(help="Camera device index.",
                                               envvar="VELOCITY_SENTINEL_CAMERA")] = None,
    video: Annotated[Path | None, typer.Option(help="A video file, played as if live.",
                                               envvar="VELOCITY_SENTINEL_VIDEO")] = None,
    consent: ConsentOpt = None,
    as_json: JsonOpt = False,
    fps: FpsOpt = None,
    onnx_model: OnnxOpt = None,
    face_landmarker_task: TaskOpt = None,
    frames: Annotated[int | None, typer.Option(help="Stop after this many frames.",
                                               envvar="VELOCITY_SENTINEL_FRAMES")] = None,
) -> None:
    """Run live on a camera or a video, showing a live QD line; Ctrl-C ends the session."""
    from core.errors import VelocityError
    from perception.frames import CameraSource, VideoFileSource

    if (camera is None) == (video is None):
        raise _fail("give exactly one of --camera N or --video FILE", 2)
    session_id = uuid.uuid4().hex
    gate = _gate(consent, session_id)
    try:
        settings = _settings(fps=fps, onnx_model=onnx_model,
                             face_landmarker_task=face_landmarker_task)
        source: Any
        if camera is not None:
            source = CameraSource(camera, settings.camera_width, settings.camera_height,
                                  settings.fps, max_frames=frames)
        else:
            assert video is not None
            source = VideoFileSource(video, max_fps=settings.fps)
            if frames is not None:
                source = _Limited(source, frames)
        result = _run(session_id, source, gate, settings, live=True)
    except VelocityError as exc:
        raise _fail(str(exc)) from None
    except KeyboardInterrupt:
        raise _fail("interrupted: the session was not scored", 130) from None
    _print_result(result, as_json)


class _Limited:
    """The first ``n`` frames of a source."""

    def __init__(self, source: Any, n: int) -> None:
        self._source, self._n = source, n

    def __iter__(self) -> Any:
        for i, frame in enumerate(self._source):
            if i >= self._n:
                return
            yield frame

    def close(self) -> None:
        self._source.close()
