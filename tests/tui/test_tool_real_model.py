"""The chat UI's tool loop over the real engine and the offline test model: the tools are described, the
lazy call grammar goes to llama.cpp, and whatever the model does is saved and shown consistently."""

from __future__ import annotations

from pathlib import Path

import pytest

from g3chat.core.engine.llama import LlamaCppEngine
from g3chat.core.store import Store
from g3chat.core.tools.setup import load_tools
from g3chat.core.types import ToolCallPart
from g3chat.runtime import Runtime
from g3chat.tui.screens.chat_screen import ChatScreen
from g3chat.tui.widgets.tool_call_block import ToolCallBlock
from tests.tui.conftest import SIZE, wait_until
from tests.tui.test_flows import idle, send

pytestmark = [pytest.mark.asyncio, pytest.mark.model]


async def test_tools_with_the_real_model(
    runtime: Runtime, store: Store, test_model_path: Path, tmp_path: Path
) -> None:
    (tmp_path / "todo.txt").write_text("buy milk\n")
    # A window whose quarter holds the tools' description (about 510 tokens, so 2048 would be too close).
    engine = LlamaCppEngine(test_model_path, n_ctx=4096, n_threads=1, name="test-model")
    runtime.settings.generation.max_tokens = 24
    runtime.settings.generation.seed = 3
    runtime.settings.tools.max_steps = 1
    app = runtime.chat_app(
        store,
        engine=engine,
        tools_factory=lambda: load_tools(tools_dir=None, mcp_file=None, roots=[tmp_path], entry_points=False),
    )
    try:
        async with app.run_test(size=SIZE) as pilot:
            await wait_until(pilot, lambda: app.model_state == "ready", timeout=60)
            await send(pilot, app, "Read todo.txt and tell me what it says.")
            # Any dialog (a mutating call) is denied: nothing may change without a yes.
            await wait_until(pilot, lambda: idle(app) or not isinstance(app.screen, ChatScreen), timeout=180)
            while not idle(app):
                if not isinstance(app.screen, ChatScreen):
                    await pilot.press("n")
                await pilot.pause(0.1)
            await pilot.pause()
            path = store.messages(1)
            first = path[1]
            assert first.role == "assistant" and first.meta.get("tool_choice") == "auto"
            assert first.status in ("complete", "partial") and first.model == "test-model"
            described = app.tools.section_tokens(engine, app.tools.load()[0])  # counted by llama.cpp
            assert described > 300 and first.prompt_tokens > described  # the model was told about the tools
            calls = [p for m in path for p in m.parts if isinstance(p, ToolCallPart)]
            shown = list(app.chat_screen.chat.query(ToolCallBlock))
            assert [b.call_id for b in shown] == [c.id for c in calls]
            assert all(b.status in ("ok", "error", "denied") for b in shown)
            assert (tmp_path / "todo.txt").read_text() == "buy milk\n"
    finally:
        app.shutdown(timeout=30)
        engine.close()
