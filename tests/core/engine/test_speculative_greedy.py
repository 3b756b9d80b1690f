"""Greedy speculation on the production path: every kept token is the argmax of the row llama.cpp computed.

docs/performance.md says greedy output with speculation can differ from plain decoding only because
llama.cpp may compute a position's logits slightly differently inside a verification batch than alone. This
checks that claim where it matters, with what the engine really runs (flash attention, two threads, the
draft lengths DraftPolicy picks): for every kept token, plain and speculative, the logits llama.cpp computed
for the position before it (read from the batch itself, after each llama_decode) have that token as their
argmax. A speculative loop that judged a draft by the wrong row or kept a rejected draft would break this; a
kernel that is not batch-invariant would not (llama.cpp itself refuses a batch whose positions do not follow
the cache's, so rejected drafts cannot linger there).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from g3chat.core.engine.llama import LlamaCppEngine
from g3chat.core.types import GenerationParams, Usage, collect, user

PARAGRAPH = (
    "It is a truth universally acknowledged, that a single man in possession of a good fortune, must be in "
    "want of a wife. However little known the feelings or views of such a man may be on his first entering "
    "a neighbourhood, this truth is so well fixed in the minds of the surrounding families, that he is "
    "considered the rightful property of some one or other of their daughters."
)
# Prompts the base test model continues by copying: drafts are long and mostly accepted.
PROMPTS = (
    PARAGRAPH + "\n\n" + PARAGRAPH[:60],
    "\n".join(f"Field {i}: name of the field number {i} = ____" for i in range(1, 9)),
)
GREEDY = GenerationParams(temperature=0, max_tokens=32)
# A cost curve where verification batches are cheap (as on a GPU), so that DraftPolicy tries long drafts
# whatever this machine's load makes of the calibration; it still times every step and adapts.
CHEAP_BATCHES = {1: 1.1, 3: 1.3, 7: 1.7, 15: 2.5}


class LogitsTrace:
    """The logits row llama.cpp computed for each position, and the size of the batch it was computed in:
    read after every ``llama_decode`` of the engine's context (a later evaluation of a position replaces
    an earlier one, as the KV cache does)."""

    def __init__(self, llm: Any) -> None:
        import llama_cpp

        self.rows: dict[int, np.ndarray] = {}
        self.batch: dict[int, int] = {}
        context, decode, n_vocab = llm._ctx, llm._ctx.decode, llm.n_vocab()

        def traced(batch: Any) -> None:
            decode(batch)
            raw = batch.batch
            for i in range(raw.n_tokens):
                if raw.logits[i]:
                    row = llama_cpp.llama_get_logits_ith(context.ctx, i)
                    self.rows[raw.pos[i]] = np.ctypeslib.as_array(row, shape=(n_vocab,)).copy()
                    self.batch[raw.pos[i]] = raw.n_tokens

        self._undo = lambda: delattr(context, "decode")
        context.decode = traced

    def close(self) -> None:
        self._undo()


def traced_run(engine: LlamaCppEngine, prompt: str) -> tuple[Usage, LogitsTrace]:
    engine.llama.reset()  # both runs evaluate the prompt the same way
    trace = LogitsTrace(engine.llama)
    try:
        usage = collect(engine.stream_chat([user(prompt)], GREEDY)).usage
    finally:
        trace.close()
    assert usage is not None
    return usage, trace


def chosen_from(usage: Usage, trace: LogitsTrace) -> list[tuple[int, int, int]]:
    """(kept token, argmax of the row it was chosen from, size of that row's batch) per kept token."""
    start = usage.prompt_tokens - 1
    return [
        (token, int(np.argmax(trace.rows[start + j])), trace.batch[start + j])
        for j, token in enumerate(usage.completion_ids)
    ]


@pytest.fixture(scope="module")
def production(test_model_path: Path) -> Iterator[LlamaCppEngine]:
    """The engine as g3chat runs it (flash attention on, two threads), without saved states."""
    engine = LlamaCppEngine(
        test_model_path, n_ctx=1024, n_threads=2, flash_attn=True, state_memory_mb=0, state_dir=None
    )
    engine.load()
    yield engine
    engine.close()


@pytest.mark.model
@pytest.mark.parametrize("prompt", PROMPTS, ids=("paragraph", "template"))
def test_greedy_speculation_keeps_the_argmax_of_each_batch_row(
    production: LlamaCppEngine, prompt: str
) -> None:
    production.speculative = "off"
    plain, plain_trace = traced_run(production, prompt)
    production.speculative, production._draft_ratios = "on", dict(CHEAP_BATCHES)
    spec, spec_trace = traced_run(production, prompt)
    plain_chosen, spec_chosen = chosen_from(plain, plain_trace), chosen_from(spec, spec_trace)
    assert len(plain_chosen) == len(spec_chosen) == GREEDY.max_tokens
    assert all(kept == best for kept, best, _ in plain_chosen)
    assert all(size == 1 for _, _, size in plain_chosen[1:])  # plain decoding: one token a step
    assert [kept for kept, _, _ in spec_chosen] == [best for _, best, _ in spec_chosen]
    # Speculation really ran: long drafts, accepted, and most tokens chosen from rows of a batch.
    assert spec.accepted_tokens >= GREEDY.max_tokens // 4
    assert max(size for _, _, size in spec_chosen) >= 4
    assert sum(size > 1 for _, _, size in spec_chosen) >= GREEDY.max_tokens // 2
    # Where the outputs part (in longer answers), the two runs computed that position's logits differently:
    # each kept the argmax of its own row, and the rows are not the same.
    parted = [j for j, (a, b) in enumerate(zip(plain.completion_ids, spec.completion_ids)) if a != b]
    for j in parted[:1]:
        position = plain.prompt_tokens - 1 + j
        assert not np.array_equal(plain_trace.rows[position], spec_trace.rows[position])
