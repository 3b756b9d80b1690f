"""Fitting a conversation into the context window.

When the next turn would not fit (the prompt plus room for the answer exceeds ``n_ctx``), the oldest
turns are left out of the prompt: the system prompt and the latest turn always stay. A *turn* is a user
message with the answers that follow it, so the model never sees an answer without its question.
Nothing is deleted from the history; only what is sent to the model shrinks.

Trimming is hysteretic. Dropping only what the next turn needs would drop one more turn at the front on
every later turn, and a prompt whose beginning changes cannot reuse the engine's KV cache: the whole kept
history is evaluated again each turn (at Gemma 3n E2B's ~20 ms a prompt token on two CPU cores, a 6K-token
history costs two minutes a turn). So the prompt may only start at a *cut point* of a fixed schedule:
with the slack ``S`` (a quarter of the window by default), cut point ``m`` is the first turn whose
preceding turns hold at least ``m·S`` tokens, counted from the start of the conversation. The history
alone decides the schedule, so every turn (and every process: ``g3chat ask -c`` starts afresh each time)
computes the same cut points, and the first one that fits is used. Each trim therefore drops about ``S``
tokens more than needed, and the following turns keep exactly the same beginning until they have grown by
about ``S`` tokens. The per-turn sizes that place the cut points are approximate (each turn counted on its
own); the prompt's ``tokens`` and ``fits`` use the engine's exact count of the whole prompt.
"""

from __future__ import annotations

import itertools
import weakref
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from g3chat.core.types import Message, ToolResultPart

DEFAULT_ANSWER_RESERVE = 1024
DEFAULT_TRIM_SLACK = 0.25  # of n_ctx: how far the conversation may grow after a trim before the next one
TURN_SIZES_KEPT = 4096  # turn sizes remembered per engine (two ints each)

CountTokens = Callable[[Sequence[Message]], int]
Sizes = OrderedDict[int, int]  # a turn's hash: its size
# Turn sizes by the engine (the object whose ``count_tokens`` counted them), freed with it: a long
# conversation's turns are counted once, not on every answer (a 500-turn history costs ~1 s to count).
_turn_sizes: weakref.WeakKeyDictionary[object, Sizes] = weakref.WeakKeyDictionary()


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
    cut: int = 0  # the schedule's cut point the prompt starts at: 0 when nothing is dropped, -1 when off it
    room: int = 0  # tokens the prompt may still grow before it needs a trim (negative when it does not fit)


def _turn_starts(body: Sequence[Message]) -> list[int]:
    """Indexes in ``body`` where a turn begins (each user message; index 0 always). A user message of tool
    results only is part of the turn whose answer called the tools: a call is never kept without its
    question, nor a result without its call."""
    starts = [i for i, m in enumerate(body) if i > 0 and m.role == "user" and not _results_only(m)]
    return [0, *starts]


def _results_only(message: Message) -> bool:
    return bool(message.parts) and all(isinstance(p, ToolResultPart) for p in message.parts)


def trim_slack(n_ctx: int, budget: int, fraction: float = DEFAULT_TRIM_SLACK) -> int:
    """The schedule's step in tokens: ``fraction`` of the window, but at most half the prompt's budget
    (a large answer reserve must not leave a trimmed prompt almost empty)."""
    return max(1, min(int(fraction * n_ctx), budget // 2))


def cut_points(sizes: Sequence[int], step: int) -> list[int]:
    """The schedule: for m = 1, 2, ... the first turn ``k >= 1`` whose preceding turns' ``sizes`` add up
    to at least ``m * step``; a turn that several m land on is listed once. Ascending turn indexes; the last
    turn is never a cut point (it always stays)."""
    cuts: list[int] = []
    total = 0
    goal = step
    for k in range(1, len(sizes)):
        total += sizes[k - 1]
        if total >= goal:
            cuts.append(k)
            goal = (total // step + 1) * step
    return cuts


def _size_cache(count_tokens: CountTokens) -> Sizes:
    owner = getattr(count_tokens, "__self__", count_tokens)
    try:
        return _turn_sizes.setdefault(owner, OrderedDict())
    except TypeError:  # not weakly referable: no cache kept
        return OrderedDict()


def _turn_key(turn: tuple[Message, ...]) -> int:
    """The turn's hash: the cache keeps no message alive (a collision only moves a cut point)."""
    try:
        return hash(turn)
    except TypeError:  # a tool call's arguments are a dict
        return hash(repr(turn))


def _turn_size(turn: tuple[Message, ...], count_tokens: CountTokens, cache: Sizes) -> int:
    """About how many tokens ``turn`` adds to a prompt: the engine's count of it on its own."""
    key = _turn_key(turn)
    size = cache.get(key)
    if size is not None:
        cache.move_to_end(key)
        return size
    try:
        size = count_tokens(turn)
    except Exception:  # a template may refuse a lone fragment (Gemma's wants a user message first)
        size = sum(len(m.text) // 4 + 4 for m in turn)
    cache[key] = size
    while len(cache) > TURN_SIZES_KEPT:
        cache.popitem(last=False)
    return size


def fit_to_context(
    messages: Sequence[Message],
    count_tokens: CountTokens,
    n_ctx: int,
    reserve: int,
    slack: float = DEFAULT_TRIM_SLACK,
) -> FittedPrompt:
    """Drop the oldest turns, at the first cut point of the schedule (see the module's docstring) that
    leaves ``reserve`` tokens of ``n_ctx`` for the answer.

    ``count_tokens`` is the engine's own count (the rendered prompt). When everything fits it is called
    once; otherwise once per turn not counted before (to place the cut points; the sizes are kept per
    engine) and a few times more: the cut point is found by bisection. ``slack`` is the schedule's step as
    a fraction of ``n_ctx``; 0 drops only what is needed, as without hysteresis.
    """
    messages = list(messages)
    budget = n_ctx - reserve
    total = count_tokens(messages)
    if total <= budget:
        return FittedPrompt(messages, total, 0, True, 0, budget - total)
    system = [m for m in messages if m.role == "system"]
    body = [m for m in messages if m.role != "system"]
    starts = _turn_starts(body)
    last = len(starts) - 1
    if slack > 0:
        bounds = [*starts, len(body)]
        cache = _size_cache(count_tokens)
        turns = [tuple(body[a:b]) for a, b in itertools.pairwise(bounds)]
        sizes = [_turn_size(turn, count_tokens, cache) for turn in turns]
        cuts = cut_points(sizes, trim_slack(n_ctx, budget, slack))
    else:
        cuts = []
    # Candidates in order of fewer turns kept: the schedule's cut points, then (only when none of them
    # fits: the last turn alone is near the budget) every later turn start, dropping no more than needed.
    after = cuts[-1] + 1 if cuts else 1
    candidates = [*cuts, *range(after, last + 1)]
    lo, hi = 0, len(candidates) - 1
    best: tuple[int, int] | None = None
    while lo <= hi:
        mid = (lo + hi) // 2
        tokens = count_tokens([*system, *body[starts[candidates[mid]] :]])
        if tokens <= budget:
            best = (mid, tokens)
            hi = mid - 1
        else:
            lo = mid + 1
    if best is None:
        kept = [*system, *body[starts[last] :]]
        tokens = count_tokens(kept)
        return FittedPrompt(kept, tokens, starts[last], False, -1, budget - tokens)
    i, tokens = best
    k = candidates[i]
    cut = i + 1 if i < len(cuts) else -1
    return FittedPrompt([*system, *body[starts[k] :]], tokens, starts[k], True, cut, budget - tokens)
