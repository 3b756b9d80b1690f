"""llama.cpp's own log output: kept off the terminal unless verbose, remembered for error messages.

llama.cpp reports why a load failed only through its log ("tensor data is not within the file bounds");
the last error lines are kept so a failure can be explained in one line.
"""

from __future__ import annotations

import ctypes
import sys
import threading
from collections import deque

_LEVEL_ERROR = 4  # ggml_log_level: NONE 0, DEBUG 1, INFO 2, WARN 3, ERROR 4, CONT 5
_LEVEL_CONT = 5


class NativeLog:
    """Receives llama.cpp log lines. Prints them to stderr only when ``verbose``."""

    def __init__(self) -> None:
        self.verbose = False
        self._errors: deque[str] = deque(maxlen=20)
        self._lock = threading.Lock()
        self._last_level = 0
        self._callback: object = None  # the ctypes callback, once installed
        self._mtmd_routed = False

    def install(self, verbose: bool) -> None:
        """Route llama.cpp's logging through this object (idempotent; later calls update verbosity)."""
        self.verbose = verbose
        if self._callback is not None:
            return
        import llama_cpp

        @llama_cpp.llama_log_callback
        def callback(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
            self._on_log(level, text)

        self._callback = callback  # keep a reference: ctypes callbacks die with their Python object
        llama_cpp.llama_log_set(callback, ctypes.c_void_p(0))

    def route_mtmd(self) -> None:
        """Send llama.cpp's multimodal library (mtmd, clip) through the same router (idempotent)."""
        if self._callback is None:
            self.install(self.verbose)
        if self._mtmd_routed:
            return
        import llama_cpp.mtmd_cpp as mtmd

        mtmd.mtmd_helper_log_set(self._callback, ctypes.c_void_p(0))  # also sets mtmd_log_set
        self._mtmd_routed = True

    def _on_log(self, level: int, text: bytes) -> None:
        effective = self._last_level if level == _LEVEL_CONT else level
        self._last_level = effective
        line = text.decode("utf-8", errors="replace")
        if effective == _LEVEL_ERROR and line.strip():
            with self._lock:
                self._errors.append(line.strip())
        if self.verbose:
            sys.stderr.write(line)
            sys.stderr.flush()

    def take_errors(self) -> list[str]:
        with self._lock:
            errors = list(self._errors)
            self._errors.clear()
        return errors

    def explain(self) -> str | None:
        """The most specific error llama.cpp logged since the last call (generic summaries skipped)."""
        errors = self.take_errors()
        specific = [e for e in errors if "failed to load model" not in e] or errors
        return specific[-1] if specific else None


native_log = NativeLog()  # llama.cpp's logger is process-wide, so its router is too
