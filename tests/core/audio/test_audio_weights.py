"""Loading the audio tower: llama.cpp's mmproj naming, other tensor types, safetensors, bad files."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from g3chat.core.audio.config import AudioConfig
from g3chat.core.audio.weights import gguf_has_audio, hf_name_for_gguf, load_audio_weights
from g3chat.core.errors import InputError
from g3chat.core.gguf_file import inspect_gguf
from tests.conftest import FIXTURES as ALL_FIXTURES
from tests.fixtures.audio_synth import SMALL, random_weights, safetensors_bytes

FIXTURES = ALL_FIXTURES / "audio"
MMPROJ = FIXTURES / "tiny-gemma3n-mmproj.gguf"  # written by llama.cpp's convert_hf_to_gguf.py --mmproj
MMPROJ_SEED = 20261  # make_tiny_gemma3n.SEED + 1
F16_IN_CONVERTER = "audio_tower.subsample_conv_projection.input_proj_linear.weight"


def converter_weights() -> dict[str, np.ndarray]:
    weights = random_weights(SMALL, MMPROJ_SEED)
    weights[F16_IN_CONVERTER] = weights[F16_IN_CONVERTER].astype(np.float16).astype(np.float32)
    return weights


def test_converter_mmproj_maps_back_to_transformers_exactly() -> None:
    loaded = load_audio_weights(MMPROJ, AudioConfig(vocab_offset=72, soft_tokens=24))
    expected = converter_weights()
    assert set(loaded.tensors) == set(expected)
    for name, values in expected.items():
        assert np.array_equal(loaded.tensors[name], values), name
    assert loaded.config == replace(SMALL, soft_tokens=24)
    assert gguf_has_audio(MMPROJ)


def test_every_audio_tensor_in_the_mmproj_has_a_mapping() -> None:
    names = [t.name for t in inspect_gguf(MMPROJ).tensors]
    audio = [n for n in names if n.startswith(("a.", "mm.a."))]
    assert audio and all(hf_name_for_gguf(n) for n in audio)
    assert not any(hf_name_for_gguf(n) for n in names if n not in audio)  # vision projector: not ours


def write_gguf(path: Path, weights: dict[str, np.ndarray], qtype_for) -> None:
    """An mmproj-like GGUF in the converter's naming, each tensor stored as qtype_for(name, array) says."""
    import gguf

    to_gguf = {hf_name_for_gguf(t.name): t.name for t in inspect_gguf(MMPROJ).tensors}
    writer = gguf.GGUFWriter(str(path), "clip")
    for name, values in weights.items():
        qtype = qtype_for(name, values)
        if qtype == gguf.GGMLQuantizationType.F32:
            writer.add_tensor(to_gguf[name], values)
        elif qtype == gguf.GGMLQuantizationType.F16:
            writer.add_tensor(to_gguf[name], values.astype(np.float16))
        else:
            data = gguf.quants.quantize(values, qtype)
            writer.add_tensor(to_gguf[name], data, raw_dtype=qtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def test_f16_bf16_and_q8_0_mmproj_tensors(tmp_path: Path) -> None:
    import gguf

    Q = gguf.GGMLQuantizationType
    weights = random_weights(SMALL, seed=5)
    kinds = {}

    def qtype_for(name: str, values: np.ndarray):
        if values.ndim == 2 and values.shape[-1] % 32 == 0 and "ffw_layer_1" in name:
            kinds[name] = Q.Q8_0
        elif values.ndim == 2 and "_proj" in name:
            kinds[name] = Q.BF16
        elif values.ndim == 2:
            kinds[name] = Q.F16
        else:
            kinds[name] = Q.F32
        return kinds[name]

    write_gguf(tmp_path / "mmproj.gguf", weights, qtype_for)
    loaded = load_audio_weights(tmp_path / "mmproj.gguf").tensors
    assert {Q.Q8_0, Q.BF16, Q.F16, Q.F32} <= set(kinds.values())
    for name, values in weights.items():
        got, kind = loaded[name], kinds[name]
        assert got.dtype == np.float32 and got.shape == values.shape
        if kind == Q.F32:
            assert np.array_equal(got, values)
        elif kind == Q.F16:
            assert np.array_equal(got, values.astype(np.float16).astype(np.float32))
        else:  # bf16 (8 bits of mantissa) and q8_0 (8-bit blocks): within their rounding
            assert np.abs(got - values).max() <= 0.01 * np.abs(values).max(), name


def test_safetensors_with_model_prefix(tmp_path: Path) -> None:
    weights = random_weights(SMALL, seed=6)
    extra = {"model.language_model.embed_tokens.weight": np.ones((4, 8), np.float32)}
    path = tmp_path / "audio.safetensors"
    tensors = {**extra, **{f"model.{k}": v for k, v in weights.items()}}
    path.write_bytes(safetensors_bytes(tensors, bf16=False))
    loaded = load_audio_weights(path)
    assert set(loaded.tensors) == set(weights) and loaded.config == replace(SMALL, vocab_offset=262_272)


def test_bad_files_are_one_line_errors(tmp_path: Path, test_model_path: Path) -> None:
    def message(path: Path) -> str:
        with pytest.raises(InputError) as err:
            load_audio_weights(path)
        assert "\n" not in str(err.value)
        return str(err.value)

    assert "no such file" in message(tmp_path / "missing.gguf")
    (tmp_path / "junk.bin").write_bytes(b"not a model at all")
    assert "neither a GGUF nor a safetensors" in message(tmp_path / "junk.bin")
    assert "no audio tower" in message(test_model_path)  # a text model's GGUF
    weights = random_weights(SMALL, seed=7)
    del weights["audio_tower.conformer.1.lconv1d.linear_end.weight"]
    partial = tmp_path / "partial.safetensors"
    partial.write_bytes(safetensors_bytes({f"model.{k}": v for k, v in weights.items()}, bf16=False))
    assert "incomplete (no audio_tower.conformer.1.lconv1d.linear_end.weight)" in message(partial)
    weights = random_weights(SMALL, seed=7)
    weights["audio_tower.conformer.0.attention.post.weight"] = np.zeros((3, 3), np.float32)
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(safetensors_bytes({f"model.{k}": v for k, v in weights.items()}, bf16=False))
    assert "attention.post.weight has shape (3, 3), expected (32, 32)" in message(bad)
