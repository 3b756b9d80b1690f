"""The pick over simulated machines: 4/6/8/16 GB of RAM, 0/4/8/24 GB of VRAM, a container limit."""

from __future__ import annotations

import pytest

from g3chat.core.models.catalog import load_catalog
from g3chat.core.models.fit import EngineShape, Weights, estimate
from g3chat.core.models.pick import Candidate, Choice, Verdict, choose, with_margin
from g3chat.core.models.probe import GPU, GiB, Hardware, MiB

AVX2 = frozenset({"AVX2", "REPACK"})
SHAPE = EngineShape(n_ctx=8192, n_ubatch=512, flash_attn=True, swa_full=True)


def machine(ram_gb: float, vram_gb: float = 0, *, cgroup_gb: float | None = None) -> Hardware:
    ram = int(ram_gb * GiB)
    hw = Hardware(
        ram_total=ram,
        ram_available=ram - 768 * MiB,  # what the OS and other programs hold
        cgroup_limit=int(cgroup_gb * GiB) if cgroup_gb else None,
        cgroup_usage=512 * MiB if cgroup_gb else None,
        cpu_features=AVX2,
    )
    if vram_gb:
        hw = hw.with_gpus(GPU("NVIDIA test GPU", int(vram_gb * GiB), int(vram_gb * GiB) - 300 * MiB, "cuda"))
    return hw


def candidates() -> list[Candidate]:
    catalog = load_catalog()
    return [Candidate(v, v.facts, Weights.from_catalog(v, v.facts, AVX2)) for v in catalog.variants]


def pick(hw: Hardware, shape: EngineShape = SHAPE) -> Choice:
    return choose(candidates(), hw, shape, family="e2b")


@pytest.mark.parametrize(
    ("ram", "expected"),
    [(4, "e2b-q3_k_m"), (6, "e2b-q6_k"), (8, "e2b-q8_0"), (16, "e2b-q8_0")],
)
def test_cpu_only_machines(ram: int, expected: str) -> None:
    choice = pick(machine(ram))
    assert choice.recommended is not None and choice.recommended.variant.name == expected
    assert choice.recommended.verdict is Verdict.CPU and not choice.shorter_ctx
    better = [p for p in choice.plans if p.variant.family == "e2b" and p.variant.quality > 8]
    # F16 may fit a 16 GB machine's RAM, but is recommended only when it runs on a GPU.
    assert all(p.variant.quant == "F16" for p in better)


@pytest.mark.parametrize(
    ("vram", "verdict", "expected"),
    [
        (0, Verdict.CPU, "e2b-q8_0"),
        (4, Verdict.PARTIAL_GPU, "e2b-q8_0"),
        (8, Verdict.FULL_GPU, "e2b-f16"),
        (24, Verdict.FULL_GPU, "e2b-f16"),
    ],
)
def test_gpu_machines_with_16_gb_ram(vram: int, verdict: Verdict, expected: str) -> None:
    choice = pick(machine(16, vram))
    best = choice.recommended
    assert best is not None and (best.variant.name, best.verdict) == (expected, verdict)
    if verdict is Verdict.PARTIAL_GPU:
        facts = best.variant.facts
        assert 0 < best.n_gpu_layers <= facts.n_layer  # n_layer: every layer, the output matrix on the CPU
        more = estimate(
            facts, Weights.from_catalog(best.variant, facts, AVX2), SHAPE, n_gpu_layers=best.n_gpu_layers + 1
        )
        gpu = machine(16, vram).best_gpu
        assert gpu is not None and with_margin(more.gpu) > gpu.free  # the most layers that fit


def test_full_gpu_keeps_embeddings_in_host_memory() -> None:
    best = pick(machine(16, 24)).recommended
    assert best is not None
    e = best.estimate
    weights = Weights.from_catalog(best.variant, best.variant.facts, AVX2)
    assert e.weights_host == weights.total - (weights.total - weights.host_only)  # only the embeddings
    assert e.kv_host == 0 and e.kv_gpu > 0 and e.compute_gpu >= 512 * 262_400 * 4


def test_a_container_limit_below_host_ram_is_what_fits() -> None:
    host_only = pick(machine(16))
    contained = pick(machine(16, cgroup_gb=4))
    assert host_only.recommended is not None and contained.recommended is not None
    assert host_only.recommended.variant.name == "e2b-q8_0"
    assert contained.recommended.variant.name == "e2b-q3_k_m"  # 3.5 GiB left in the container


def test_shorter_context_when_only_that_fits() -> None:
    hw = Hardware(ram_total=4 * GiB, ram_available=3 * GiB, cpu_features=AVX2)
    choice = pick(hw, EngineShape(32768))
    assert choice.requested_ctx == 32768
    assert all(not p.fits for p in choice.plans if p.variant.family == "e2b")
    assert choice.recommended is not None and choice.shorter_ctx
    assert choice.recommended.n_ctx == 8192 and choice.recommended.variant.name == "e2b-q2_k"
    assert "shorter context" in choice.explain(hw) and "8,192" in choice.explain(hw)


def test_nothing_fits_a_tiny_machine() -> None:
    hw = Hardware(ram_total=2 * GiB, ram_available=1 * GiB, cpu_features=AVX2)
    choice = pick(hw)
    assert choice.recommended is None and all(p.verdict is Verdict.WONT_FIT for p in choice.plans)
    assert "nothing fits" in choice.explain(hw)


@pytest.mark.parametrize("ram", [4, 6, 8, 16])
@pytest.mark.parametrize("vram", [0, 4, 8, 24])
def test_every_fitting_verdict_leaves_the_margin(ram: int, vram: int) -> None:
    hw = machine(ram, vram)
    for plan in pick(hw).plans:
        e = plan.estimate
        if plan.verdict is Verdict.WONT_FIT:
            assert with_margin(e.host_required) > hw.ram_budget
            continue
        assert with_margin(e.host_required) <= hw.ram_budget
        if plan.verdict in (Verdict.FULL_GPU, Verdict.PARTIAL_GPU):
            assert hw.best_gpu is not None and with_margin(e.gpu) <= hw.best_gpu.free
        else:
            assert e.gpu == 0


def test_more_memory_never_picks_worse() -> None:
    quality = [pick(machine(ram)).recommended for ram in (3, 4, 5, 6, 7, 8, 12, 16)]
    ranks = [p.variant.quality if p else 0 for p in quality]
    assert ranks == sorted(ranks) and ranks[-1] == 8
