"""Token sampling after a prefill, with prompt-lookup speculation, and stop-string handling."""

from __future__ import annotations

import time
from collections.abc import Generator, Sequence
from typing import Any

from g3chat.core.engine.kv import KVSession
from g3chat.core.engine.speculative import DRAFT_SIZES, DraftPolicy, FixedDraft, PromptLookupDrafter


class StopMatcher:
    """Holds back text that might be the start of a stop string, so stop text never reaches the user."""

    def __init__(self, stops: Sequence[str]) -> None:
        self.stops = [s for s in stops if s]
        self.pending = ""

    def feed(self, text: str) -> tuple[str, bool]:
        """Return (text safe to emit, whether a stop string was completed)."""
        if not self.stops:
            return text, False
        self.pending += text
        hits = [self.pending.find(s) for s in self.stops if s in self.pending]
        if hits:
            out, self.pending = self.pending[: min(hits)], ""
            return out, True
        keep = 0
        for s in self.stops:
            for n in range(min(len(s) - 1, len(self.pending)), 0, -1):
                if self.pending.endswith(s[:n]):
                    keep = max(keep, n)
                    break
        out = self.pending[: len(self.pending) - keep]
        self.pending = self.pending[len(self.pending) - keep :]
        return out, False

    def flush(self) -> str:
        out, self.pending = self.pending, ""
        return out


def sample_tokens(
    kv: KVSession,
    sampler: Any,
    drafter: PromptLookupDrafter | None,
    policy: DraftPolicy | FixedDraft | None = None,
) -> Generator[int, None, None]:
    """Sampled tokens, one at a time, after a prefill left the last prompt position's logits ready.

    Every yielded token is one the sampler drew from the model's distribution at its position, one draw
    per token in order, exactly as without speculation. With a drafter, a guessed continuation (as long as
    ``policy`` finds worth its cost) is evaluated in one batch and kept up to the first token the sampler
    disagrees with. When the consumer stops, the KV cache holds exactly the tokens it was handed (the last
    one excepted if it was never evaluated).
    """
    llm = kv.llm
    ctx = llm._ctx
    room = llm.n_ctx() - 1
    committed = llm.n_tokens
    if drafter is not None and policy is None:
        policy = DraftPolicy()
    try:
        token = sampler.sample(ctx, -1)
        while True:
            yield token
            draft: list[int] = []
            if drafter is not None and policy is not None:
                drafter.append(token)
                proposal = drafter.propose(min(DRAFT_SIZES[-1], room - llm.n_tokens - 1))
                draft = proposal[: policy.choose(len(proposal))]
            started = time.perf_counter()
            base = llm.n_tokens
            kv.decode([token, *draft], all_logits=bool(draft))
            committed = base + 1
            following: int | None = None
            for i, guess in enumerate(draft):
                sampled = sampler.sample(ctx, i)
                if sampled != guess:
                    following = sampled
                    break
                committed += 1
                if drafter is not None:  # always: only a drafter makes a draft
                    drafter.append(guess)
                yield guess
            if draft and committed - base - 1 < len(draft):
                kv.truncate(committed)
            token = following if following is not None else sampler.sample(ctx, len(draft))
            if policy is not None:
                kept = committed - base - 1
                policy.record(len(draft), time.perf_counter() - started, kept)
                if draft and drafter is not None:
                    drafter.proposed += len(draft)
                    drafter.accepted += kept
    finally:
        if llm.n_tokens > committed:
            kv.truncate(committed)
