"""Telling Gemma 3n E2B from E4B: the text GGUF's header, and what audio weights record about their source.

Both sizes have a text width of 2048, so width alone would hand an E4B model E2B's audio tower."""

from __future__ import annotations

from pathlib import Path

import pytest

from g3chat.core.audio.provenance import model_size, size_in, weights_size
from g3chat.core.gguf_file import inspect_gguf
from tests.conftest import FIXTURES as ALL_FIXTURES
from tests.fixtures.audio_synth import SMALL, random_weights, safetensors_bytes
from tests.fixtures.gguf_edit import with_metadata

FIXTURES = ALL_FIXTURES / "audio"
TINY = FIXTURES / "tiny-gemma3n.gguf"
MMPROJ = FIXTURES / "tiny-gemma3n-mmproj.gguf"
# what llama.cpp's converter writes for google/gemma-3n-E4B-it (gguf-py's metadata heuristics)
E4B_NAMES = {"general.name": "Gemma 3n E4B It", "general.basename": "gemma", "general.finetune": "3n-E4B-it"}


def header(tmp_path: Path, values: dict[str, str | int], src: Path = TINY) -> dict:
    return dict(inspect_gguf(with_metadata(src, tmp_path / "edited.gguf", values)).metadata)


@pytest.mark.parametrize(
    ("values", "size"),
    [
        ({"gemma3n.block_count": 35}, "e4b"),  # E4B's layer count, names saying nothing
        ({"gemma3n.block_count": 30}, "e2b"),
        ({**E4B_NAMES, "general.size_label": "6.9B"}, "e4b"),  # the tiny model's 5 layers: the names
        ({"general.basename": "Gemma-3N-E2B-It", "general.size_label": "4.5B"}, "e2b"),
        ({"general.size_label": "E4B"}, "e4b"),
        ({**E4B_NAMES, "gemma3n.block_count": 30}, "e2b"),  # the layers are what the model is
        ({"general.name": "E2B or E4B"}, None),
        ({}, None),  # the tiny model says nothing
    ],
)
def test_the_model_size_of_a_gemma3n_header(tmp_path: Path, values: dict, size: str | None) -> None:
    assert model_size(header(tmp_path, values)) == size


def test_llama_cpp_metadata_strings_are_read_too() -> None:
    assert model_size({"gemma3n.block_count": "35", "general.name": "x"}) == "e4b"
    assert model_size({"gemma3n.block_count": "5", "general.finetune": "3n-E2B-it"}) == "e2b"
    assert size_in("google/gemma-3n-E4B-it@main") == "e4b" and size_in("gemma3n-e2b-it") == "e2b"
    assert size_in("be4bop") is None


def test_what_audio_weights_say_they_were_made_for(tmp_path: Path) -> None:
    tensors = {f"model.{k}": v for k, v in random_weights(SMALL, 3).items()}
    recorded = tmp_path / "audio.safetensors"
    recorded.write_bytes(safetensors_bytes(tensors, metadata={"source": "google/gemma-3n-E4B-it@main"}))
    assert weights_size(recorded) == "e4b"
    sized = tmp_path / "gemma-3n-E2B-it-audio.safetensors"  # the header wins over the name
    sized.write_bytes(safetensors_bytes(tensors, metadata={"model_size": "e4b"}))
    assert weights_size(sized) == "e4b"
    legacy = tmp_path / "gemma-3n-E2B-it-audio.safetensors"  # installed before provenance was recorded
    legacy.write_bytes(safetensors_bytes(tensors))
    assert weights_size(legacy) == "e2b"
    anonymous = tmp_path / "mine.safetensors"
    anonymous.write_bytes(safetensors_bytes(tensors))
    assert weights_size(anonymous) is None
    assert weights_size(MMPROJ) is None  # named "tiny-gemma3n"
    named = with_metadata(MMPROJ, tmp_path / "mmproj-e4b.gguf", E4B_NAMES)
    assert weights_size(named) == "e4b"
    assert weights_size(tmp_path / "missing.safetensors") is None
