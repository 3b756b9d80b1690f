"""The fit estimate's parts against what llama.cpp itself allocates for the real test model."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from g3chat.core.gguf_file import inspect_gguf
from g3chat.core.models.arch import ArchFacts
from g3chat.core.models.catalog import load_catalog
from g3chat.core.models.fit import EngineShape, Weights, compute_bytes, estimate, kv_bytes, kv_cells
from g3chat.core.models.probe import llama_capabilities
from tests.conftest import FIXTURES

MiB = 1 << 20
TINY_GEMMA3N = FIXTURES / "audio" / "tiny-gemma3n.gguf"
# Peak RSS (VmHWM less the RSS before loading) of Gemma 3n E2B-shaped files (random weights, real shapes:
# bench/e2b_model.py) after loading, one 512-token batch and 16 tokens; 2 threads, x86 with AVX2, default
# engine settings (bench/fit_estimate.py --fill batch). quant: (tensor bytes, repacked bytes, peaks by n_ctx).
E2B_PEAKS = {
    "Q4_K_M": (3_300_292_992, 903_610_368, {4096: 4_550_717_440, 8192: 4_723_388_416, 32768: 5_785_616_384}),
    "Q8_0": (4_781_554_048, 0, {4096: 5_128_884_224, 8192: 5_305_131_008, 32768: 6_364_237_824}),
}

# Loads the model with llama.cpp's log captured and prints the buffer sizes it reports, in MiB.
LOAD = r"""
import ctypes, json, re, sys
import llama_cpp
lines = []
@llama_cpp.llama_log_callback
def cb(level, text, user_data):
    lines.append(text.decode("utf-8", "replace"))
llama_cpp.llama_log_set(cb, ctypes.c_void_p(0))
out = []
for n_ctx, swa_full in json.loads(sys.argv[2]):
    lines.clear()
    llm = llama_cpp.Llama(sys.argv[1], n_ctx=n_ctx, n_batch=512, n_ubatch=512, n_threads=1,
                          swa_full=swa_full, flash_attn=True, verbose=True)
    text = "".join(lines)
    out.append({
        "kv": sum(float(m) for m in re.findall(r"KV buffer size =\s+([\d.]+) MiB", text)),
        "cells": [int(m) for m in re.findall(r"size = (\d+) cells", text)],
        "repack": sum(float(m) for m in re.findall(r"CPU_REPACK model buffer size =\s+([\d.]+) MiB", text)),
        "mapped": sum(float(m) for m in re.findall(r"CPU_Mapped model buffer size =\s+([\d.]+) MiB", text)),
    })
    llm.close()
