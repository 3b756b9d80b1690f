"""Shared fixtures. The real test model is assembled once and loaded once per session."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.fixtures.fault_proxy import FaultProxy
    from tests.fixtures.llama_server import RunningServer

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
TEST_THREADS = 2
TEST_CTX = 2048


UNREACHABLE_HUB = "http://127.0.0.1:9"  # the discard port: connections are refused at once


@pytest.fixture(autouse=True)
def g3chat_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own G3CHAT_HOME and HF cache; no test touches the user's files or the real Hub."""
    home = tmp_path / "g3home"
    monkeypatch.setenv("G3CHAT_HOME", str(home))
    for name in list(os.environ):
        if (name.startswith("G3CHAT_") and name != "G3CHAT_HOME") or name.startswith(("HF_", "HUGGINGFACE_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_ENDPOINT", UNREACHABLE_HUB)
    monkeypatch.setenv("NO_COLOR", "1")
    return home


@pytest.fixture(scope="session")
def models_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def test_model_path(models_cache: Path) -> Path:
    from g3chat.core.testmodel import ensure_test_model

    return ensure_test_model(models_cache)


@pytest.fixture(scope="session")
def templated_model_path(test_model_path: Path, models_cache: Path) -> Path:
    """The test model with Gemma 3n's chat template written into its metadata."""
    from tests.fixtures.gguf_edit import with_metadata

    template = (FIXTURES / "gemma3n_template.jinja").read_text()
    return with_metadata(
        test_model_path, models_cache / "templated.gguf", {"tokenizer.chat_template": template}
    )


@pytest.fixture(scope="session")
def engine(test_model_path: Path) -> Iterator[object]:
    """One loaded LlamaCppEngine for the whole session (loading is the slow part).

    Flash attention is off so that tests can compare an answer served from the KV cache with one from a
    fresh evaluation bit for bit (llama.cpp's flash-attention kernels are not batch-invariant). The CLI
    tests run with the default (on).
    """
    from g3chat.core.engine.llama import LlamaCppEngine

    eng = LlamaCppEngine(test_model_path, n_ctx=TEST_CTX, n_threads=TEST_THREADS, flash_attn=False)
    eng.load()
    yield eng
    eng.close()


def run_cli(
    *args: str,
    env: dict[str, str] | None = None,
    input: str | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m g3chat ARGS`` as a user would, with the test's environment."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "g3chat", *args],
        capture_output=True,
        text=True,
        input=input if input is not None else "",
        env=full_env,
        timeout=timeout,
        cwd=REPO,
    )


@pytest.fixture
def cli_env(test_model_path: Path) -> dict[str, str]:
    """Environment for CLI runs: the test model configured, two threads, a small context."""
    return {
        "G3CHAT_MODEL": str(test_model_path),
        "G3CHAT_ENGINE__THREADS": str(TEST_THREADS),
        "G3CHAT_ENGINE__N_CTX": str(TEST_CTX),
    }


@pytest.fixture(scope="session")
def llama_server(
    templated_model_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    """A real ``python -m llama_cpp.server`` on loopback serving the test model (Gemma 3n's chat template,
    API key required), started once per session and stopped at the end."""
    from tests.fixtures.llama_server import llama_cpp_server

    # One thread: on a busy two-core machine llama.cpp's two threads wait on each other for seconds a token.
    with llama_cpp_server(templated_model_path, tmp_path_factory.mktemp("llama-server"), threads=1) as srv:
        yield srv


@pytest.fixture
def fault_proxy(llama_server: RunningServer) -> Iterator[FaultProxy]:
    """A fault-injecting proxy in front of ``llama_server`` (see tests/fixtures/fault_proxy.py)."""
    from tests.fixtures.fault_proxy import FaultProxy

    with FaultProxy(llama_server.port) as proxy:
        yield proxy
