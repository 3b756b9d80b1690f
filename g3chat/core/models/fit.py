"""How much memory a model needs with the context settings the engine really uses.

estimate = weights + KV cache + compute buffers + runtime + projector (the pick adds a safety margin).

- **Weights**: the tensor data (llama.cpp maps the file and populates every page). On x86 with AVX2 (and on
  ARM with i8mm/dotprod) llama.cpp's CPU backend copies some matrices (Q4_0/Q4_K/IQ4_NL, ...) into a
  repacked layout: those bytes are resident twice after loading (the copy and the file's pages), but the
  file's pages are never read again and the kernel drops them first, so the fit counts them once
  (``host_required``). With a GPU the offloaded layers' weights move to GPU memory;
  the token and per-layer embeddings stay in host memory, and a tied output matrix gets a GPU copy.
- **KV cache**: f16 K and V for every layer that owns KV (Gemma 3n: 20 of 30), ``n_ctx`` cells (rounded up
  to 256) for global layers; sliding-window layers get ``n_ctx`` cells with ``swa_full`` (g3chat's default)
  or ``min(n_ctx, pad256(n_swa + n_ubatch))`` without. This is exactly what llama.cpp logs as its KV buffers,
  and all of it is resident from the load on: llama.cpp clears the buffers when it creates the context.
- **Compute buffers** (measured on the offline test model, Gemma 3 270M, and on Gemma 3n E2B-shaped
  Q4_K_M and Q8_0 files, n_ubatch 512 — see bench/fit_estimate.py): on the CPU only the pages a batch
  touches count, about ``6 x n_ff`` floats per batch token for activations, plus Gemma 3n's per-layer
  inputs (``n_layer x n_embd_per_layer`` floats per batch token, alive for the whole graph: 15 MiB for E2B,
  just what E2B's measured compute exceeded the ``n_ff`` rule by at every context), plus the attention
  masks (``n_ubatch x n_ctx`` floats in all) with flash attention or the scores (``n_ubatch x n_ctx x
  n_head x 8`` bytes) without. A GPU backend allocates llama.cpp's whole worst-case reserve, whose largest
  part is the logits of a full batch (``n_ubatch x n_vocab`` floats).
- **Runtime**: tokenizer tables and llama.cpp's per-context state, measured at 52 MiB for Gemma's 262k
  vocabulary (53-55 MiB on the Gemma 3n E2B-shaped files at 4K-32K tokens), scaled by vocabulary size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from g3chat.core.gguf_file import GGUFSummary, ggml_type_id
from g3chat.core.models.arch import HOST_TENSORS, ArchFacts

if TYPE_CHECKING:
    from g3chat.core.models.catalog import Variant

MiB = 1 << 20
ACT_FLOATS_PER_FF = 6  # activation floats per batch token per unit of n_ff (measured: 23.7 MiB at n_ff 2048)
RUNTIME_BYTES = 52 * MiB  # measured on the test model (262,144-token vocabulary)
RUNTIME_VOCAB = 262_144
GPU_CONTEXT_BYTES = 256 * MiB  # CUDA context and cuBLAS workspace (not measured here: no GPU in CI)
# Average bits per weight of each quant, for the GPU copy of a tied output matrix before the file exists.
QUANT_BITS = {"Q2_K": 2.6, "Q3_K_M": 3.9, "Q4_0": 4.5, "Q4_K_M": 4.9, "Q5_K_M": 5.7, "Q6_K": 6.6}
QUANT_BITS |= {"Q8_0": 8.5, "F16": 16.0, "BF16": 16.0, "F32": 32.0}
# ggml types llama.cpp's CPU backend repacks, by the CPU features that enable it (ggml-cpu/repack.cpp).
_REPACK_AVX2 = ("Q4_0", "Q4_K", "IQ4_NL", "MXFP4")
_REPACK_NEON = ("Q4_0", "Q4_K", "Q5_K", "Q6_K", "IQ4_NL", "Q8_0", "MXFP4")


def repack_types(cpu_features: frozenset[str]) -> frozenset[int]:
    if "REPACK" not in cpu_features and cpu_features:
        return frozenset()
    names: set[str] = set()
    if "AVX2" in cpu_features:
        names.update(_REPACK_AVX2)
    if "AVX512" in cpu_features:
        names.add("Q2_K")
    if "NEON" in cpu_features and ({"MATMUL_INT8", "DOTPROD"} & cpu_features):
        names.update(_REPACK_NEON)
    return frozenset(ggml_type_id(name) for name in names)


class EngineSettingsLike(Protocol):
    """What EngineShape reads from g3chat.config.EngineSettings (the core does not import the config)."""

    @property
    def n_ctx(self) -> int: ...
    @property
    def n_batch(self) -> int: ...
    @property
    def flash_attn(self) -> bool: ...
    @property
    def swa_full(self) -> bool: ...


@dataclass(frozen=True)
class EngineShape:
    """The context settings the engine loads with (g3chat.config.EngineSettings)."""

    n_ctx: int
    n_ubatch: int = 512
    flash_attn: bool = True
    swa_full: bool = True

    @classmethod
    def from_settings(cls, engine: EngineSettingsLike, n_ctx: int | None = None) -> EngineShape:
        return cls(
            n_ctx=n_ctx if n_ctx is not None else engine.n_ctx,
            n_ubatch=engine.n_batch,  # the engine sets n_ubatch = n_batch
            flash_attn=engine.flash_attn,
            swa_full=engine.swa_full,
        )


@dataclass(frozen=True)
class Weights:
    """Where a model's bytes go: all of them, the host-only embeddings, the repacked copy, the output copy."""

    total: int
    host_only: int
    repack: int
    output_copy: int
    exact: bool  # read from a GGUF tensor table, not estimated from catalog shares

    @classmethod
    def from_gguf(cls, summary: GGUFSummary, cpu_features: frozenset[str]) -> Weights:
        repackable = repack_types(cpu_features)
        total = host = repack = 0
        sizes: dict[str, int] = {}
        for tensor in summary.tensors:
            size = tensor.nbytes or 0
            sizes[tensor.name] = size
            total += size
            if tensor.name in HOST_TENSORS:
                host += size
            elif (
                tensor.name.startswith("blk.")
                and tensor.ggml_type in repackable
                and len(tensor.shape) == 2
                and tensor.shape[1] % 8 == 0
            ):
                repack += size
        output = 0 if "output.weight" in sizes else sizes.get("token_embd.weight", 0)
        return cls(total, host, repack, output, exact=True)

    @classmethod
    def from_catalog(cls, variant: Variant, facts: ArchFacts, cpu_features: frozenset[str]) -> Weights:
        size = variant.size
        repacked = ggml_type_id("Q4_K") in repack_types(cpu_features)
        repack = int(size * variant.repack_share) if repacked else 0
        bits = QUANT_BITS.get(variant.quant, 8.0)
        output = int(facts.n_vocab * facts.n_embd * bits / 8)
        return cls(size, int(size * variant.host_share), repack, output, exact=False)


