"""A real ``g3chat serve`` app in this process: uvicorn on a free loopback port, over a loaded engine."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from g3chat.core.engine.base import Engine, ModelInfo
from g3chat.core.media.store import MediaStore
from g3chat.core.types import GenerationParams
from g3chat.server.app import MAX_BODY, Server, ServerConfig
from g3chat.server.media import MediaReader
from g3chat.server.worker import EngineWorker
from tests.fixtures.llama_server import free_port

MODEL = "gemma-test"
API_KEY = "serve-test-key"


@dataclass
class Served:
    url: str  # http://127.0.0.1:PORT/v1
    worker: EngineWorker

    @property
    def base(self) -> str:
        return self.url.removesuffix("/v1")


@contextlib.contextmanager
def serving(
    engine: Engine,
    media_dir: Path,
    *,
    api_key: str | None = API_KEY,
    load: Callable[[], ModelInfo] | None = None,
    max_body: int = MAX_BODY,
) -> Iterator[Served]:
    import uvicorn

    worker = EngineWorker(engine, load=load)
    config = ServerConfig(
        model=MODEL,
        api_key=api_key,
        defaults=GenerationParams(temperature=0),
        media=MediaReader(MediaStore(media_dir)),
        max_body=max_body,
    )
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(Server(worker, config).app(), host="127.0.0.1", port=port, log_level="warning")
    )
    worker.start()
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        yield Served(f"http://127.0.0.1:{port}/v1", worker)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        worker.stop()


@pytest.fixture(scope="module")
def served(engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """The session's test-model engine (loaded once) served for one test module."""
    with serving(engine, tmp_path_factory.mktemp("serve-media")) as srv:
        yield srv


@pytest.fixture
def client(served: Served) -> Iterator[object]:
    from openai import OpenAI

    with OpenAI(base_url=served.url, api_key=API_KEY, max_retries=0, timeout=120) as openai_client:
        yield openai_client
