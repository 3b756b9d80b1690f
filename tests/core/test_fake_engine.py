from __future__ import annotations

import threading

import pytest

from g3chat.core.engine.base import Engine
from g3chat.core.engine.fake import FakeEngine
from g3chat.core.errors import EngineError
from g3chat.core.types import GenerationParams, TextDelta, collect, user


def test_fake_engine_follows_the_protocol() -> None:
    engine = FakeEngine().enqueue("one two three", ["a", "b"], EngineError("boom"))
    assert isinstance(engine, Engine)
    engine.load()
    assert collect(engine.stream_chat([user("x")], GenerationParams())).text == "one two three"
    assert collect(engine.stream_chat([user("x")], GenerationParams())).text == "ab"
    with pytest.raises(EngineError):
        list(engine.stream_chat([user("x")], GenerationParams()))
    assert collect(engine.stream_chat([user("ping")], GenerationParams())).text == "echo: ping"


def test_fake_engine_cancels() -> None:
    engine = FakeEngine().enqueue([str(i) for i in range(100)])
    engine.load()
    cancel = threading.Event()
    seen = 0
    result = None
    for event in engine.stream_chat([user("x")], GenerationParams(), cancel):
        if isinstance(event, TextDelta):
            seen += 1
            if seen == 3:
                cancel.set()
        result = event
    assert seen == 3 and result.reason == "cancelled"
