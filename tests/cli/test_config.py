from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from g3chat.config import Settings, documented_fields, load_settings
from g3chat.core.errors import ConfigError
from g3chat.paths import Paths


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_defaults_are_gemma3n_recommended(tmp_path: Path) -> None:
    settings = load_settings(tmp_path / "missing.toml", {})
    params = settings.generation.params()
    assert (params.temperature, params.top_k, params.top_p, params.min_p) == (1.0, 64, 0.95, 0.0)
    assert params.seed is None and params.max_tokens is None


def test_file_values_are_read(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        'model = "/m/x.gguf"\n[generation]\ntemperature = 0.3\ntop_k = 10\nseed = 5\n'
        '[engine]\nn_ctx = 4096\n[ui]\ntheme = "g3-light"\n[keys]\nnew_chat = "ctrl+n"\n',
    )
    s = load_settings(path, {})
    assert s.model == "/m/x.gguf"
    assert s.generation.temperature == 0.3 and s.generation.top_k == 10 and s.generation.params().seed == 5
    assert s.engine.n_ctx == 4096 and s.ui.theme == "g3-light" and s.keys == {"new_chat": "ctrl+n"}


def test_integer_accepted_for_float(tmp_path: Path) -> None:
    assert load_settings(write(tmp_path, "[generation]\ntemperature = 1\n"), {}).generation.temperature == 1.0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[generation\ntemperature = 1\n", ":1:"),  # invalid TOML, with line and column
        ("model = 3\n", ":1: model must be a string"),
        ('\n\n[generation]\ntemperature = "hot"\n', ":4: generation.temperature must be a number"),
        ("[generation]\ntop_p = 2.0\n", ":2: generation.top_p must be between 0 and 1"),
        ("[engine]\nn_ctx = -5\n", ":2: engine.n_ctx must be at least 0"),
        ("[engine]\nthreds = 4\n", ":2: engine.threds is not a known setting"),
        ("colour = 1\n", "colour is not a known setting"),
        ("[engine]\nswa_full = 1\n", "engine.swa_full must be true or false"),
    ],
)
def test_malformed_file_names_file_and_line(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_settings(path, {})
    message = str(info.value)
    assert str(path) in message and expected in message
    assert "\n" not in message


def test_directory_instead_of_file(tmp_path: Path) -> None:
    (tmp_path / "config.toml").mkdir()
    with pytest.raises(ConfigError, match="is a directory"):
        load_settings(tmp_path / "config.toml", {})


def test_env_overrides_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[generation]\ntemperature = 0.3\n")
    env = {
        "G3CHAT_GENERATION__TEMPERATURE": "0.9",
        "G3CHAT_MODEL": "/x.gguf",
        "G3CHAT_ENGINE__SWA_FULL": "false",
    }
    s = load_settings(path, env)
    assert s.generation.temperature == 0.9 and s.model == "/x.gguf" and s.engine.swa_full is False


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"G3CHAT_GENERATION__TEMPERATURE": "hot"}, "G3CHAT_GENERATION__TEMPERATURE='hot': must be a number"),
        ({"G3CHAT_NOPE__X": "1"}, "unknown section 'nope'"),
        ({"G3CHAT_ENGINE__NOPE": "1"}, "unknown setting 'nope'"),
    ],
)
def test_bad_env(tmp_path: Path, env: dict[str, str], expected: str) -> None:
    with pytest.raises(ConfigError, match=expected.replace("(", r"\(")):
        load_settings(tmp_path / "none.toml", env)


def test_every_field_is_documented() -> None:
    rows = documented_fields()
    assert len(rows) >= 15
    assert all(doc for _, _, doc in rows)


def test_paths_follow_g3chat_home(tmp_path: Path) -> None:
    paths = Paths.from_env({"G3CHAT_HOME": str(tmp_path)})
    assert paths.config_file == tmp_path / "config" / "config.toml"
    assert paths.db_file == tmp_path / "data" / "history.db"
    assert not (tmp_path / "data").exists()  # nothing is created until asked for
    assert paths.models_dir().is_dir()