@dataclass(frozen=True)
class Estimate:
    n_ctx: int
    n_gpu_layers: int  # 0: CPU only
    weights_host: int
    weights_gpu: int
    kv_host: int
    kv_gpu: int
    compute_host: int
    compute_gpu: int
    runtime: int
    projector: int
    gpu_context: int
    reclaimable: int = 0  # file pages of repacked matrices: resident after loading, dropped under pressure

    @property
    def host(self) -> int:
        """Host memory in use after loading and a first full batch (what RSS shows)."""
        return self.weights_host + self.kv_host + self.compute_host + self.runtime + self.projector

    @property
    def host_required(self) -> int:
        """Host memory that must fit: the repacked matrices' original file pages can be dropped."""
        return self.host - self.reclaimable

    @property
    def gpu(self) -> int:
        return self.weights_gpu + self.kv_gpu + self.compute_gpu + self.gpu_context

    @property
    def total(self) -> int:
        return self.host + self.gpu


def _pad(n: int, to: int = 256) -> int:
    return (n + to - 1) // to * to


def effective_ctx(facts: ArchFacts, n_ctx: int) -> int:
    """The context the engine really creates: 0 means the trained maximum, and never beyond it."""
    if n_ctx <= 0 or (facts.context_length and n_ctx > facts.context_length):
        n_ctx = facts.context_length or 4096
    return n_ctx


