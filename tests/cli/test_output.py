from __future__ import annotations

import io

from rich.console import Console

from g3chat.cli.output import MarkdownWriter, PlainWriter, split_finished_blocks


def test_split_finished_blocks() -> None:
    assert split_finished_blocks("no newline yet") == 0
    assert split_finished_blocks("para one\n\npara two") == len("para one\n\n")
    text = "```python\nx = 1\n\ny = 2\n"
    assert split_finished_blocks(text) == 0  # a blank line inside a fence does not end a block
    closed = "```python\nx = 1\n```\nafter"
    assert split_finished_blocks(closed) == len("```python\nx = 1\n```\n")


def test_plain_writer_streams_and_ends_with_newline() -> None:
    out = io.StringIO()
    writer = PlainWriter(out)
    for piece in ["Hel", "lo", " wörld"]:
        writer.write(piece)
    writer.finish()
    assert out.getvalue() == "Hello wörld\n"


def test_markdown_writer_keeps_everything_including_unclosed_fence() -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=60, color_system=None)
    writer = MarkdownWriter(console)
    text = "# Title\n\nFirst paragraph with **bold**.\n\n```python\nprint('unclosed')\n"
    for i in range(0, len(text), 3):
        writer.write(text[i : i + 3])
    writer.finish()
    rendered = buffer.getvalue()
    for expected in ("Title", "First paragraph with bold.", "print('unclosed')"):
        assert expected in rendered
    assert "**" not in rendered  # rendered as Markdown, not echoed raw