print(json.dumps(out))
"""

CONFIGS = [(1024, True), (4096, False), (3000, True)]


@pytest.fixture(scope="module")
def llama_log(test_model_path: Path) -> list[dict[str, object]]:
    proc = subprocess.run(
        [sys.executable, "-c", LOAD, str(test_model_path), json.dumps(CONFIGS)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_arch_facts_from_the_test_model(test_model_path: Path) -> None:
    facts = ArchFacts.from_gguf(inspect_gguf(test_model_path))
    assert facts is not None
    # Gemma 3 270M: 18 layers, every 6th global -> 15 sliding-window layers, 1 KV head of 256.
    assert (facts.architecture, facts.n_layer, facts.n_layer_kv, facts.swa_layers_kv) == (
        "gemma3",
        18,
        18,
        15,
    )
    assert (facts.n_head_kv, facts.head_dim_k, facts.n_swa, facts.n_vocab) == (1, 256, 512, 262_144)
    assert facts.n_embd_per_layer == 0  # Gemma 3 has no per-layer inputs


@pytest.mark.model
def test_kv_cache_is_exactly_what_llama_cpp_allocates(
    test_model_path: Path, llama_log: list[dict[str, object]]
) -> None:
    facts = ArchFacts.from_gguf(inspect_gguf(test_model_path))
    assert facts is not None
    for (n_ctx, swa_full), logged in zip(CONFIGS, llama_log):
        shape = EngineShape(n_ctx=n_ctx, n_ubatch=512, flash_attn=True, swa_full=swa_full)
        assert logged["cells"] == list(kv_cells(facts, shape)), (n_ctx, swa_full)
        assert kv_bytes(facts, shape) / MiB == pytest.approx(logged["kv"], abs=0.01), (n_ctx, swa_full)


@pytest.mark.model
def test_weights_and_repacked_copy_match_llama_cpp(
    test_model_path: Path, llama_log: list[dict[str, object]]
) -> None:
    weights = Weights.from_gguf(inspect_gguf(test_model_path), llama_capabilities()[1])
    logged = llama_log[0]
    assert weights.total / MiB == pytest.approx(logged["mapped"], abs=0.01)
    assert weights.repack / MiB == pytest.approx(logged["repack"], abs=0.01)
    assert (
        weights.host_only > 0 and weights.output_copy == weights.host_only
    )  # tied output, no per-layer table


def test_gemma3n_e2b_kv_follows_the_20_of_30_rule() -> None:
    facts = load_catalog().get("e2b-q4_k_m").facts
    per_token_per_layer = 2 * 256 * 2 * 2  # 2 KV heads x 256 x (K, V) x f16
    full = kv_bytes(facts, EngineShape(8192, swa_full=True))
    assert full == 20 * 8192 * per_token_per_layer  # 320 MiB: only 20 layers own KV
    windowed = kv_bytes(facts, EngineShape(8192, swa_full=False))
    assert windowed == (4 * 8192 + 16 * 1024) * per_token_per_layer  # window 512 + batch 512 cells
    assert kv_bytes(facts, EngineShape(0)) == 20 * 32768 * per_token_per_layer  # 0: the trained maximum


def test_estimate_parts_add_up_and_scale_with_context() -> None:
    variant = load_catalog().get("e2b-q4_k_m")
    weights = Weights.from_catalog(variant, variant.facts, frozenset({"AVX2", "REPACK"}))
    short = estimate(variant.facts, weights, EngineShape(4096))
    long = estimate(variant.facts, weights, EngineShape(16384))
    assert short.host == short.weights_host + short.kv_host + short.compute_host + short.runtime
    assert short.weights_host == variant.size + weights.repack and short.reclaimable == weights.repack
    assert long.kv_host == 4 * short.kv_host and long.compute_host > short.compute_host
    assert long.weights_host == short.weights_host and short.gpu == 0
    off = estimate(variant.facts, weights, EngineShape(4096, flash_attn=False))
    assert off.compute_host > short.compute_host  # attention scores are materialized without flash attention


def test_gemma3n_per_layer_inputs_count_in_the_compute_buffer() -> None:
    tiny = ArchFacts.from_gguf(inspect_gguf(TINY_GEMMA3N))
    assert tiny is not None and tiny.n_embd_per_layer == 256  # gemma3n.embedding_length_per_layer_input
    facts = load_catalog().get("e2b-q4_k_m").facts
    assert facts.n_embd_per_layer == 256
    shape = EngineShape(4096)
    extra = compute_bytes(facts, shape, reserve=False) - compute_bytes(
        replace(facts, n_embd_per_layer=0), shape, reserve=False
    )
    assert extra == 512 * 30 * 256 * 4  # 15 MiB: a batch's per-layer inputs, f32


def test_estimate_within_target_of_e2b_shaped_peak_rss() -> None:
    facts = replace(load_catalog().get("e2b-q4_k_m").facts, n_vocab=262_144)  # the shaped files' vocabulary
    for quant, (total, repack, peaks) in E2B_PEAKS.items():
        weights = Weights(total, host_only=0, repack=repack, output_copy=0, exact=True)
        for n_ctx, peak in peaks.items():
            error = (estimate(facts, weights, EngineShape(n_ctx)).host - peak) / peak
            assert -0.03 <= error <= 0.10, (quant, n_ctx, f"{error:+.1%}")  # measured: within 0.1 %
