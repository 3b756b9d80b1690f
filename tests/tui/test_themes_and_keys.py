"""Theme files and the action table, without running the app."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import TextArea

from g3chat.resources import themes_dir
from g3chat.tui import keys
from g3chat.tui.themes import ThemeFileError, load_themes, theme_from_file
from g3chat.tui.widgets.prompt_input import PromptInput


def test_shipped_themes_all_load() -> None:
    loaded, failed = load_themes([themes_dir()])
    assert failed == []
    names = {t.name for t in loaded}
    assert {"g3-dark", "g3-light", "g3-high-contrast", "amber-crt"} <= names
    assert {t.name: t.dark for t in loaded}["g3-light"] is False


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("name = 'x'\n[colors\n", "invalid TOML"),
        ("name = 'x'\n", "a [colors] table is required"),
        ("name = 'x'\n[colors]\nsecondary = '#fff'\n", "colors.primary is required"),
        ("name = 'x'\n[colors]\nprimary = 'blurple'\n", "is not a colour"),
        ("name = 'x'\n[colors]\nprimary = '#fff'\nprimery = '#000'\n", "unknown colour 'primery'"),
        ("name = 'x'\ndark = 'yes'\n[colors]\nprimary = '#fff'\n", "dark must be true or false"),
        ("name = ''\n[colors]\nprimary = '#fff'\n", "name must be a non-empty string"),
    ],
)
def test_bad_theme_files_say_why(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "t.toml"
    path.write_text(text)
    with pytest.raises(ThemeFileError, match=problem.replace("[", r"\[")):
        theme_from_file(path)


def test_user_themes_override_and_failures_are_collected(tmp_path: Path) -> None:
    (tmp_path / "dark.toml").write_text('name = "g3-dark"\n[colors]\nprimary = "#123456"\n')
    (tmp_path / "bad.toml").write_bytes(b"\xff\xfe")
    loaded, failed = load_themes([themes_dir(), tmp_path, tmp_path / "missing"])
    assert {t.name: t.primary for t in loaded}["g3-dark"] == "#123456"
    assert [f.path.name for f in failed] == ["bad.toml"]


def test_keymap_splits_known_and_unknown_names() -> None:
    known, unknown = keys.keymap({"search": "ctrl+k", "newline": "alt+enter", "nope": "x"})
    assert known == {"search": "ctrl+k", "newline": "alt+enter"} and unknown == ["nope"]


def test_no_chat_key_is_taken_by_the_message_box() -> None:
    """Every chat action's key must reach the screen while the message box has focus."""
    taken: set[str] = set()
    for cls in (TextArea, PromptInput):
        for binding in cls.BINDINGS:
            taken.update(k.strip() for k in binding.key.split(","))
    for action in keys.ACTIONS:
        for key in action.key.split(","):
            assert key not in taken, f"{action.name}: {key} is a TextArea key"
