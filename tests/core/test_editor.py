"""The editor: which command is chosen, and a real editor program run on a temporary file."""

from __future__ import annotations

import stat
import sys
from pathlib import Path

import pytest

from g3chat.core.editor import EditorError, edit_text, editor_command


def script(folder: Path, body: str, name: str = "fake-editor") -> Path:
    """An executable Python "editor": ``body`` runs with ``path`` bound to the file it was given."""
    path = folder / name
    path.write_text(f"#!{sys.executable}\nimport sys\npath = sys.argv[-1]\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_visual_then_editor_then_a_default() -> None:
    assert editor_command({"VISUAL": "code --wait", "EDITOR": "vim"}) == ["code", "--wait"]
    assert editor_command({"VISUAL": " ", "EDITOR": "emacs -nw"}) == ["emacs", "-nw"]
    assert editor_command({"EDITOR": "'/opt/My Editor/ed' -x"}) == ["/opt/My Editor/ed", "-x"]
    assert editor_command({}, which=lambda name: "/bin/nano" if name == "nano" else None) == ["nano"]
    assert editor_command({}, which=lambda name: None) == ["vi"]
    assert editor_command({}, which=lambda name: None, windows=True) == ["notepad"]
    windows = {"EDITOR": r'"C:\Program Files\Ed\ed.exe" -w C:\tmp'}
    assert editor_command(windows, windows=True) == [r"C:\Program Files\Ed\ed.exe", "-w", r"C:\tmp"]


def test_edits_a_file_that_starts_with_the_text_and_reads_back_what_was_saved(tmp_path: Path) -> None:
    seen = tmp_path / "seen.txt"
    editor = script(
        tmp_path,
        f"text = open(path).read()\nopen({str(seen)!r}, 'w').write(text + '|' + path)\n"
        "open(path, 'a').write(' and more')",
    )
    result = edit_text("draft", {"VISUAL": f"{editor} --flag"})
    assert result == "draft and more"
    before, _, temp = seen.read_text().partition("|")
    assert before == "draft" and temp.endswith(".md") and not Path(temp).exists()  # cleaned up


def test_an_editor_that_fails_or_is_missing_is_one_line(tmp_path: Path) -> None:
    failing = script(tmp_path, "sys.exit(3)")
    with pytest.raises(EditorError, match="exited with status 3") as caught:
        edit_text("x", {"VISUAL": str(failing)})
    assert caught.value.exit_code == 2 and "\n" not in str(caught.value)
    with pytest.raises(EditorError, match="cannot start the editor") as caught:
        edit_text("x", {"VISUAL": str(tmp_path / "no-such-editor")})
    assert "\n" not in str(caught.value)
    with pytest.raises(EditorError, match=r"\$VISUAL .* cannot be split"):
        edit_text("x", {"VISUAL": "vim 'oops"})
