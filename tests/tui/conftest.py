"""Fixtures for the chat UI tests: an app over a fresh store and a scripted engine, and a wait helper."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from g3chat.core.engine.base import Engine
from g3chat.core.engine.fake import FakeEngine
from g3chat.core.store import Store
from g3chat.core.tools.protocol import TOOLS_INTRO
from g3chat.core.types import Message
from g3chat.runtime import Runtime

SIZE = (100, 30)
TOOLS_SECTION = TOOLS_INTRO


def sent(engine: FakeEngine) -> list[Message]:
    """What the engine was last asked, without the tools' description (tools are on by default)."""
    return [m for m in engine.calls[-1] if not (m.role == "system" and TOOLS_SECTION in m.text)]


async def wait_until(pilot: Pilot[Any], predicate: Callable[[], bool], timeout: float = 15.0) -> None:
    """Let the app run until ``predicate()`` holds; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {getattr(predicate, '__name__', predicate)}")
        await pilot.pause(0.02)
    await asyncio.sleep(0)


@pytest.fixture
def runtime(g3chat_home: Path) -> Runtime:
    return Runtime.from_env()


@pytest.fixture
def store(runtime: Runtime) -> Iterator[Store]:
    s = runtime.open_store()
    yield s
    s.close()


@pytest.fixture
def fake() -> FakeEngine:
    return FakeEngine()


@pytest.fixture
def make_app(runtime: Runtime, store: Store, fake: FakeEngine) -> Iterator[Callable[..., object]]:
    """Build the app as the CLI does (Runtime.chat_app), with the FakeEngine built by the loading thread."""
    apps = []

    def make(engine: Engine | None = None, **kwargs: Any) -> object:
        chosen = engine if engine is not None else fake
        app = runtime.chat_app(store, engine_factory=lambda: (chosen, None), **kwargs)
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.shutdown(timeout=10)
