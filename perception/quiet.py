"""Keep MediaPipe's native start-up chatter (TensorFlow Lite, absl) off the terminal."""

from __future__ import annotations

import atexit
import os
import re
import sys
import threading

THIRD_PARTY_LOGS_ENV = "VELOCITY_LOG_THIRD_PARTY"
# absl's info and warning lines ("W0000 00:00:… file.cc:114] …") and TF Lite's banners; absl's
# errors and fatal lines ("E…", "F…") and anything else pass through.
_NOISE = re.compile(rb"^(?:[IW]\d{4} \S+ +\d+ \S+\] |INFO: Created TensorFlow Lite |"
                    rb"WARNING: All log messages before absl::InitializeLog\(\))")
_lock = threading.Lock()
_installed = False


def is_noise(line: bytes) -> bool:
    """Whether a line written by native code is start-up chatter rather than an error."""
    return _NOISE.match(line) is not None


def filter_native_logs() -> None:
    """Route file descriptor 2 through a filter that drops native chatter (once per process).

    MediaPipe's C++ graph logs through absl before anything can configure it (no environment
    variable reaches it) and from its own threads, after the calls that cause it return. Python's
    ``sys.stderr`` is re-opened on the real stderr, so tracebacks never depend on the filter;
    native lines that are not chatter are copied through. ``VELOCITY_LOG_THIRD_PARTY=1`` keeps
    everything.
    """
    global _installed
    with _lock:
        if _installed or os.environ.get(THIRD_PARTY_LOGS_ENV, "").lower() in {"1", "true", "yes"}:
            return
        _installed = True
        sys.stderr.flush()
        real = os.dup(2)
        sys.stderr = open(os.dup(real), "w", buffering=1, encoding="utf-8",  # noqa: SIM115
                          errors="backslashreplace")
        read_end, write_end = os.pipe()
        os.dup2(write_end, 2)
        os.close(write_end)
        pump = threading.Thread(target=_pump, args=(read_end, real), daemon=True,
                                name="velocity-native-log-filter")
        pump.start()
        atexit.register(_drain, real, pump)


def _pump(read_end: int, real: int) -> None:
    with os.fdopen(read_end, "rb", buffering=0) as pipe:
        pending = b""
        while chunk := pipe.read(65536):
            pending += chunk
            *lines, pending = pending.split(b"\n")
            out = b"".join(line + b"\n" for line in lines if not is_noise(line))
            if out:
                os.write(real, out)
        if pending and not is_noise(pending):
            os.write(real, pending)


def _drain(real: int, pump: threading.Thread) -> None:
    """At exit: give fd 2 back to the real stderr and copy out what is still in the pipe."""
    os.dup2(real, 2)  # closes the pipe's last write end, so the pump reads to its end
    pump.join(timeout=2)
