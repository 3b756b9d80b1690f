"""The audio tower's weights: from a Gemma 3n mmproj GGUF or from (a local copy of) the safetensors.

Either way the result is an :class:`AudioWeights`: float32 arrays keyed by transformers' parameter names
without the ``model.`` prefix, in transformers' shapes, checked against the configuration they imply.

**mmproj GGUF.** llama.cpp's converter (``convert_hf_to_gguf.py --mmproj``) writes Gemma 3n's audio tower
next to the vision tower as ``a.*`` tensors and the audio embedder as ``mm.a.*`` (mtmd then skips them).
Tensors keep transformers' shapes (a GGUF lists dimensions innermost first, numpy outermost first); the
mapping below is the converter's, checked in the tests against a file the converter wrote. F32, F16 and
BF16 are read directly; quantized types are dequantized with the ``gguf`` package.

**safetensors.** The original checkpoint's ``model.audio_tower.*`` and ``model.embed_audio.*`` tensors,
as :mod:`g3chat.core.audio.hub` caches them in one local file (or a full checkpoint shard).
"""

from __future__ import annotations

import json
import re
import struct
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from g3chat.core.audio.config import AudioConfig
from g3chat.core.audio.shapes import config_from_shapes, expected_shapes
from g3chat.core.errors import InputError

_TOWER_BLOCK = {
    "ffn_norm": "ffw_layer_start.pre_layer_norm", "ffn_up": "ffw_layer_start.ffw_layer_1",
    "ffn_down": "ffw_layer_start.ffw_layer_2", "ffn_post_norm": "ffw_layer_start.post_layer_norm",
    "ffn_norm_1": "ffw_layer_end.pre_layer_norm", "ffn_up_1": "ffw_layer_end.ffw_layer_1",
    "ffn_down_1": "ffw_layer_end.ffw_layer_2", "ffn_post_norm_1": "ffw_layer_end.post_layer_norm",
    "ln1": "attention.pre_attn_norm", "attn_q": "attention.attn.q_proj", "attn_k": "attention.attn.k_proj",
    "attn_v": "attention.attn.v_proj", "per_dim_scale": "attention.attn.per_dim_scale",
    "linear_pos": "attention.attn.relative_position_embedding.pos_proj", "attn_out": "attention.post",
    "ln2": "attention.post_norm", "conv_norm": "lconv1d.pre_layer_norm", "conv_pw1": "lconv1d.linear_start",
    "conv_dw": "lconv1d.depthwise_conv1d", "norm_conv": "lconv1d.conv_norm", "conv_pw2": "lconv1d.linear_end",
    "layer_pre_norm": "norm",
}  # fmt: skip
_TOP = {
    "a.conv1d.0.weight": "audio_tower.subsample_conv_projection.conv_0.conv.weight",
    "a.conv1d.0.norm.weight": "audio_tower.subsample_conv_projection.conv_0.norm.weight",
    "a.conv1d.1.weight": "audio_tower.subsample_conv_projection.conv_1.conv.weight",
    "a.conv1d.1.norm.weight": "audio_tower.subsample_conv_projection.conv_1.norm.weight",
    "a.pre_encode.out.weight": "audio_tower.subsample_conv_projection.input_proj_linear.weight",
    "mm.a.embedding.weight": "embed_audio.embedding.weight",
    "mm.a.hard_emb_norm.weight": "embed_audio.hard_embedding_norm.weight",
    "mm.a.soft_emb_norm.weight": "embed_audio.soft_embedding_norm.weight",
    "mm.a.input_projection.weight": "embed_audio.embedding_projection.weight",
}
_BLOCK = re.compile(r"^a\.blk\.(\d+)\.(\w+?)(?:\.weight)?$")

_F32, _F16, _BF16 = 0, 1, 30
SAFETENSORS_DTYPES = {"F32": np.float32, "F16": np.float16, "BF16": np.uint16}


@dataclass
class AudioWeights:
    config: AudioConfig
    tensors: dict[str, np.ndarray]
    source: str


def hf_name_for_gguf(name: str) -> str | None:
    """transformers' name (without ``model.``) for an mmproj tensor name; None if not an audio tensor."""
    if name in _TOP:
        return _TOP[name]
    match = _BLOCK.match(name)
    if match and match.group(2) in _TOWER_BLOCK:
        suffix = "" if match.group(2) == "per_dim_scale" else ".weight"
        return f"audio_tower.conformer.{match.group(1)}.{_TOWER_BLOCK[match.group(2)]}{suffix}"
    return None


