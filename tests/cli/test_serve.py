"""`g3chat serve` as a user runs it: the test model behind the OpenAI wire, used by g3chat's RemoteEngine."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest

from g3chat.core.engine.remote import RemoteEngine
from g3chat.core.types import GenerationParams, TextDelta, system, user
from tests.conftest import REPO, run_cli
from tests.fixtures.llama_server import free_port, stop

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def served(test_model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    port = free_port()
    home = tmp_path_factory.mktemp("serve-home")
    log = home / "serve.log"
    env = {**os.environ, "G3CHAT_HOME": str(home), "G3CHAT_MODEL": str(test_model_path)}
    command = [
        sys.executable,
        "-m",
        "g3chat",
        "serve",
        "--port",
        str(port),
        "--threads",
        "1",
        "--ctx",
        "1024",
    ]
    with log.open("wb") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, env=env, cwd=REPO)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:  # /health answers 503 until the model has loaded
            assert process.poll() is None, log.read_text()[-3000:]
            try:
                if httpx.get(f"{url.removesuffix('/v1')}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        yield url, log
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)  # Ctrl+C: uvicorn shuts down cleanly
            try:
                assert process.wait(30) == 0, log.read_text()[-2000:]
            finally:
                stop(process)


def test_serves_the_model_through_g3chats_engine(served: tuple[str, Path], engine) -> None:
    url, log = served
    messages = [system("Be brief."), user("Name a colour.")]
    answer = httpx.post(
        f"{url}/chat/completions",
        json={
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Name a colour."},
            ],
            "max_tokens": 2,
            "temperature": 0,
        },
        timeout=120,
    ).json()
    # The prompt the server evaluated is token for token the one g3chat's own engine builds (system prompt
    # folded into the first user turn).
    assert answer["usage"]["prompt_tokens"] == engine.count_tokens(messages)
    text = log.read_text()
    assert f"serving {Path(engine.model_path).name} at {url}" in text
    assert "llama_" not in text  # llama.cpp's log stays off the terminal without --verbose


def test_g3chat_talks_to_its_own_server(served: tuple[str, Path], test_model_path: Path) -> None:
    url, _ = served
    remote = RemoteEngine(url)
    info = remote.load()
    assert info.name == test_model_path.name and info.engine == "remote"
    deltas = [
        e
        for e in remote.stream_chat([user("hi")], GenerationParams(temperature=0, max_tokens=4))
        if isinstance(e, TextDelta)
    ]
    assert deltas
    remote.close()


def test_port_in_use_is_one_line(cli_env: dict[str, str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = run_cli("serve", "--port", str(port), env=cli_env)
    assert proc.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


def test_missing_model_is_one_line(cli_env: dict[str, str], tmp_path: Path) -> None:
    proc = run_cli("serve", "--model", str(tmp_path / "nope.gguf"), env=cli_env)
    assert proc.returncode == 2 and "no such file" in proc.stderr
