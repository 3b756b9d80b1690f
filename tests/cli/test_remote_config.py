"""The [engine] server settings and the runtime's choice of engine (no server needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from g3chat.config import load_settings
from g3chat.core.engine.remote import RemoteEngine
from g3chat.core.errors import ConfigError
from g3chat.runtime import Runtime


def runtime(tmp_path: Path, text: str = "", env: dict[str, str] | None = None) -> Runtime:
    """A runtime whose G3CHAT_HOME config file holds ``text``."""
    (tmp_path / "config").mkdir(exist_ok=True)
    (tmp_path / "config" / "config.toml").write_text(text)
    return Runtime.from_env({"G3CHAT_HOME": str(tmp_path), **(env or {})})


def test_server_settings_from_the_file(tmp_path: Path) -> None:
    rt = runtime(
        tmp_path,
        '[engine]\nbase_url = "http://gpu-box:8080"\napi_key_env = "BOX_KEY"\nmodel = "e4b"\n'
        "read_timeout = 30\nretries = 1\n",
        {"BOX_KEY": "sekrit"},
    )
    engine, notice = rt.engine_for()
    assert isinstance(engine, RemoteEngine) and notice is None
    assert engine.base_url == "http://gpu-box:8080/v1" and engine.requested_model == "e4b"
    assert engine._http.client.headers["authorization"] == "Bearer sekrit"
    assert engine._http.read_timeout == 30 and engine._http.retries == 1
    engine.close()


def test_cli_server_and_model_win_over_the_config(tmp_path: Path) -> None:
    rt = runtime(tmp_path, '[engine]\nbase_url = "http://a:1/v1"\nmodel = "x"\n')
    engine, _ = rt.engine_for(server="http://b:2/v1", model="y")
    assert isinstance(engine, RemoteEngine)
    assert (engine.base_url, engine.requested_model) == ("http://b:2/v1", "y")
    assert isinstance(rt.make_engine(), RemoteEngine)  # the one factory honours the config too
    engine.close()


def test_no_server_means_the_local_engine(tmp_path: Path, test_model_path: Path) -> None:
    from g3chat.core.engine.llama import LlamaCppEngine

    rt = runtime(tmp_path)
    engine, notice = rt.engine_for(model=str(test_model_path))
    assert isinstance(engine, LlamaCppEngine) and notice is None


def test_an_unset_key_variable_is_a_config_error(tmp_path: Path) -> None:
    rt = runtime(tmp_path, '[engine]\nbase_url = "http://a:1/v1"\napi_key_env = "NOPE_KEY"\n')
    with pytest.raises(ConfigError, match=r"engine\.api_key_env names NOPE_KEY, but NOPE_KEY is not set"):
        rt.engine_for()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[engine]\nbase_url = "gpu-box:8080"\n', ":2: engine.base_url must be an http(s) URL"),
        ("[engine]\nretries = 50\n", ":2: engine.retries must be between 0 and 10"),
        ("[engine]\nread_timeout = 0\n", ":2: engine.read_timeout must be at least 1"),
    ],
)
def test_bad_server_settings_name_file_and_line(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        load_settings(path, {})
