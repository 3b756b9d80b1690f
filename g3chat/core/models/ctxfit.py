"""Check a context size against the model and the machine before llama.cpp allocates anything.

llama.cpp accepts any ``n_ctx``: above the trained context it only warns, and a KV cache larger than the
memory is allocated and then touched page by page until the machine swaps or the kernel kills the process.
:func:`fit_context` decides first, from the GGUF header and the same estimate ``g3chat models fit`` uses:

- a context above the trained one is clamped to it, with a one-line notice;
- a context whose estimate does not fit is refused with an :class:`InputError` naming the largest context
  that does, when the user asked for it (``--ctx``); a configured one (``engine.n_ctx``, shared by every model
  and machine) is lowered to that largest context, with a notice, as the model manager does for its models.

When even the smallest context does not fit, the weights are the problem, not the context: the check lets
the load go ahead (their pages are mapped from the file) and ``g3chat models fit`` explains.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from g3chat.core.errors import InputError
from g3chat.core.gguf_file import GGUFSummary, inspect_gguf
from g3chat.core.models.arch import ArchFacts
from g3chat.core.models.fit import EngineShape, Weights, effective_ctx
from g3chat.core.models.pick import Verdict, place, with_margin
from g3chat.core.models.probe import Hardware, gib

STEP = 256  # llama.cpp pads the KV cache to 256 cells


@dataclass(frozen=True)
class ContextFit:
    n_ctx: int  # the context to create (0 only when the header says too little to decide)
    notice: str | None = None


def fit_context(
    model: Path | GGUFSummary,
    shape: EngineShape,
    hw: Hardware,
    *,
    explicit: bool,
    name: str | None = None,
    projector: int = 0,
) -> ContextFit:
    """The context to load ``model`` with at ``shape`` on ``hw``. ``explicit``: the user asked for
    ``shape.n_ctx`` on the command line (refuse what does not fit) rather than in the config (lower it)."""
    summary = model if isinstance(model, GGUFSummary) else inspect_gguf(model)
    label = "--ctx" if explicit else "engine.n_ctx"
    name = name or summary.name or "the model"
    trained = summary.context_length or 0
    requested = shape.n_ctx
    notices: list[str] = []
    n_ctx = requested
    if requested <= 0:
        n_ctx = trained
    elif trained and requested > trained:
        n_ctx = trained
        notices.append(
            f"note: {label} {requested:,} is above {name}'s trained context of {trained:,} tokens; "
            f"using {trained:,}"
        )
    facts = ArchFacts.from_gguf(summary)
    if facts is None or n_ctx <= 0:
        return ContextFit(n_ctx, "; ".join(notices) or None)
    weights = Weights.from_gguf(summary, hw.cpu_features)

    def fits(ctx: int) -> bool:
        verdict, _, _ = place(facts, weights, hw, replace(shape, n_ctx=ctx), projector=projector)
        return verdict is not Verdict.WONT_FIT

    if fits(n_ctx):
        return ContextFit(n_ctx, "; ".join(notices) or None)
    largest = _largest_fitting(fits, n_ctx)
    if largest is None:
        return ContextFit(n_ctx, "; ".join(notices) or None)
    if explicit:
        _, best, _ = place(facts, weights, hw, replace(shape, n_ctx=n_ctx), projector=projector)
        raise InputError(
            f"--ctx {requested:,}: {name} with a {effective_ctx(facts, n_ctx):,}-token context needs "
            f"{gib(with_margin(best.host_required))} of memory ({gib(best.kv_host + best.kv_gpu)} of it "
            f"the KV cache), {gib(hw.ram_budget)} available; the largest context that fits is {largest:,} "
            f"(--ctx {largest})"
        )
    notices.append(
        f"note: {name} fits this machine only with a {largest:,}-token context ({label} is {n_ctx:,}); "
        "using that"
    )
    return ContextFit(largest, "; ".join(notices))


def _largest_fitting(fits: Callable[[int], bool], below: int) -> int | None:
    """The largest multiple of :data:`STEP` under ``below`` for which ``fits`` holds (it only ever turns
    false as the context grows), or None when not even one step fits."""
    high = (below - 1) // STEP  # fits((high + 1) * STEP) is known to be false
    if high < 1 or not fits(STEP):
        return None
    low = 1  # fits(low * STEP) holds
    while low < high:
        mid = (low + high + 1) // 2
        if fits(mid * STEP):
            low = mid
        else:
            high = mid - 1
    return low * STEP
