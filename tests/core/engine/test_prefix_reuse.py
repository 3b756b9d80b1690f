"""Prefill already paid for is never paid again: partial-prefix restore, generated ids, shared preambles.

Logits are compared bit for bit where the batches that computed them are the same (llama.cpp's CPU
kernels are not batch-invariant, so a prompt evaluated in other batches may differ in the last bits).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from g3chat.core.engine.embeddings import logits_rows
from g3chat.core.engine.kv import MIN_RESTORE_GAIN, KVSession
from g3chat.core.engine.llama import LlamaCppEngine
from g3chat.core.engine.state_cache import StateCache
from g3chat.core.store import Store
from g3chat.core.types import (
    GenerationParams,
    Message,
    PromptProgress,
    TextPart,
    collect,
    system,
    user,
)
from tests.conftest import run_cli
from tests.fixtures.tiny_gemma3n_chat import tiny_chat_model

GREEDY = GenerationParams(temperature=0, max_tokens=6)
TOOLS_LIKE = "You can use these tools. " + " ".join(
    f"Tool {i}: reads the file named in its path argument and returns line {i} of it." for i in range(12)
)
LONG = " ".join(f"Note {i}: the keeper logged the weather, the ships and the gulls." for i in range(20))


def _engine(path: Path, state_dir: Path | None, **extra: Any) -> LlamaCppEngine:
    eng = LlamaCppEngine(path, n_ctx=2048, n_threads=2, flash_attn=False, state_dir=state_dir, **extra)
    eng.load()
    return eng


@pytest.fixture
def engines(test_model_path: Path, tmp_path: Path) -> Iterator[list[LlamaCppEngine]]:
    made: list[LlamaCppEngine] = []
    yield made
    for eng in made:
        eng.close()


# ------------------------------------------------------------------------------------ the cache


def test_a_state_matching_only_a_prefix_is_offered_with_that_length(tmp_path: Path) -> None:
    cache = StateCache("m", tmp_path, min_disk_tokens=1)
    cache.put([1, 2, 3, 4, 5, 6], b"long", to_disk=True)
    cache.put([1, 2, 3, 9], b"short")
    match = cache.best([1, 2, 3, 4, 7, 7])
    assert (match.payload, match.length) == (b"long", 4)
    # Equally long matches: the smaller state wins (less to copy back).
    assert cache.best([1, 2, 3, 8]).payload == b"short"
    assert cache.best([1, 2, 3, 8], at_least=3) is None
    # A new process finds the disk state by its tokens without reading its payload first.
    fresh = StateCache("m", tmp_path, min_disk_tokens=1)
    assert fresh.best([1, 2, 3, 4, 5, 0]).length == 5
    assert StateCache("other settings", tmp_path).best([1, 2, 3, 4, 5, 0]) is None


# ------------------------------------------------------------------------- partial restore


@pytest.mark.model
@pytest.mark.parametrize("model", ["test", "tiny-gemma3n"])
def test_logits_after_a_partial_restore_equal_a_full_evaluation(
    model: str, test_model_path: Path, tmp_path: Path, engines: list[LlamaCppEngine]
) -> None:
    if model == "test":
        eng = _engine(test_model_path, None)
        first = eng.plan([user(LONG + " What did the keeper see?")]).tokens
        second = eng.plan([user(LONG + " Where are the ships now?")]).tokens
    else:  # Gemma 3n's own graph: KV-shared layers, sliding windows, per-layer embeddings
        path = tiny_chat_model(tmp_path / "tiny-gemma3n-chat.gguf")
        eng = LlamaCppEngine(path, n_ctx=512, n_threads=2, flash_attn=False, state_dir=None)
        eng.load()
        text = " ".join(["the cat sat on a mat and then it ran to the big old barn"] * 4)
        first = eng.plan([user(text + " and what did it see")]).tokens
        second = eng.plan([user(text + " where is the cat now")]).tokens
    engines.append(eng)
    llm = eng.llama
    shared = next(i for i, (a, b) in enumerate(zip(first, second)) if a != b)
    assert shared > MIN_RESTORE_GAIN and len(first) <= 512
    kv = KVSession(llm, StateCache("k", None))
    kv.truncate(0)
    kv.decode(first, all_logits=False)
    kv.stash()  # the first conversation's whole state: more than the second prompt can use
    kv.truncate(0)
    kept = kv.prepare(second)
    assert kept == shared and kv.restored == shared and kv.tokens() == second[:shared]
    kv.decode(second[shared:], all_logits=False)
    restored = logits_rows(llm, 1)[0]
    # The same batches without saving and restoring: bit for bit.
    kv.truncate(0)
    kv.decode(first, all_logits=False)
    kv.truncate(shared)
    kv.decode(second[shared:], all_logits=False)
    assert np.array_equal(restored, logits_rows(llm, 1)[0])
    # The second prompt evaluated from nothing, in one batch: llama.cpp's CPU kernels are not
    # batch-invariant (the prefix was computed in a batch of another size), so equal within their noise
    # (measured: up to 0.52 on the test model, where logits reach 20), with the same next token.
    kv.truncate(0)
    kv.decode(second, all_logits=False)
    full = logits_rows(llm, 1)[0]
    assert np.abs(restored - full).max() <= 1.0
    assert restored.argmax() == full.argmax()


@pytest.mark.model
def test_the_answer_reuses_its_generated_ids_when_they_do_not_round_trip(
    test_model_path: Path, engines: list[LlamaCppEngine]
) -> None:
    eng = _engine(test_model_path, None)
    engines.append(eng)
    llm = eng.llama
    question = user(LONG + " Summarise.")
    answer = "The keeper saw ships and gulls."
    # What the model generated: the answer one character at a time (a valid spelling, not the canonical
    # tokenization that re-rendering the text would produce).
    spelled = [llm.tokenize(ch.encode(), add_bos=False, special=False)[0] for ch in answer]
    assert llm.detokenize(spelled).decode() == answer
    canonical = llm.tokenize(answer.encode(), add_bos=False, special=False)
    assert canonical != spelled
    prompt = eng.plan([question]).tokens
    kv = KVSession(llm, None)
    kv.truncate(0)
    kv.decode([*prompt, *spelled], all_logits=False)  # the cache as the first turn left it
    follow = user("And the ships?")
    with_ids = [question, Message("assistant", (TextPart(answer + "\n"),), tuple(spelled)), follow]
    plan = eng.plan(with_ids)
    assert plan.tokens[len(prompt) : len(prompt) + len(spelled)] == spelled
    usage = collect(eng.stream_chat(with_ids, GREEDY)).usage
    new_tokens = len(plan.tokens) - len(prompt) - len(spelled)
    assert usage.prompt_eval_tokens == new_tokens
    # Without the ids the re-rendered answer differs from the cache at its first token: all of it again
    # (re-tokenized, as the canonical tokens).
    kv.truncate(0)
    kv.decode([*prompt, *spelled], all_logits=False)
    without = [question, Message("assistant", (TextPart(answer),)), follow]
    usage = collect(eng.stream_chat(without, GREEDY)).usage
    assert usage.prompt_eval_tokens == new_tokens + len(canonical)


@pytest.mark.model
def test_ids_of_another_text_or_vocabulary_are_not_used(engine: LlamaCppEngine) -> None:
    question = user("Hello there.")
    text = "General Kenobi."
    canonical = engine.plan([question, Message("assistant", (TextPart(text),))]).tokens
    bogus = (5, 6, 7, 10**8)  # spell nothing of the text (the last is no token at all)
    assert engine.plan([question, Message("assistant", (TextPart(text),), bogus)]).tokens == canonical
    llm = engine.llama
    ids = llm.tokenize(b"General Kenobi. And more text the stop string cut.", add_bos=False, special=False)
    cut = engine.plan([question, Message("assistant", (TextPart(text),), tuple(ids))]).tokens
    assert cut == canonical  # the ids that spell the text are used; what came after it is not


@pytest.mark.model
def test_ids_that_showed_as_nothing_are_kept(engine: LlamaCppEngine) -> None:
    llm = engine.llama
    question = user("Hello there.")
    control = llm.tokenize(b"<unused0>", add_bos=False, special=True)  # a control token: shows as nothing
    assert len(control) == 1 and engine._piece(control[0]) == b""
    hello, world = (llm.tokenize(t.encode(), add_bos=False, special=False) for t in ("Hello", " world"))
    ids = (*hello, *control, *world)  # what the model generated: "Hello world" on screen
    plan = engine.plan([question, Message("assistant", (TextPart("Hello world"),), ids)]).tokens
    prompt = engine.plan([question]).tokens
    assert plan[len(prompt) : len(prompt) + len(ids)] == list(ids)


@pytest.mark.model
def test_generated_ids_are_saved_with_the_answer_and_come_back_with_the_history(
    engine: LlamaCppEngine, tmp_path: Path
) -> None:
    from g3chat.core.chat import Turn

    store = Store(tmp_path / "h.db")
    conversation = store.create_conversation("ids")
    store.add_message(conversation.id, "user", "Tell me about the sea.")
    turn = Turn(engine, store.history(conversation.id), GREEDY, store=store, conversation_id=conversation.id)
    list(turn)
    saved = store.get_message(turn.saved.id)
    assert saved.meta["token_ids"] == list(turn.result.usage.completion_ids)
    assert len(saved.meta["token_ids"]) == turn.result.usage.completion_tokens > 0
    assert store.history(conversation.id)[-1].tokens == tuple(saved.meta["token_ids"])
    store.close()


# ------------------------------------------------------------------------------- shared preamble


@pytest.mark.model
def test_a_new_conversation_restores_the_shared_preamble(
    test_model_path: Path, tmp_path: Path, engines: list[LlamaCppEngine]
) -> None:
    first = _engine(test_model_path, tmp_path / "states")
    engines.append(first)
    events = list(first.stream_chat([system(TOOLS_LIKE), user("Hello there.")], GREEDY))
    stages = {e.stage for e in events if isinstance(e, PromptProgress)}
    assert "preamble" in stages  # the first run says it is preparing the preamble
    preamble = first.plan([system(TOOLS_LIKE), user("x")]).preamble
    assert preamble > 100
    # A new process, a new conversation with the same system prompt: the preamble is restored.
    second = _engine(test_model_path, tmp_path / "states")
    engines.append(second)
    messages = [system(TOOLS_LIKE), user("What is in the log file?")]
    events = list(second.stream_chat(messages, GREEDY))
    usage = collect(events).usage
    assert usage.restored_tokens == preamble
    assert usage.prompt_eval_tokens == usage.prompt_tokens - preamble
    assert not any(isinstance(e, PromptProgress) and e.stage == "preamble" for e in events)
    # ... and changes nothing in the answer: an engine without any saved state answers the same.
    plain = _engine(test_model_path, None, state_memory_mb=0)
    engines.append(plain)
    alone = collect(plain.stream_chat(messages, GREEDY))
    assert alone.usage.restored_tokens == 0 and alone.usage.prompt_eval_tokens == alone.usage.prompt_tokens
    assert collect(events).text == alone.text


@pytest.mark.model
def test_a_preamble_from_other_settings_is_never_used(
    test_model_path: Path, tmp_path: Path, engines: list[LlamaCppEngine]
) -> None:
    first = _engine(test_model_path, tmp_path / "states")
    engines.append(first)
    collect(first.stream_chat([system(TOOLS_LIKE), user("Hello there.")], GREEDY))
    assert list((tmp_path / "states").iterdir())
    other = LlamaCppEngine(
        test_model_path, n_ctx=1024, n_threads=2, flash_attn=False, state_dir=tmp_path / "states"
    )
    other.load()
    engines.append(other)
    usage = collect(other.stream_chat([system(TOOLS_LIKE), user("Hello again.")], GREEDY)).usage
    assert usage.restored_tokens == 0 and usage.prompt_eval_tokens == usage.prompt_tokens


@pytest.mark.model
def test_ask_tools_second_run_evaluates_only_the_question(cli_env: dict[str, str]) -> None:
    args = ("ask", "--json", "--tools", "all", "-n", "1", "--temperature", "0")  # one token: never a call
    first = json.loads(run_cli(*args, "hello there", env=cli_env).stdout)
    assert first["usage"]["prompt_tokens"] > 300
    second = json.loads(run_cli(*args, "what time is it", env=cli_env).stdout)
    assert second["usage"]["prompt_eval_tokens"] < 30 < second["usage"]["prompt_tokens"]


@pytest.mark.model
def test_ask_continue_evaluates_only_the_new_message(cli_env: dict[str, str]) -> None:
    first = json.loads(run_cli("ask", "--json", "-n", "40", "--temperature", "0", LONG, env=cli_env).stdout)
    second = json.loads(run_cli("ask", "--json", "-n", "4", "-c", "next?", env=cli_env).stdout)
    assert second["conversation_id"] == first["conversation_id"]
    # The new message and the 11 turn-marker tokens around it (and the last answer token, never evaluated
    # when the answer stopped at its length); none of the 40 generated tokens again.
    assert second["usage"]["prompt_eval_tokens"] <= 16