def kv_cells(facts: ArchFacts, shape: EngineShape) -> tuple[int, int]:
    """(cells of a global layer, cells of a sliding-window layer), as llama_kv_cache_iswa sizes them."""
    n_ctx = _pad(effective_ctx(facts, shape.n_ctx))
    if not facts.n_swa or shape.swa_full:
        return n_ctx, n_ctx
    return n_ctx, _pad(min(n_ctx, facts.n_swa + shape.n_ubatch))


def kv_bytes(facts: ArchFacts, shape: EngineShape, layers_kv: int | None = None) -> int:
    """KV cache bytes for all KV-owning layers (or the first ``layers_kv`` sliding/global mix pro rata)."""
    full_cells, swa_cells = kv_cells(facts, shape)
    swa = facts.swa_layers_kv
    dense = facts.n_layer_kv - swa
    total = (dense * full_cells + swa * swa_cells) * facts.kv_bytes_per_cell
    if layers_kv is None or facts.n_layer_kv == 0:
        return total
    return total * min(layers_kv, facts.n_layer_kv) // facts.n_layer_kv


def compute_bytes(facts: ArchFacts, shape: EngineShape, *, reserve: bool) -> int:
    """Compute buffer: the pages a CPU run touches, or (``reserve``) what a GPU backend allocates."""
    n_ctx = _pad(effective_ctx(facts, shape.n_ctx))
    per_token = ACT_FLOATS_PER_FF * facts.n_ff + facts.n_layer * facts.n_embd_per_layer
    activations = shape.n_ubatch * 4 * per_token
    attention = shape.n_ubatch * n_ctx * (4 if shape.flash_attn else 8 * facts.n_head)
    if not reserve:
        return activations + attention
    return max(shape.n_ubatch * facts.n_vocab * 4, activations + attention)


def runtime_bytes(facts: ArchFacts) -> int:
    return RUNTIME_BYTES * max(facts.n_vocab, 1) // RUNTIME_VOCAB


def estimate(
    facts: ArchFacts,
    weights: Weights,
    shape: EngineShape,
    *,
    n_gpu_layers: int = 0,
    projector: int = 0,
) -> Estimate:
    """Memory for one load. ``n_gpu_layers``: 0 CPU only, -1 or more than n_layer: everything offloaded."""
    n_ctx = effective_ctx(facts, shape.n_ctx)
    kv = kv_bytes(facts, shape)
    runtime = runtime_bytes(facts)
    if n_gpu_layers == 0:
        return Estimate(
            n_ctx=n_ctx,
            n_gpu_layers=0,
            weights_host=weights.total + weights.repack,
            weights_gpu=0,
            kv_host=kv,
            kv_gpu=0,
            compute_host=compute_bytes(facts, shape, reserve=False),
            compute_gpu=0,
            runtime=runtime,
            projector=projector,
            gpu_context=0,
            reclaimable=weights.repack,
        )
    layers = facts.n_layer if n_gpu_layers < 0 or n_gpu_layers > facts.n_layer else n_gpu_layers
    output_on_gpu = n_gpu_layers < 0 or n_gpu_layers > facts.n_layer
    layer_bytes = max(0, weights.total - weights.host_only) / max(facts.n_layer, 1)
    gpu_weights = int(layer_bytes * layers) + (weights.output_copy if output_on_gpu else 0)
    host_weights = weights.total - int(layer_bytes * layers)
    host_repack = weights.repack * (facts.n_layer - layers) // max(facts.n_layer, 1)
    host_weights += host_repack
    # llama.cpp offloads the last layers first; only the first n_layer_kv layers own KV.
    kv_layers_on_gpu = max(0, facts.n_layer_kv - (facts.n_layer - layers))
    kv_gpu = kv_bytes(facts, shape, kv_layers_on_gpu)
    cpu_compute = compute_bytes(facts, shape, reserve=False)
    return Estimate(
        n_ctx=n_ctx,
        n_gpu_layers=n_gpu_layers,
        weights_host=host_weights,
        weights_gpu=gpu_weights,
        kv_host=kv - kv_gpu,
        kv_gpu=kv_gpu,
        compute_host=cpu_compute // 4,  # host-side buffer for the layers left on the CPU and the inputs
        compute_gpu=compute_bytes(facts, shape, reserve=True),
        runtime=runtime,
        projector=projector,
        gpu_context=GPU_CONTEXT_BYTES,
        reclaimable=host_repack,
    )
