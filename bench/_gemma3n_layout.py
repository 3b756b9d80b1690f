"""Gemma 3n's text model as llama.cpp's converter writes it: hyperparameters, metadata, tensor layout.

What ``convert_hf_to_gguf.py`` (class Gemma3NModel, llama-cpp-python 0.3.36's llama.cpp) makes of
google/gemma-3n-E2B-it / E4B-it with ``--outtype f16``, checked against llama.cpp's gemma3n loader
(src/models/gemma3n.cpp) and transformers' Gemma3nTextConfig:

- every 2-D weight in F16, except the AltUp coefficient matrices (``altup_correct_coef``,
  ``altup_predict_coef``), which the converter always keeps in F32, as it does every 1-D tensor and norm;
- no ``output.weight``: the output projection is tied to ``token_embd`` (llama.cpp duplicates it);
- the 262,144-token text vocabulary for ``token_embd`` and ``per_layer_token_embd`` (the files published
  in June 2025; later converters pad both to the 262,400 ids of the multimodal vocabulary);
- AltUp projections stacked into one 3-D tensor each (``altup_proj``, ``altup_unembd_proj``).

llama.cpp hard-codes three sizes rather than reading them (llama-hparams.h): the per-layer input width
(256), the LAuReL rank (64) and the 4 AltUp inputs; and (models/gemma3n.cpp) that the first 20 layers own
a KV cache. A shrunken variant (``Shape.tiny``) keeps those, the layer count and so every tensor name and
type, and shrinks the rest to multiples of 256 so that the quantizer picks the same types.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gguf
import numpy as np

ARCH = "gemma3n"
F16, F32 = gguf.GGMLQuantizationType.F16, gguf.GGMLQuantizationType.F32


@dataclass(frozen=True)
class Shape:
    """A Gemma 3n text model's sizes (transformers' names in the comments)."""

    name: str
    n_layer: int  # num_hidden_layers
    n_ff: int  # intermediate_size
    n_kv_shared: int  # num_kv_shared_layers
    n_embd: int = 2048  # hidden_size
    n_head: int = 8  # num_attention_heads
    n_head_kv: int = 2  # num_key_value_heads
    head_dim: int = 256
    n_vocab: int | None = None  # None: the whole tokenizer (262,144 for Gemma)
    n_embd_altup: int = 256  # hidden_size_per_layer_input (hard-coded in llama.cpp)
    n_altup: int = 4  # altup_num_inputs (hard-coded)
    laurel_rank: int = 64  # (hard-coded)
    n_sparse: int = 10  # layers with activation_sparsity 0.95 (llama.cpp hard-codes 10)
    sliding_window: int = 512
    context_length: int = 32768
    rope_theta: float = 1_000_000.0
    rope_local_theta: float = 10_000.0
    softcap: float = 30.0
    rms_eps: float = 1e-6

    def tiny(self) -> Shape:
        """Same layers and tensor names and types at toy widths: a file of about 30 MB."""
        return dataclasses.replace(
            self, name=f"{self.name}-tiny", n_embd=256, n_ff=512, n_head=2, n_head_kv=1, head_dim=128,
            n_vocab=1024,
        )  # fmt: skip

    def layer_is_swa(self, il: int) -> bool:
        return (il + 1) % 5 != 0  # layer_types: four sliding_attention, then one full_attention


# google/gemma-3n-E2B-it and E4B-it, text_config
E2B = Shape("E2B", n_layer=30, n_ff=8192, n_kv_shared=10)
E4B = Shape("E4B", n_layer=35, n_ff=16384, n_kv_shared=15)
SHAPES = {"E2B": E2B, "E4B": E4B}


@dataclass(frozen=True)
class TensorSpec:
    name: str
    ne: tuple[int, ...]  # ggml order: ne[0] is the row length
    ggml_type: gguf.GGMLQuantizationType
    fill: str  # "weight", "norm" or "coef": what random values stand in for the weights

    @property
    def n_elements(self) -> int:
        return math.prod(self.ne)

    @property
    def nbytes(self) -> int:
        return self.n_elements * (2 if self.ggml_type == F16 else 4)


def tensor_plan(shape: Shape, n_vocab: int) -> list[TensorSpec]:
    """Every tensor of the converter's F16 output, in llama.cpp's names and ggml dimension order."""
    e, ff, alt, n_alt, n_layer = shape.n_embd, shape.n_ff, shape.n_embd_altup, shape.n_altup, shape.n_layer
    q, kv = shape.n_head * shape.head_dim, shape.n_head_kv * shape.head_dim

    def w(name: str, *ne: int) -> TensorSpec:
        return TensorSpec(name, ne, F16, "weight")

    def norm(name: str, n: int) -> TensorSpec:
        return TensorSpec(name, (n,), F32, "norm")

    plan = [
        w("token_embd.weight", e, n_vocab),
        w("per_layer_token_embd.weight", alt * n_layer, n_vocab),
        w("per_layer_model_proj.weight", e, alt * n_layer),
        norm("per_layer_proj_norm.weight", alt),
        w("altup_proj.weight", e, e, n_alt - 1),
        w("altup_unembd_proj.weight", e, e, n_alt - 1),
    ]
    for il in range(n_layer):
        b = f"blk.{il}."
        plan += [
            norm(b + "attn_norm.weight", e),
            w(b + "attn_q.weight", e, q),
            w(b + "attn_k.weight", e, kv),
            w(b + "attn_v.weight", e, kv),
            w(b + "attn_output.weight", q, e),
            norm(b + "attn_q_norm.weight", shape.head_dim),
            norm(b + "attn_k_norm.weight", shape.head_dim),
            norm(b + "post_attention_norm.weight", e),
            norm(b + "ffn_norm.weight", e),
            w(b + "ffn_gate.weight", e, ff),
            w(b + "ffn_up.weight", e, ff),
            w(b + "ffn_down.weight", ff, e),
            norm(b + "post_ffw_norm.weight", e),
            w(b + "inp_gate.weight", e, alt),
            w(b + "proj.weight", alt, e),
            norm(b + "post_norm.weight", e),
            TensorSpec(b + "altup_correct_coef.weight", (n_alt, n_alt), F32, "coef"),
            norm(b + "altup_correct_scale.weight", e),
            TensorSpec(b + "altup_predict_coef.weight", (n_alt, n_alt * n_alt), F32, "coef"),
            w(b + "altup_router.weight", e, n_alt),
            norm(b + "altup_router_norm.weight", e),
            w(b + "laurel_l.weight", e, shape.laurel_rank),
            w(b + "laurel_r.weight", shape.laurel_rank, e),
            norm(b + "laurel_post_norm.weight", e),
        ]
    plan.append(norm("output_norm.weight", e))
    return plan


def keeps_source_type(spec: TensorSpec) -> bool:
    """Tensors llama.cpp's quantizer copies unchanged (llama-quant.cpp, tensor_allows_quantization)."""
    name = spec.name
    return (
        len(spec.ne) < 2
        or name.endswith("_norm.weight")
        or "altup" in name
        or "laurel" in name
        or "per_layer_model_proj" in name
    )


