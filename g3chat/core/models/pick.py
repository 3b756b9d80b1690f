"""Which variant to run, and how: the highest quality that fits with a margin, on the GPU when it helps.

Each variant gets a verdict: *won't fit*, *CPU*, *partial GPU* (as many layers as fit in GPU memory) or
*full GPU*. The recommendation is the highest-quality variant of the family (Gemma 3n E2B) that fits at
the requested context; when none does, the context is halved (down to 2,048 tokens) until one fits, and
the choice says so. An unquantized (F16) file is recommended only when it runs wholly on a GPU.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import Enum

from g3chat.core.models.arch import ArchFacts
from g3chat.core.models.catalog import Variant
from g3chat.core.models.fit import EngineShape, Estimate, Weights, effective_ctx, estimate
from g3chat.core.models.probe import Hardware, gib

MiB = 1 << 20
MARGIN_FRACTION = 0.10
MARGIN_MIN = 256 * MiB
MIN_CTX = 2048
# Unquantized files are recommended only when they run wholly on a GPU: on a CPU they are no better than
# Q8_0 in practice and decode at half its speed (twice the memory read per token).
UNQUANTIZED = ("F16", "BF16", "F32")


class Verdict(str, Enum):
    WONT_FIT = "won't fit"
    CPU = "CPU"
    PARTIAL_GPU = "partial GPU"
    FULL_GPU = "full GPU"


def with_margin(n: int) -> int:
    """Bytes needed including the safety margin: 10 %, at least 256 MiB."""
    return n + max(MARGIN_MIN, int(n * MARGIN_FRACTION))


@dataclass(frozen=True)
class Plan:
    variant: Variant
    verdict: Verdict
    estimate: Estimate
    n_ctx: int
    n_gpu_layers: int  # 0 CPU, -1 everything, else that many layers
    installed: bool = False

    @property
    def fits(self) -> bool:
        return self.verdict is not Verdict.WONT_FIT

    def describe(self, hw: Hardware) -> str:
        e = self.estimate
        if self.verdict is Verdict.FULL_GPU:
            return f"all layers on the GPU: {gib(e.gpu)} of GPU memory, {gib(e.host)} of RAM"
        if self.verdict is Verdict.PARTIAL_GPU:
            return (
                f"{self.n_gpu_layers} of {self.variant.facts.n_layer} layers on the GPU "
                f"({gib(e.gpu)}), {gib(e.host)} of RAM"
            )
        if self.verdict is Verdict.CPU:
            return f"on the CPU: {gib(e.host)} of RAM ({gib(hw.ram_budget)} available)"
        return f"needs {gib(with_margin(e.host_required))} with margin, {gib(hw.ram_budget)} available"


@dataclass(frozen=True)
class Choice:
    plans: tuple[Plan, ...]  # every variant considered, at the requested context
    recommended: Plan | None
    requested_ctx: int

    @property
    def shorter_ctx(self) -> bool:
        return self.recommended is not None and self.recommended.n_ctx < self.requested_ctx

    def explain(self, hw: Hardware) -> str:
        best = self.recommended
        if best is None:
            return (
                f"nothing fits: even the smallest variant needs more than the {gib(hw.ram_budget)} of memory "
                f"available with a {MIN_CTX}-token context"
            )
        text = f"{best.variant.name}: the best quality that fits — {best.describe(hw)}"
        if self.shorter_ctx:
            text += (
                f"; it fits only with a shorter context, so g3chat uses {best.n_ctx:,} tokens instead of "
                f"{self.requested_ctx:,}"
            )
        return text


def _unquantized(variant: Variant) -> bool:
    return variant.quant.upper() in UNQUANTIZED


def _fits_host(e: Estimate, hw: Hardware) -> bool:
    return with_margin(e.host_required) <= hw.ram_budget


def _fits_gpu(e: Estimate, hw: Hardware) -> bool:
    gpu = hw.best_gpu
    if gpu is None:
        return False
    if hw.unified_memory:  # one pool: everything must fit the RAM, the GPU part the Metal working set
        return with_margin(e.host_required + e.gpu) <= hw.ram_budget and with_margin(e.gpu) <= gpu.free
    return with_margin(e.gpu) <= gpu.free and _fits_host(e, hw)


def place(
    facts: ArchFacts, weights: Weights, hw: Hardware, shape: EngineShape, *, projector: int = 0
) -> tuple[Verdict, Estimate, int]:
    """The best placement at ``shape``'s context: (verdict, its estimate, GPU layers: 0 CPU, -1 all)."""
    if hw.best_gpu is not None:
        full = estimate(facts, weights, shape, n_gpu_layers=-1, projector=projector)
        if _fits_gpu(full, hw):
            return Verdict.FULL_GPU, full, -1
        for layers in range(facts.n_layer, 0, -1):
            partial = estimate(facts, weights, shape, n_gpu_layers=layers, projector=projector)
            if _fits_gpu(partial, hw):
                return Verdict.PARTIAL_GPU, partial, layers
    cpu = estimate(facts, weights, shape, n_gpu_layers=0, projector=projector)
    return (Verdict.CPU if _fits_host(cpu, hw) else Verdict.WONT_FIT), cpu, 0


def plan_variant(
    variant: Variant,
    facts: ArchFacts,
    weights: Weights,
    hw: Hardware,
    shape: EngineShape,
    *,
    projector: int = 0,
    installed: bool = False,
) -> Plan:
    """The best way to run ``variant`` (whose architecture is ``facts``) here at ``shape``'s context."""
    verdict, chosen, layers = place(facts, weights, hw, shape, projector=projector)
    return Plan(variant, verdict, chosen, effective_ctx(facts, shape.n_ctx), layers, installed)


@dataclass(frozen=True)
class Candidate:
    """A variant with what planning it needs: its architecture, where its bytes go, its projector."""

    variant: Variant
    facts: ArchFacts
    weights: Weights
    installed: bool = False
    projector: int = 0


def choose(
    candidates: Sequence[Candidate],
    hw: Hardware,
    shape: EngineShape,
    *,
    family: str | None = None,
) -> Choice:
    """Plan every candidate; recommend the best of ``family`` (any when None) that fits."""

    def plans_at(at: EngineShape) -> list[Plan]:
        return [
            plan_variant(c.variant, c.facts, c.weights, hw, at, projector=c.projector, installed=c.installed)
            for c in candidates
        ]

    def best(plans: list[Plan]) -> Plan | None:
        eligible = [
            p
            for p in plans
            if p.fits
            and (family is None or p.variant.family == family)
            and (p.verdict is Verdict.FULL_GPU or not _unquantized(p.variant))
        ]
        if not eligible:
            return None
        return max(eligible, key=lambda p: (p.variant.quality, p.installed, -p.variant.size))

    plans = plans_at(shape)
    requested = max((p.n_ctx for p in plans), default=shape.n_ctx)
    recommended = best(plans)
    n_ctx = requested // 2
    while recommended is None and n_ctx >= MIN_CTX:
        recommended = best(plans_at(replace(shape, n_ctx=n_ctx)))
        n_ctx //= 2
    return Choice(tuple(plans), recommended, requested)
