"""Writing a setting inside a table back into the config file (the chat UI saves ui.theme this way)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from g3chat.config import load_settings, write_setting
from g3chat.core.errors import ConfigError


def test_writes_a_new_file(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "config.toml"
    write_setting(path, "ui.theme", "g3-light")
    assert load_settings(path, {}).ui.theme == "g3-light"


def test_keeps_comments_and_other_settings(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    original = '# mine\nmodel = "/m.gguf"  # the big one\n\n[ui]\n# pick one\ntheme = "g3-dark"\n'
    path.write_text(original)
    write_setting(path, "ui.theme", "amber-crt")
    text = path.read_text()
    assert text == original.replace('"g3-dark"', '"amber-crt"')
    write_setting(path, "generation.temperature", 0.4)
    settings = load_settings(path, {})
    assert settings.model == "/m.gguf" and settings.generation.temperature == 0.4
    assert [p.name for p in tmp_path.iterdir()] == ["config.toml"]  # no temporary files left


def test_malformed_file_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[ui\ntheme = 1\n")
    before = path.read_bytes()
    with pytest.raises(ConfigError, match="invalid TOML"):
        write_setting(path, "ui.theme", "x")
    assert path.read_bytes() == before


def test_failed_write_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[ui]\ntheme = "g3-dark"\n')

    def broken_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(ConfigError, match="cannot write config: disk full"):
        write_setting(path, "ui.theme", "g3-light")
    assert path.read_text() == '[ui]\ntheme = "g3-dark"\n'
    assert [p.name for p in tmp_path.iterdir()] == ["config.toml"]


def test_removing_a_dotted_setting(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('model = "m"\n[ui]\ntheme = "amber-crt"\nmarkdown = false\n')
    write_setting(path, "ui.theme", None)
    write_setting(path, "generation.seed", None)  # nothing there: nothing to do
    settings = load_settings(path, {})
    assert settings.ui.theme == "g3-dark" and settings.ui.markdown is False and settings.model == "m"
    assert "[generation]" not in path.read_text()