# --- metadata ---------------------------------------------------------------------------------------------

# GGUF value type -> numpy dtype (8 and 9, string and array, are handled apart)
_NUMPY = {
    0: "<u1", 1: "<i1", 2: "<u2", 3: "<i2", 4: "<u4", 5: "<i4", 6: "<f4", 7: "?",
    10: "<u8", 11: "<i8", 12: "<f8",
}  # fmt: skip


def read_tokenizer(path: Path) -> dict[str, tuple[gguf.GGUFValueType, Any, gguf.GGUFValueType | None]]:
    """The ``tokenizer.*`` metadata of a GGUF file as (type, value, array element type), decoded fast
    (gguf's GGUFReader takes about 24 s over a 262,144-entry vocabulary; this about half a second)."""
    with path.open("rb") as fh:
        buf = memoryview(fh.read(64 << 20))  # the header: a Gemma vocabulary is about 6 MB
    (n_kv,) = struct.unpack_from("<Q", buf, 16)
    pos = 24

    def string(at: int) -> tuple[bytes, int]:
        (n,) = struct.unpack_from("<Q", buf, at)
        return bytes(buf[at + 8 : at + 8 + n]), at + 8 + n

    out = {}
    for _ in range(n_kv):
        raw_key, pos = string(pos)
        key = raw_key.decode()
        (vtype,) = struct.unpack_from("<I", buf, pos)
        pos += 4
        sub = None
        if vtype == 8:
            value, pos = string(pos)
        elif vtype == 9:
            sub, count = struct.unpack_from("<IQ", buf, pos)
            pos += 12
            if sub == 8:
                value = []
                for _ in range(count):
                    item, pos = string(pos)
                    value.append(item)
            else:
                arr = np.frombuffer(buf, dtype=_NUMPY[sub], count=count, offset=pos)
                pos += arr.nbytes
                value = arr.tolist()
        else:
            dtype = np.dtype(_NUMPY[vtype])
            value = np.frombuffer(buf, dtype=dtype, count=1, offset=pos)[0].item()
            pos += dtype.itemsize
        if key.startswith("tokenizer."):
            out[key] = (gguf.GGUFValueType(vtype), value, None if sub is None else gguf.GGUFValueType(sub))
    return out


def vocab_size(tokenizer: dict) -> int:
    return len(tokenizer["tokenizer.ggml.tokens"][1])


