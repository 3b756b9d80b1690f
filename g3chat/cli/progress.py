"""Download progress for people: a Rich bar (bytes, speed, ETA) on a terminal, quiet lines elsewhere.

The core reports :class:`~g3chat.core.models.download.Progress` events; this turns them into output. The
bar never goes backwards: a resumed download starts at the bytes already on disk, and its speed counts only
what this run fetched.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any, TextIO

from g3chat.core.models.download import Progress

MiB = 1 << 20


def is_terminal(stream: TextIO) -> bool:
    return stream.isatty() and os.environ.get("TERM") != "dumb"


class LineReporter:
    """One line at start, every 10 % (at most every 2 s), on a dropped connection, and at the end."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self._file = ""
        self._next_step = 0
        self._last_line = 0.0
        self._started = 0.0
        self._start_bytes = 0

    def _say(self, text: str) -> None:
        self.stream.write(f"g3chat: {text}\n")
        self.stream.flush()

    def __call__(self, event: Progress) -> None:
        total = max(event.total, 1)
        if event.filename != self._file:
            self._file = event.filename
            self._next_step = 0
            self._started = time.monotonic()
            self._start_bytes = event.resumed_from
            if event.phase == "checking":
                self._say(f"{event.filename}: checking {event.total / MiB:,.0f} MiB already downloaded")
        if event.phase == "retrying":
            self._say(f"{event.filename}: connection lost at {event.done / MiB:,.0f} MiB; resuming")
            return
        if event.phase == "done":
            self._say(f"{event.filename}: done, {event.total / MiB:,.0f} MiB, sha256 verified")
            return
        if event.phase != "downloading":
            return
        if event.done == event.resumed_from and self._next_step == 0:
            where = f" (resuming at {event.done / MiB:,.0f} MiB)" if event.done else ""
            self._say(f"downloading {event.filename}: {event.total / MiB:,.0f} MiB{where}")
            self._started = time.monotonic()
            self._start_bytes = event.done
            self._next_step = event.done * 10 // total + 1
            return
        step = event.done * 10 // total
        now = time.monotonic()
        if step >= self._next_step and step < 10 and now - self._last_line >= 2.0:
            elapsed = max(now - self._started, 1e-6)
            speed = (event.done - self._start_bytes) / elapsed / MiB
            self._say(
                f"{event.filename}: {step * 10}% ({event.done / MiB:,.0f} of {event.total / MiB:,.0f} MiB, "
                f"{speed:,.1f} MiB/s)"
            )
            self._next_step = step + 1
            self._last_line = now

    def close(self) -> None:
        pass


class BarReporter:
    """A Rich progress bar per file on stderr."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )
        from rich.progress import (
            Progress as RichProgress,
        )

        self._progress = RichProgress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(binary_units=True),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=False,
        )
        self._tasks: dict[tuple[str, str], Any] = {}
        self._started = False

    def __call__(self, event: Progress) -> None:
        if not self._started:
            self._progress.start()
            self._started = True
        phase = "checking" if event.phase == "checking" else "downloading"
        key = (event.filename, phase)
        task = self._tasks.get(key)
        if task is None:
            label = f"checking {event.filename}" if phase == "checking" else event.filename
            task = self._progress.add_task(label, total=event.total, completed=event.done)
            self._tasks[key] = task
        if event.phase == "retrying":
            self._progress.update(task, description=f"{event.filename} (connection lost, resuming)")
        elif event.phase == "done":
            self._progress.update(task, completed=event.total, description=f"{event.filename} ✓ verified")
        else:
            self._progress.update(task, completed=event.done, description=self._label(event))

    @staticmethod
    def _label(event: Progress) -> str:
        return f"checking {event.filename}" if event.phase == "checking" else event.filename

    def close(self) -> None:
        if self._started:
            self._progress.stop()


def reporter(stream: TextIO | None = None) -> LineReporter | BarReporter:
    out = stream or sys.stderr
    return BarReporter() if is_terminal(out) and stream is None else LineReporter(out)