def gguf_has_audio(path: Path | str) -> bool:
    from g3chat.core.gguf_file import inspect_gguf

    return any(t.name == "a.conv1d.0.weight" for t in inspect_gguf(path).tensors)


def _gguf_tensors(path: Path) -> Iterator[tuple[str, np.ndarray]]:
    from g3chat.core.gguf_file import inspect_gguf

    summary = inspect_gguf(path)
    data = np.memmap(path, dtype=np.uint8, mode="r")
    for info in summary.tensors:
        name = hf_name_for_gguf(info.name)
        if name is None:
            continue
        shape = tuple(reversed(info.shape))
        start = summary.data_offset + info.offset
        raw = data[start : start + (info.nbytes or 0)]
        if info.ggml_type == _F32:
            array = raw.view(np.float32).reshape(shape)
        elif info.ggml_type == _F16:
            array = raw.view(np.float16).reshape(shape).astype(np.float32)
        elif info.ggml_type == _BF16:
            array = bf16_to_f32(raw.view(np.uint16)).reshape(shape)
        else:
            from gguf.constants import GGMLQuantizationType
            from gguf.quants import dequantize

            array = dequantize(np.asarray(raw), GGMLQuantizationType(info.ggml_type)).reshape(shape)
        yield name, np.array(array, dtype=np.float32)


def bf16_to_f32(bits: np.ndarray) -> np.ndarray:
    return (bits.astype(np.uint32) << 16).view(np.float32)


def read_safetensors(path: Path, wanted: str = "") -> Iterator[tuple[str, np.ndarray]]:
    """(name, float32 array) for every tensor of a safetensors file whose name starts with ``wanted``."""
    with path.open("rb") as fh:
        (length,) = struct.unpack("<Q", fh.read(8))
        if length > min(path.stat().st_size - 8, 100 << 20):
            raise ValueError("not a safetensors header")
        header = json.loads(fh.read(length))
    data = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + length)
    for name, entry in header.items():
        if name == "__metadata__" or not name.startswith(wanted):
            continue
        dtype = SAFETENSORS_DTYPES.get(entry["dtype"])
        if dtype is None:
            raise InputError(f"{path}: tensor {name} has unsupported dtype {entry['dtype']}")
        begin, end = entry["data_offsets"]
        array = data[begin:end].view(dtype).reshape(entry["shape"])
        yield name, (bf16_to_f32(array) if entry["dtype"] == "BF16" else np.array(array, dtype=np.float32))


def load_audio_weights(path: Path | str, base: AudioConfig | None = None) -> AudioWeights:
    """The audio tower and embedder from an mmproj GGUF or a safetensors file; one-line errors."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    with path.open("rb") as fh:
        magic = fh.read(4)
    if magic == b"GGUF":
        tensors = dict(_gguf_tensors(path))
        if not tensors:
            raise InputError(f"{path}: this mmproj file has no audio tower (a.* tensors)")
    else:
        try:
            tensors = {
                name.removeprefix("model."): array
                for name, array in read_safetensors(path)
                if name.removeprefix("model.").startswith(("audio_tower.", "embed_audio."))
            }
        except (ValueError, UnicodeDecodeError, struct.error):
            raise InputError(f"{path}: neither a GGUF nor a safetensors file") from None
        if not tensors:
            raise InputError(f"{path}: no audio tower tensors in this file")
    return AudioWeights(check_weights(tensors, base, str(path)), tensors, str(path))


def check_weights(tensors: Mapping[str, np.ndarray], base: AudioConfig | None, source: str) -> AudioConfig:
    """The configuration the tensors imply; InputError naming what is missing or mis-shaped."""
    return check_shapes({k: tuple(v.shape) for k, v in tensors.items()}, base, source)


def check_shapes(shapes: Mapping[str, tuple[int, ...]], base: AudioConfig | None, source: str) -> AudioConfig:
    """:func:`check_weights` on the tensors' shapes alone (a file's header is enough)."""
    try:
        config = config_from_shapes(shapes, base)
    except KeyError as exc:
        raise InputError(f"{source}: audio weights incomplete (no {exc.args[0]})") from None
    expected = expected_shapes(config)
    missing = sorted(set(expected) - set(shapes))
    if missing:
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        raise InputError(f"{source}: audio weights incomplete (no {missing[0]}{more})")
    for name, shape in expected.items():
        if tuple(shapes[name]) != shape:
            raise InputError(f"{source}: {name} has shape {tuple(shapes[name])}, expected {shape}")
    return config