def add_metadata(writer: gguf.GGUFWriter, shape: Shape, tokenizer: dict, chat_template: str | None) -> int:
    """The converter's keys for Gemma 3n (Gemma3NModel.set_gguf_parameters); returns the vocabulary size."""
    n_vocab = shape.n_vocab or vocab_size(tokenizer)
    writer.add_type(gguf.GGUFType.MODEL)
    writer.add_name(f"Gemma 3n {shape.name} Shaped (random weights)")
    writer.add_basename("gemma-3n")
    writer.add_size_label(shape.name)
    writer.add_block_count(shape.n_layer)
    writer.add_context_length(shape.context_length)
    writer.add_embedding_length(shape.n_embd)
    writer.add_feed_forward_length(shape.n_ff)
    writer.add_head_count(shape.n_head)
    writer.add_head_count_kv(shape.n_head_kv)
    writer.add_rope_freq_base(shape.rope_theta)
    writer.add_rope_freq_base_swa(shape.rope_local_theta)
    writer.add_layer_norm_rms_eps(shape.rms_eps)
    writer.add_key_length(shape.head_dim)
    writer.add_value_length(shape.head_dim)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    writer.add_final_logit_softcapping(shape.softcap)
    writer.add_sliding_window(shape.sliding_window)
    writer.add_altup_active_idx(0)
    writer.add_altup_num_inputs(shape.n_altup)
    writer.add_embedding_length_per_layer_input(shape.n_embd_altup)
    writer.add_shared_kv_layers(shape.n_kv_shared)
    # the converter stores Normal(0, 1).icdf(sparsity) per layer: 1.645 for 0.95, -inf for 0.0 (dense)
    cut = statistics.NormalDist().inv_cdf(0.95)
    sparsity = [cut if il < shape.n_sparse else -math.inf for il in range(shape.n_layer)]
    writer.add_activation_sparsity_scale(sparsity)
    writer.add_sliding_window_pattern([shape.layer_is_swa(il) for il in range(shape.n_layer)])
    for key, (vtype, value, sub) in tokenizer.items():
        if key == "tokenizer.chat_template":
            continue
        if vtype == gguf.GGUFValueType.ARRAY:
            value = value[:n_vocab]
        elif key.endswith("_token_id") and value >= n_vocab:
            continue  # a special id the shrunken vocabulary does not have
        writer.add_key_value(key, value, vtype, sub_type=sub)
    if chat_template:
        writer.add_chat_template(chat_template)
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    return n_vocab


# --- tensor data ------------------------------------------------------------------------------------------


class _Tiled:
    """Stands in for a numpy array in GGUFWriter.write_tensor_data: writes a fixed random block over and
    over, so that a 4 GB tensor never exists in memory (the weights' values change neither speed nor
    memory; only shapes and types do)."""

    def __init__(self, nbytes: int, block: bytes) -> None:
        self.nbytes, self.block = nbytes, block

    def tofile(self, fh: Any) -> None:
        left = self.nbytes
        while left > 0:
            chunk = self.block if left >= len(self.block) else self.block[:left]
            fh.write(chunk)
            left -= len(chunk)


def _blocks(seed: int = 3) -> dict[tuple[str, gguf.GGMLQuantizationType], bytes]:
    rng = np.random.default_rng(seed)
    n = 1 << 20
    return {
        ("weight", F16): (rng.standard_normal(n, dtype=np.float32) * 0.02).astype(np.float16).tobytes(),
        ("norm", F32): (1.0 + 0.1 * rng.standard_normal(n // 4, dtype=np.float32)).tobytes(),
        ("coef", F32): (0.1 * rng.standard_normal(n // 4, dtype=np.float32)).tobytes(),
    }


def tensor_data(plan: list[TensorSpec]) -> Iterator[tuple[TensorSpec, _Tiled]]:
    blocks = _blocks()
    for spec in plan:
        yield spec, _Tiled(spec.nbytes, blocks[spec.fill, spec.ggml_type])


def write_source(path: Path, shape: Shape, tokenizer: dict, chat_template: str | None) -> list[TensorSpec]:
    """Write the F16/F32 GGUF the converter would, streaming the tensor data; returns the plan."""
    writer = gguf.GGUFWriter(path, ARCH)
    n_vocab = add_metadata(writer, shape, tokenizer, chat_template)
    plan = tensor_plan(shape, n_vocab)
    for spec in plan:
        dtype = np.float16 if spec.ggml_type == F16 else np.float32
        writer.add_tensor_info(spec.name, tuple(reversed(spec.ne)), np.dtype(dtype), spec.nbytes)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    for _spec, data in tensor_data(plan):
        writer.write_tensor_data(data)  # type: ignore[arg-type]
    writer.close()
    return plan
