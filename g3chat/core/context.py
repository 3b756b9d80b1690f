"""Fitting a conversation into the context window.

When the next turn would not fit (the prompt plus room for the answer exceeds ``n_ctx``), the oldest
turns are left out of the prompt: the system prompt and the latest turns always stay. A *turn* is a user
message with the answers that follow it, so the model never sees an answer without its question.
Nothing is deleted from the history; only what is sent to the model shrinks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from g3chat.core.types import Message

DEFAULT_ANSWER_RESERVE = 1024


def answer_reserve(n_ctx: int, max_tokens: int | None) -> int:
    """Room kept free for the answer: ``max_tokens`` when set, else up to a quarter of the window."""
    if max_tokens:
        return min(max_tokens, max(0, n_ctx - 1))
    return min(DEFAULT_ANSWER_RESERVE, n_ctx // 4)


@dataclass(frozen=True)
class FittedPrompt:
    messages: list[Message]
    tokens: int  # prompt tokens of ``messages``
    dropped: int  # messages left out (oldest first)
    fits: bool  # False when even the system prompt and the last turn leave no room for the answer


def _turn_starts(body: Sequence[Message]) -> list[int]:
    """Indexes in ``body`` where a turn begins (each user message; index 0 always)."""
    starts = [i for i, m in enumerate(body) if m.role == "user" and i > 0]
    return [0, *starts]


def fit_to_context(
    messages: Sequence[Message],
    count_tokens: Callable[[Sequence[Message]], int],
    n_ctx: int,
    reserve: int,
) -> FittedPrompt:
    """Drop the oldest turns until the prompt leaves ``reserve`` tokens of ``n_ctx`` for the answer.

    ``count_tokens`` is the engine's own count (the rendered prompt), so the estimate is exact. The number
    of turns to drop is found by bisection: a long history costs a few counts, not one per turn.
    """
    messages = list(messages)
    budget = n_ctx - reserve
    total = count_tokens(messages)
    if total <= budget:
        return FittedPrompt(messages, total, 0, True)
    system = [m for m in messages if m.role == "system"]
    body = [m for m in messages if m.role != "system"]
    starts = _turn_starts(body)
    # Candidate k keeps body[starts[k]:]; the last turn is always kept.
    lo, hi = 1, len(starts) - 1
    best: tuple[int, int] | None = None
    while lo <= hi:
        mid = (lo + hi) // 2
        tokens = count_tokens([*system, *body[starts[mid] :]])
        if tokens <= budget:
            best = (mid, tokens)
            hi = mid - 1
        else:
            lo = mid + 1
    if best is None:
        last = len(starts) - 1
        kept = [*system, *body[starts[last] :]]
        return FittedPrompt(kept, count_tokens(kept), starts[last], False)
    k, tokens = best
    return FittedPrompt([*system, *body[starts[k] :]], tokens, starts[k], True)
