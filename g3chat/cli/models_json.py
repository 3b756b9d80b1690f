"""The JSON records of ``g3chat models fit --json`` and ``g3chat models info --json``.

Every size is in bytes and every key that holds one ends in ``_bytes``. An estimate's ``parts_bytes`` add up
to its ``estimate_bytes`` (host plus GPU memory); ``host_bytes`` is what the process's RSS shows after
loading and a first batch, ``host_required_bytes`` the part that must fit (repacked matrices' file pages can
be dropped), and ``required_bytes`` adds the pick's safety margin to what must fit.
"""

from __future__ import annotations

from typing import Any

from g3chat.core.models.arch import ArchFacts
from g3chat.core.models.fit import EngineShape, Estimate
from g3chat.core.models.pick import MARGIN_FRACTION, MARGIN_MIN, Choice, Plan, Verdict, with_margin
from g3chat.core.models.probe import Hardware


def shape_record(shape: EngineShape) -> dict[str, Any]:
    return {
        "n_ctx": shape.n_ctx,
        "n_ubatch": shape.n_ubatch,
        "flash_attn": shape.flash_attn,
        "swa_full": shape.swa_full,
    }


def estimate_record(e: Estimate) -> dict[str, Any]:
    """An estimate: the context it is for, its total and its parts (host and GPU together), in bytes."""
    return {
        "n_ctx": e.n_ctx,
        "n_gpu_layers": e.n_gpu_layers,
        "estimate_bytes": e.total,
        "parts_bytes": {
            "weights": e.weights_host + e.weights_gpu,
            "kv_cache": e.kv_host + e.kv_gpu,
            "compute": e.compute_host + e.compute_gpu,
            "runtime": e.runtime,
            "projector": e.projector,
            "gpu_context": e.gpu_context,
        },
        "host_bytes": e.host,
        "host_required_bytes": e.host_required,
        "reclaimable_bytes": e.reclaimable,
        "gpu_bytes": e.gpu,
    }


def hardware_record(hw: Hardware) -> dict[str, Any]:
    return {
        "ram_total_bytes": hw.ram_total,
        "ram_available_bytes": hw.ram_available,
        "cgroup_limit_bytes": hw.cgroup_limit,
        "cgroup_usage_bytes": hw.cgroup_usage,
        "available_bytes": hw.ram_budget,  # what a new model may use now (the fit compares with this)
        "gpus": [
            {"name": g.name, "total_bytes": g.total, "free_bytes": g.free, "backend": g.backend}
            for g in hw.gpus
        ],
        "gpu_offload": hw.gpu_offload,
        "unified_memory": hw.unified_memory,
        "disk_free_bytes": hw.disk_free,
        "disk_path": str(hw.disk_path) if hw.disk_path is not None else None,
        "cpu_features": sorted(hw.cpu_features),
    }


def plan_record(plan: Plan, recommended: bool) -> dict[str, Any]:
    variant = plan.variant
    on_gpu = plan.verdict in (Verdict.FULL_GPU, Verdict.PARTIAL_GPU)
    return {
        "name": variant.name,
        "family": variant.family,
        "quant": variant.quant,
        "size": variant.size,
        "size_is_estimate": variant.size_is_estimate,
        "installed": plan.installed,
        "verdict": plan.verdict.value,
        "fits": plan.fits,
        "recommended": recommended,  # at the requested context (the table's star)
        "n_ctx": plan.n_ctx,
        "n_gpu_layers": plan.n_gpu_layers,
        "required_bytes": with_margin(plan.estimate.host_required),  # host memory, with the margin
        "required_gpu_bytes": with_margin(plan.estimate.gpu) if on_gpu else None,
        "estimate": estimate_record(plan.estimate),
    }


def fit_record(choice: Choice, hw: Hardware, shape: EngineShape) -> dict[str, Any]:
    best = choice.recommended
    recommended = None
    if best is not None:
        recommended = {
            "name": best.variant.name,
            "n_ctx": best.n_ctx,
            "shorter_ctx": choice.shorter_ctx,
            "verdict": best.verdict.value,
            "n_gpu_layers": best.n_gpu_layers,
            "estimate": estimate_record(best.estimate),
        }
    return {
        "machine": hardware_record(hw),
        "shape": shape_record(shape),
        "requested_ctx": choice.requested_ctx,
        "margin": {"fraction": MARGIN_FRACTION, "min_bytes": MARGIN_MIN},
        "variants": [
            plan_record(p, best is not None and p.variant == best.variant and not choice.shorter_ctx)
            for p in choice.plans
        ],
        "recommended": recommended,
        "explanation": choice.explain(hw),
    }


def facts_record(facts: ArchFacts) -> dict[str, Any]:
    return {
        "n_layer": facts.n_layer,
        "n_layer_kv": facts.n_layer_kv,
        "swa_layers_kv": facts.swa_layers_kv,
        "n_swa": facts.n_swa,
        "n_head": facts.n_head,
        "n_head_kv": facts.n_head_kv,
        "head_dim_k": facts.head_dim_k,
        "head_dim_v": facts.head_dim_v,
        "n_embd": facts.n_embd,
        "n_ff": facts.n_ff,
        "n_vocab": facts.n_vocab,
        "n_embd_per_layer": facts.n_embd_per_layer,
    }


def info_memory_record(cpu: Estimate, hw: Hardware, shape: EngineShape) -> dict[str, Any]:
    """``models info``'s memory fields: the CPU estimate, the shape it is for, and whether it fits now."""
    required = with_margin(cpu.host_required)
    return {
        "shape": shape_record(shape),
        "estimate": estimate_record(cpu),
        "memory": {
            "available_bytes": hw.ram_budget,
            "required_bytes": required,
            "fits": required <= hw.ram_budget,
        },
    }
