"""The headless answer service (g3chat.core.answer) with the real test model: trimming, tools, saving."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from g3chat.core.answer import Answer, HistoryTrimmed, ToolPlan, tools_section_tokens
from g3chat.core.context import answer_reserve, fit_to_context
from g3chat.core.store import Store
from g3chat.core.tools.approval import ApprovalPolicy
from g3chat.core.tools.model import Tool
from g3chat.core.types import GenerationParams, TextDelta

pytestmark = pytest.mark.model

WORDS = ["harbour", "lantern", "meadow", "copper", "violin", "orchard"]
PARAMS = GenerationParams(temperature=0, max_tokens=4)


@pytest.fixture
def long_chat() -> Iterator[tuple[Store, int]]:
    """A conversation of about 3,000 tokens (more than the test engine's 2,048), the question saved last."""
    store = Store(":memory:")
    conversation = store.create_conversation("long", system_prompt="Be brief.")
    for turn in range(12):
        text = " ".join(WORDS[(turn + i) % len(WORDS)] for i in range(110))
        store.add_message(conversation.id, "user", f"Turn {turn}: {text}?")
        store.add_message(conversation.id, "assistant", f"Answer {turn}: {text}.")
    store.add_message(conversation.id, "user", "And now?")
    yield store, conversation.id
    store.close()


def test_a_long_conversation_is_trimmed_as_the_context_module_says_and_the_answer_saved(
    engine, long_chat: tuple[Store, int]
) -> None:
    store, cid = long_chat
    history = store.history(cid)
    n_ctx = engine.info.n_ctx
    expected = fit_to_context(history, engine.count_tokens, n_ctx, answer_reserve(n_ctx, PARAMS.max_tokens))
    answer = Answer(engine, history, PARAMS, store=store, conversation_id=cid, model_name="test")
    events = list(answer)
    assert events[0] == HistoryTrimmed(expected.dropped, expected.tokens, n_ctx, True)
    assert expected.dropped > 0 and expected.messages[0].text == "Be brief."  # the system prompt stays
    assert any(isinstance(e, TextDelta) for e in events)
    assert answer.result is not None and answer.result.finish_reason == "length"
    assert answer.saved is not None and answer.saved.role == "assistant" and answer.kept
    assert store.messages(cid)[-1].id == answer.saved.id
    assert len(store.history(cid)) == len(history) + 1  # nothing was deleted from the history


def test_with_tools_the_prompt_leaves_room_for_their_description(
    engine, long_chat: tuple[Store, int]
) -> None:
    store, cid = long_chat
    echo = Tool(
        "echo",
        "Repeat the given text back. " * 100,  # a long description: more than the trimming's slack
        {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]},
        lambda arguments: str(arguments["text"]),
    )
    plan = ToolPlan([echo], ApprovalPolicy(), max_steps=1)
    answer = Answer(engine, store.history(cid), PARAMS, store=store, conversation_id=cid, tools=plan)
    trimmed = next(iter(answer))
    assert isinstance(trimmed, HistoryTrimmed)
    section = tools_section_tokens(engine, [echo])
    n_ctx = engine.info.n_ctx
    reserve = answer_reserve(n_ctx, PARAMS.max_tokens)
    assert section > n_ctx // 4
    assert (
        trimmed.dropped
        == fit_to_context(store.history(cid), engine.count_tokens, n_ctx, reserve + section).dropped
    )
    assert trimmed.tokens + section <= n_ctx - reserve
