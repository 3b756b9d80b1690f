"""The architecture facts a memory estimate needs, read from a GGUF header or from the catalog.

The rules follow llama.cpp's loaders: Gemma 3 puts a global-attention layer after every five sliding-window
layers (pattern 6), Gemma 3n after every four (pattern 5) and only its first 20 layers own a KV cache (the
rest reuse it: ``n_layer_kv_from_start = 20`` in models/gemma3n.cpp). Gemma 3n also feeds every layer a
256-wide slice of a per-layer token embedding (``embedding_length_per_layer_input``), whose input stays in
memory for the whole graph.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from g3chat.core.gguf_file import ArrayInfo, GGUFSummary

# llama.cpp's default sliding-window pattern per architecture, when the GGUF carries none.
_SWA_PATTERN = {"gemma3": 6, "gemma3n": 5, "gemma2": 2}
# Architectures whose first N layers alone own KV when the GGUF does not say otherwise.
_KV_FROM_START = {"gemma3n": 20}
# Tensors that llama.cpp keeps in host memory even when every layer is offloaded to a GPU.
HOST_TENSORS = ("token_embd.weight", "per_layer_token_embd.weight")


@dataclass(frozen=True)
class ArchFacts:
    architecture: str
    context_length: int
    n_layer: int
    n_layer_kv: int  # layers that own a KV cache
    swa_layers_kv: int  # of those, the ones with a sliding window
    n_swa: int  # sliding window in tokens (0: none)
    n_head: int
    n_head_kv: int
    head_dim_k: int
    head_dim_v: int
    n_embd: int
    n_ff: int
    n_vocab: int
    n_embd_per_layer: int = 0  # Gemma 3n: the per-layer input each token carries into every layer

    @property
    def kv_bytes_per_cell(self) -> int:
        """f16 K and V bytes one token costs in one KV layer."""
        return self.n_head_kv * (self.head_dim_k + self.head_dim_v) * 2

    @classmethod
    def from_mapping(cls, data: dict[str, Any]) -> ArchFacts:
        head_dim = int(data["head_dim"])
        return cls(
            architecture=str(data["architecture"]),
            context_length=int(data["context_length"]),
            n_layer=int(data["n_layer"]),
            n_layer_kv=int(data.get("n_layer_kv", data["n_layer"])),
            swa_layers_kv=int(data.get("swa_layers_kv", 0)),
            n_swa=int(data.get("n_swa", 0)),
            n_head=int(data["n_head"]),
            n_head_kv=int(data["n_head_kv"]),
            head_dim_k=head_dim,
            head_dim_v=int(data.get("head_dim_v", head_dim)),
            n_embd=int(data["n_embd"]),
            n_ff=int(data["n_ff"]),
            n_vocab=int(data["n_vocab"]),
            n_embd_per_layer=int(data.get("n_embd_per_layer", 0)),
        )

    @classmethod
    def from_gguf(cls, summary: GGUFSummary) -> ArchFacts | None:
        """The facts from a GGUF header; None when it lacks what an estimate needs."""
        arch = summary.architecture
        if not arch:
            return None
        meta = summary.metadata

        def get(key: str, default: Any = None) -> Any:
            return meta.get(f"{arch}.{key}", default)

        n_layer = _scalar(get("block_count"))
        n_embd = _scalar(get("embedding_length"))
        n_head = _scalar(get("attention.head_count"))
        if not (n_layer and n_embd and n_head):
            return None
        n_head_kv = _scalar(get("attention.head_count_kv")) or n_head
        head_k = _scalar(get("attention.key_length")) or n_embd // n_head
        head_v = _scalar(get("attention.value_length")) or head_k
        n_ff = _scalar(get("feed_forward_length")) or 4 * n_embd
        shared = _scalar(get("attention.shared_kv_layers"))
        n_layer_kv = n_layer - shared if shared else min(n_layer, _KV_FROM_START.get(arch, n_layer))
        n_swa = _scalar(get("attention.sliding_window")) or 0
        swa_flags = _swa_flags(arch, n_layer, get("attention.sliding_window_pattern"), n_swa)
        vocab = meta.get("tokenizer.ggml.tokens")
        n_vocab = vocab.length if isinstance(vocab, ArrayInfo) else 0
        for tensor in summary.tensors:
            if tensor.name == "token_embd.weight" and len(tensor.shape) == 2:
                n_vocab = max(n_vocab, tensor.shape[1])
        return cls(
            architecture=arch,
            context_length=summary.context_length or 0,
            n_layer=n_layer,
            n_layer_kv=n_layer_kv,
            swa_layers_kv=sum(swa_flags[:n_layer_kv]),
            n_swa=n_swa,
            n_head=n_head,
            n_head_kv=n_head_kv,
            head_dim_k=head_k,
            head_dim_v=head_v,
            n_embd=n_embd,
            n_ff=n_ff,
            n_vocab=n_vocab,
            n_embd_per_layer=_scalar(get("embedding_length_per_layer_input")) or 0,
        )


def _scalar(value: Any) -> int | None:
    """An int from a scalar, or the largest element of a per-layer array."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, ArrayInfo) and value.values:
        return max(int(v) for v in value.values)
    return None


def _swa_flags(arch: str, n_layer: int, pattern: Any, n_swa: int) -> list[bool]:
    """Which layers use the sliding window (llama_hparams::set_swa_pattern, dense last)."""
    if not n_swa:
        return [False] * n_layer
    if isinstance(pattern, ArrayInfo) and pattern.values and len(pattern.values) >= n_layer:
        return [bool(v) for v in pattern.values[:n_layer]]
    period = pattern if isinstance(pattern, int) and not isinstance(pattern, bool) else None
    period = period or _SWA_PATTERN.get(arch, 0)
    if not period:
        return [False] * n_layer
    return [il % period < period - 1 for il in range(n_layer)]
