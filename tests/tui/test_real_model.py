"""The chat UI over the real engine and the offline test model: send, stream, stop, regenerate, restart."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from g3chat.core.engine.llama import LlamaCppEngine
from g3chat.core.store import Store
from g3chat.runtime import Runtime
from tests.tui.conftest import SIZE, wait_until
from tests.tui.test_flows import idle, send, views

pytestmark = [pytest.mark.asyncio, pytest.mark.model]


@pytest.fixture(scope="module")
def tui_engine(test_model_path: Path) -> Iterator[LlamaCppEngine]:
    # One thread: on a busy two-core machine llama.cpp's thread barrier makes two threads far slower.
    engine = LlamaCppEngine(test_model_path, n_ctx=512, n_threads=1, name="test-model")
    engine.load()
    yield engine
    engine.close()


async def test_chat_with_the_real_model(runtime: Runtime, store: Store, tui_engine: LlamaCppEngine) -> None:
    runtime.settings.generation.max_tokens = 6
    runtime.settings.generation.seed = 7
    app = runtime.chat_app(store, engine=tui_engine)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.model_state == "ready", timeout=60)
        assert "test-model" in str(app.chat_screen.header.query_one("#model").render())
        await send(pilot, app, "The capital of France is")
        await wait_until(pilot, lambda: idle(app) and len(store.all_messages(1)) == 2, timeout=120)
        await pilot.pause()
        answer = store.messages(1)[-1]
        assert answer.role == "assistant" and answer.status == "complete" and answer.model == "test-model"
        assert 1 <= answer.completion_tokens <= 6
        assert views(app)[-1].text == answer.text
        used = answer.prompt_tokens + answer.completion_tokens
        assert f"{used}/512" in str(app.chat_screen.header.query_one("#meter").render())

        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: idle(app) and len(store.all_messages(1)) == 3, timeout=120)
        await pilot.pause()
        assert views(app)[-1].branch == (2, 2)

        runtime.settings.generation.max_tokens = 300
        await send(pilot, app, "Tell me a long story about the sea.")
        await wait_until(pilot, lambda: app.job is not None and app.job.ui.text.strip() != "", timeout=120)
        await pilot.press("escape")
        await wait_until(pilot, lambda: idle(app), timeout=60)
        stopped = store.messages(1)[-1]
        assert stopped.status == "partial" and stopped.text and stopped.completion_tokens < 300
    # A restart finds everything again.
    again = runtime.chat_app(store, engine=tui_engine, conversation_id=1)
    async with again.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert [v.text for v in views(again)] == [m.text for m in store.messages(1)]
        assert views(again)[-1].has_class("-partial")
