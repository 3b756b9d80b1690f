"""Streaming an answer to the terminal: plain text, or Markdown rendered with Rich as it arrives.

The Markdown writer never re-renders the whole answer per token: finished blocks (text up to a blank
line outside a code fence) are printed once and scroll away; only the block still being written is shown
in a Live region, refreshed a few times a second. When the answer ends the last block is printed whole,
so an unclosed code fence loses nothing.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Protocol, TextIO

if TYPE_CHECKING:
    from rich.console import Console
    from rich.markdown import Markdown


class AnswerWriter(Protocol):
    def write(self, text: str) -> None: ...

    def finish(self) -> None: ...


class PlainWriter:
    """Writes deltas as they come; ends with a newline."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout
        self._last = ""

    def write(self, text: str) -> None:
        if not text:
            return
        self.stream.write(text)
        self.stream.flush()
        self._last = text[-1]

    def finish(self) -> None:
        if self._last and self._last != "\n":
            self.stream.write("\n")
        self.stream.flush()


def split_finished_blocks(text: str) -> int:
    """Index up to which ``text`` consists of finished Markdown blocks (0 if none).

    A block is finished at a blank line that is not inside a fenced code block; a closing fence also
    finishes its block.
    """
    fence: str | None = None
    cut = 0
    position = 0
    lines = text.split("\n")
    for index, line in enumerate(lines[:-1]):  # the last piece has no newline yet
        position += len(line) + 1
        stripped = line.strip()
        if fence is None:
            if stripped.startswith("```") or stripped.startswith("~~~"):
                fence = stripped[:3]
            elif stripped == "" and index > 0:
                cut = position
        elif stripped.startswith(fence) and stripped.strip("`~") == "":
            fence = None
            cut = position
    return cut


class MarkdownWriter:
    """Renders Markdown with Rich on a terminal, block by block."""

    def __init__(self, console: Console | None = None) -> None:
        from rich.console import Console
        from rich.live import Live

        self.console = console or Console(highlight=False)
        self._live = Live(console=self.console, auto_refresh=True, refresh_per_second=8, transient=True)
        self._pending = ""
        self._started = False

    def _markdown(self, text: str) -> Markdown:
        from rich.markdown import Markdown

        return Markdown(text, code_theme="monokai")

    def write(self, text: str) -> None:
        if not text:
            return
        if not self._started:
            text = text.lstrip("\n")
            if not text:
                return
            self._live.start()
            self._started = True
        self._pending += text
        cut = split_finished_blocks(self._pending)
        if cut:
            done, self._pending = self._pending[:cut], self._pending[cut:]
            if done.strip():
                self._live.console.print(self._markdown(done))
        self._live.update(self._markdown(self._pending), refresh=False)

    def finish(self) -> None:
        if self._started:
            self._live.update("", refresh=True)
            self._live.stop()
        if self._pending.strip():
            self.console.print(self._markdown(self._pending))
        self._pending = ""


def choose_writer(
    *, plain: bool, markdown_enabled: bool = True, stream: TextIO | None = None
) -> AnswerWriter:
    """Markdown on an interactive terminal unless ``--plain``; plain text everywhere else."""
    out = stream or sys.stdout
    if plain or not markdown_enabled or not out.isatty() or os.environ.get("TERM") == "dumb":
        return PlainWriter(out)
    return MarkdownWriter()