def test_settings_default_construct() -> None:
    assert Settings().engine.n_ctx == 8192


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[engine]\nspeculative = "maybe"\n', ":2: engine.speculative must be one of auto, on, off"),
        ("generation = 1\n", ":1: generation must be a table"),
        ("[keys]\nnew_chat = 1\n", 'keys must be a table of action = "key" strings'),
        ("[tools]\nmax_step = 1\n", ":2: tools.max_step is not a known setting (known: at_file_chars, max_"),
        ("[generation]\ntop_k = 1.5\n", ":2: generation.top_k must be an integer"),
        ("[generation]\ntop_k = true\n", ":2: generation.top_k must be an integer"),
        ("[tools]\ntimeout = 0.05\n", ":2: tools.timeout must be at least 0.1"),
    ],
)
def test_declared_types_give_the_same_one_line_errors(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_settings(path, {})
    assert f"{path}{expected}" in str(info.value) if expected.startswith(":") else expected in str(info.value)


def test_env_text_is_read_leniently(tmp_path: Path) -> None:
    env = {
        "G3CHAT_UI__MARKDOWN": " off ",
        "G3CHAT_UI__TOOLS": "No",
        "G3CHAT_TOOLS__MCP": "yes",
        "G3CHAT_GENERATION__TOP_K": " 5 ",
        "G3CHAT_ENGINE__MODEL": " spaced ",
        "G3CHAT_ENGINE__SPECULATIVE": "off",
    }
    s = load_settings(tmp_path / "none.toml", env)
    assert (s.ui.markdown, s.ui.tools, s.tools.mcp, s.generation.top_k) == (False, False, True, 5)
    assert s.engine.model == " spaced " and s.engine.speculative == "off"


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (
            {"G3CHAT_ENGINE__SPECULATIVE": "yes"},
            "G3CHAT_ENGINE__SPECULATIVE='yes': must be one of auto, on, off",
        ),
        ({"G3CHAT_UI__MARKDOWN": "maybe"}, "G3CHAT_UI__MARKDOWN='maybe': must be true or false"),
        ({"G3CHAT_ENGINE__RETRIES": "11"}, "G3CHAT_ENGINE__RETRIES='11': must be between 0 and 10"),
        ({"G3CHAT_ENGINE__BASE_URL": "box:1"}, "G3CHAT_ENGINE__BASE_URL='box:1': must be an http(s) URL"),
    ],
)
def test_env_values_are_checked_like_the_file(tmp_path: Path, env: dict[str, str], expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(tmp_path / "none.toml", env)
    assert expected in str(info.value)


def test_defaults_round_trip_through_a_file(tmp_path: Path) -> None:
    import tomlkit

    from g3chat.config import settings_to_dict

    defaults = settings_to_dict(Settings())
    path = write(tmp_path, tomlkit.dumps(defaults))
    assert settings_to_dict(load_settings(path, {})) == defaults
    assert [name for name, _, _ in documented_fields()][:2] == ["model", "generation.temperature"]


@pytest.mark.parametrize("argv", [["--help"], ["config", "path"]])
def test_light_commands_do_not_load_the_settings(argv: list[str], tmp_path: Path) -> None:
    """``--help`` and ``config path`` stay quick: msgspec (the settings' checker) loads only with settings."""

    code = (
        f"import sys\nfrom g3chat.cli import main\ntry:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
        "loaded = sorted({'msgspec', 'g3chat.config'} & set(sys.modules))\n"
        "sys.stderr.write(','.join(loaded))\nsys.exit(1 if loaded else 0)"
    )
    env = {**os.environ, "G3CHAT_HOME": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 0, proc.stderr[-500:]


def test_nan_is_out_of_every_range(tmp_path: Path) -> None:
    """TOML and the environment can spell NaN; it fails every comparison, so a bound must reject it."""
    with pytest.raises(ConfigError, match=r":2: generation.temperature must be at least 0"):
        load_settings(write(tmp_path, "[generation]\ntemperature = nan\n"), {})
    with pytest.raises(ConfigError, match=r"TOP_P='nan': must be between 0 and 1"):
        load_settings(tmp_path / "none.toml", {"G3CHAT_GENERATION__TOP_P": "nan"})
