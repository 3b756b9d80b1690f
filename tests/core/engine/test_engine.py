"""The llama.cpp engine, with real inference on the offline test model (no mocks)."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from g3chat.core.engine.base import Engine
from g3chat.core.engine.decoding import StopMatcher
from g3chat.core.engine.llama import LlamaCppEngine
from g3chat.core.errors import ContextOverflowError, ModelFileError
from g3chat.core.types import (
    Finished,
    GenerationParams,
    PromptProgress,
    TextDelta,
    Usage,
    assistant,
    collect,
    system,
    user,
)
from tests.conftest import TEST_THREADS
from tests.fixtures.gguf_edit import with_metadata

pytestmark = pytest.mark.model
GREEDY = GenerationParams(temperature=0.0, max_tokens=16)
LONG_TEXT = " ".join(f"Sentence number {i} talks about rivers, mountains and the sea." for i in range(120))


def test_is_an_engine(engine: LlamaCppEngine) -> None:
    assert isinstance(engine, Engine)
    info = engine.info
    assert info is not None and info.architecture == "gemma3" and info.n_ctx == 2048
    assert info.chat_format == "builtin-gemma"  # the test model has no chat template


def test_streams_one_delta_per_token_then_usage_and_finish(engine: LlamaCppEngine) -> None:
    events = list(engine.stream_chat([user("Write a short poem about the sea.")], GREEDY))
    deltas = [e for e in events if isinstance(e, TextDelta)]
    usage, finish = events[-2], events[-1]
    assert isinstance(usage, Usage) and isinstance(finish, Finished)
    assert finish.reason == "length" and usage.completion_tokens == 16
    assert len(deltas) >= 8  # streamed piece by piece, not in one lump at the end
    assert usage.ttft_s is not None and usage.ttft_s > 0 and usage.decode_tokens_per_s > 0


def test_greedy_is_deterministic_and_seed_reproduces_sampling(engine: LlamaCppEngine) -> None:
    # Each run starts from a clean cache, so the same batches are computed both times (llama.cpp's
    # kernels give slightly different numbers for a token evaluated alone or inside a batch).
    prompt = [user("Tell me about mountains.")]
    for params in (GREEDY, GenerationParams(temperature=1.0, seed=1234, max_tokens=16)):
        texts = []
        for _ in range(2):
            engine.llama.reset()
            texts.append(collect(engine.stream_chat(prompt, params)).text)
        assert texts[0] == texts[1] and texts[0]


def test_cancel_mid_stream_stops_within_a_token(engine: LlamaCppEngine) -> None:
    cancel = threading.Event()
    deltas = 0
    usage = finish = None
    for event in engine.stream_chat(
        [user("Count to one hundred.")], GenerationParams(max_tokens=200), cancel
    ):
        if isinstance(event, TextDelta):
            deltas += 1
            if deltas == 3:
                cancel.set()
        elif isinstance(event, Usage):
            usage = event
        elif isinstance(event, Finished):
            finish = event
    assert finish is not None and finish.reason == "cancelled"
    assert usage is not None and usage.completion_tokens <= 4


def test_cancel_during_a_long_prompt_and_recover(engine: LlamaCppEngine) -> None:
    messages = [user(LONG_TEXT[:3500] + " Summarise.")]  # more than one 512-token batch
    cancel = threading.Event()
    events = []
    for event in engine.stream_chat(messages, GREEDY, cancel):
        events.append(event)
        if isinstance(event, PromptProgress):
            cancel.set()
    usage = next(e for e in events if isinstance(e, Usage))
    assert events[-1].reason == "cancelled"
    assert not any(isinstance(e, TextDelta) for e in events)
    assert 0 < usage.prompt_eval_tokens < usage.prompt_tokens
    # The half-evaluated prompt is reused correctly: the model's next-token distribution matches a clean
    # evaluation (up to the last bits llama.cpp's batch-size-dependent kernels change).
    cached = engine.cached_tokens()
    assert cached == engine.tokenize_prompt(messages)[: len(cached)]
    resumed, resumed_logits = final_logits(engine, messages)
    assert resumed.usage.prompt_eval_tokens == usage.prompt_tokens - len(cached)
    engine.llama.reset()
    fresh, fresh_logits = final_logits(engine, messages)
    assert resumed.text == fresh.text and cosine(resumed_logits, fresh_logits) > 0.999


def test_max_tokens_and_context_overflow(engine: LlamaCppEngine) -> None:
    result = collect(engine.stream_chat([user("hello")], GenerationParams(max_tokens=3)))
    assert result.finish_reason == "length" and result.usage.completion_tokens == 3
    with pytest.raises(ContextOverflowError, match="context window is 2048"):
        list(engine.stream_chat([user(LONG_TEXT * 2)], GREEDY))


def test_stop_strings_never_reach_the_user(engine: LlamaCppEngine) -> None:
    # The base model writes " mendatang" where a chat turn would end: use it as a stop string.
    plain = collect(engine.stream_chat([user("Write OK")], GREEDY))
    assert "mendatang" in plain.text
    stopped = collect(
        engine.stream_chat(
            [user("Write OK")], GenerationParams(temperature=0, max_tokens=16, stop=("mendatang",))
        )
    )
    assert stopped.finish_reason == "stop"
    assert "menda" not in "".join(stopped.chunks) and plain.text.startswith(stopped.text)


def test_stop_matcher_holds_back_partial_matches() -> None:
    matcher = StopMatcher(["<END>"])
    assert matcher.feed("abc<E") == ("abc", False)
    assert matcher.feed("N") == ("", False)
    assert matcher.feed("D>x") == ("", True)
    other = StopMatcher(["<END>"])
    assert other.feed("a<") == ("a", False)
    assert other.feed("b") == ("<b", False)
    assert StopMatcher([]).feed("<END>") == ("<END>", False)


def test_end_of_turn_token_stops_and_is_not_shown(test_model_path: Path, tmp_path: Path) -> None:
    # A copy of the test model whose end-of-turn token is the one it naturally writes at a turn's end,
    # as Gemma 3n IT writes <end_of_turn>: generation must stop there and show nothing of it.
    path = with_metadata(test_model_path, tmp_path / "eot.gguf", {"tokenizer.ggml.eot_token_id": 217716})
    eng = LlamaCppEngine(path, n_ctx=512, n_threads=TEST_THREADS)
    eng.load()
    try:
        result = collect(eng.stream_chat([user("Write OK")], GenerationParams(temperature=0, max_tokens=30)))
    finally:
        eng.close()
    assert result.finish_reason == "stop"
    assert result.text == "Write OK" and result.usage.completion_tokens == 2


def test_follow_up_turn_evaluates_only_new_tokens(engine: LlamaCppEngine) -> None:
    turn1 = [system("You are terse."), user("Name three colours of the rainbow, please.")]
    first = collect(engine.stream_chat(turn1, GREEDY))
    first_prompt = engine.tokenize_prompt(turn1)
    turn2 = [*turn1, assistant(first.text), user("And two more?")]
    cached_before = engine.cached_tokens()
    # One token only: the first comes from the prefill's logits, so llama.cpp's prompt-eval counter holds
    # the prefill alone (speculative verification batches would count there too).
    second = collect(engine.stream_chat(turn2, GenerationParams(temperature=0, max_tokens=1)))
    tokens2 = engine.tokenize_prompt(turn2)
    common = 0
    for a, b in zip(cached_before, tokens2):
        if a != b:
            break
        common += 1
    new_turn = engine.tokenize_prompt([user("And two more?")])
    perf = engine.perf()  # llama.cpp's own count of prompt tokens it evaluated this turn
    assert second.usage.prompt_eval_tokens == perf["n_p_eval"] == len(tokens2) - common
    assert common >= len(first_prompt)  # everything of turn 1's prompt came from the cache
    assert perf["n_p_eval"] <= len(new_turn) + 4  # ≈ only the new message and the turn markers


def test_sliding_window_rollback_is_safe(test_model_path: Path) -> None:
    """With a trimmed sliding-window cache a far rollback must re-evaluate, and answers stay identical.

    Flash attention is off here: with it on, keys computed inside a longer batch can differ from a fresh
    evaluation in the last bits (llama.cpp's kernels are not batch-invariant), and greedy text can drift.
    """
    long_a = [user(LONG_TEXT[:3800] + " First question?")]  # longer than the trimmed window cache
    short_b = [user(LONG_TEXT[:150] + " A different question entirely?")]
    for swa_full in (False, True):
        eng = LlamaCppEngine(
            test_model_path,
            n_ctx=2048,
            n_threads=TEST_THREADS,
            swa_full=swa_full,
            n_batch=64,
            flash_attn=False,
        )
        eng.load()
        try:
            collect(eng.stream_chat(long_a, GenerationParams(temperature=0, max_tokens=1)))
            result, logits = final_logits(eng, short_b)
            eng.llama.reset()
            _, fresh_logits = final_logits(eng, short_b)
        finally:
            eng.close()
        if swa_full:
            assert result.usage.prompt_eval_tokens < result.usage.prompt_tokens  # prefix reused
            assert cosine(logits, fresh_logits) > 0.999
        else:
            assert result.usage.prompt_eval_tokens == result.usage.prompt_tokens  # window gone: all again
            assert (logits == fresh_logits).all()  # the very same computation as from a clean cache


def final_logits(engine: LlamaCppEngine, messages: list) -> tuple:
    """Run one greedy token and return (result, the logits the prefill left for it)."""
    import llama_cpp
    import numpy as np

    result = collect(engine.stream_chat(messages, GenerationParams(temperature=0, max_tokens=1)))
    llm = engine.llama
    logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm.ctx, -1), shape=(llm.n_vocab(),))
    return result, logits.copy()


def cosine(a, b) -> float:
    import numpy as np

    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_utf8_characters_split_across_tokens_are_never_broken(engine: LlamaCppEngine) -> None:
    llm = engine.llama
    glyph = "𓀀"
    assert len(llm.tokenize(glyph.encode(), add_bos=False, special=False)) == 4  # one byte per token
    result = collect(
        engine.stream_chat([user(glyph * 8 + " 𐍈𐍈𐍈")], GenerationParams(temperature=0, max_tokens=24))
    )
    assert glyph in result.text
    for chunk in result.chunks:
        assert "\ufffd" not in chunk
        chunk.encode("utf-8")  # every delta is whole characters


def test_people_text_cannot_inject_control_tokens(engine: LlamaCppEngine) -> None:
    end_of_turn = engine.llama.tokenize(b"<end_of_turn>", add_bos=False, special=True)
    assert len(end_of_turn) == 1
    tokens = engine.tokenize_prompt([user("please print <end_of_turn> literally")])
    assert tokens.count(end_of_turn[0]) == 1  # only the template's own end of the user turn


def test_count_tokens(engine: LlamaCppEngine) -> None:
    messages = [user("one two three")]
    assert engine.count_tokens(messages) == len(engine.tokenize_prompt(messages)) > 5


def test_gguf_chat_template_is_used(
    templated_model_path: Path, test_model_path: Path, tmp_path: Path, engine: LlamaCppEngine
) -> None:
    messages = [system("Be brief."), user("Hi"), assistant("Hello"), user("Bye")]
    eng = LlamaCppEngine(templated_model_path, n_ctx=512, n_threads=TEST_THREADS, flash_attn=False)
    eng.load()
    try:
        assert eng.info.chat_format == "gguf-template"
        # Gemma 3n's own template and the built-in format give the same tokens, so the same answer.
        assert eng.tokenize_prompt(messages) == engine.tokenize_prompt(messages)
        engine.llama.reset()
        assert (
            collect(eng.stream_chat(messages, GREEDY)).text
            == collect(engine.stream_chat(messages, GREEDY)).text
        )
    finally:
        eng.close()
    marked = with_metadata(
        test_model_path,
        tmp_path / "marked.gguf",
        {
            "tokenizer.chat_template": "{{ bos_token }}{% for m in messages %}"
            "[{{ m['role'] }}] {{ m['content'] }}\n{% endfor %}"
            "{% if add_generation_prompt %}[assistant] {% endif %}"
        },
    )
    eng = LlamaCppEngine(marked, n_ctx=512, n_threads=TEST_THREADS)
    eng.load()
    try:
        text = "".join(s.text for s in eng.segments([user("Hi")]))
        assert text == "<bos>[user] Hi\n[assistant] "
        assert (
            collect(eng.stream_chat([user("Hi")], GenerationParams(max_tokens=2))).usage.completion_tokens
            == 2
        )
    finally:
        eng.close()


def test_llama_cpp_rejection_is_one_clear_line(test_model_path: Path, tmp_path: Path) -> None:
    path = with_metadata(test_model_path, tmp_path / "alien.gguf", {"general.architecture": "alien9000"})
    with pytest.raises(ModelFileError) as info:
        LlamaCppEngine(path, n_ctx=256, n_threads=1).load()
    message = str(info.value)
    assert "llama.cpp could not load the model" in message and "alien9000" in message and "\n" not in message


def _run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("verbose", [False, True])
def test_native_log_chatter_only_when_verbose(test_model_path: Path, verbose: bool) -> None:
    code = (
        "from g3chat.core.engine.llama import LlamaCppEngine\n"
        "from g3chat.core.types import GenerationParams, collect, user\n"
        f"e = LlamaCppEngine({str(test_model_path)!r}, n_ctx=256, n_threads=1, verbose={verbose})\n"
        "e.load()\n"
        "print(repr(collect(e.stream_chat([user('hi')], GenerationParams(max_tokens=2))).text))\n"
    )
    proc = _run_python(code)
    assert proc.returncode == 0, proc.stderr[-2000:]
    if verbose:
        assert "llama_model_loader" in proc.stderr or "llama_context" in proc.stderr
    else:
        assert proc.stderr == ""
        assert proc.stdout.count("\n") == 1  # only our own print
