"""Fetching the audio tower from a (local stand-in for the) Hub with HTTP range reads."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from g3chat.core.audio.hub import fetch_audio_weights
from g3chat.core.audio.weights import bf16_to_f32, load_audio_weights
from g3chat.core.errors import G3ChatError, InputError
from tests.fixtures.audio_synth import SMALL, random_weights, safetensors_bytes, to_bf16_bits
from tests.fixtures.range_server import HubState, serve

REPO = "google/gemma-3n-E2B-it"


def _checkpoint() -> tuple[dict[str, bytes], dict[str, np.ndarray]]:
    """Two shards like the real checkpoint's: text weights around the audio tower, bf16."""
    rng = np.random.default_rng(0)
    audio = {f"model.{k}": v for k, v in random_weights(SMALL, seed=3).items()}
    names = sorted(audio)
    half = len(names) // 2
    text = {
        f"model.language_model.layers.{i}.mlp.weight": rng.random((64, 256), np.float32) for i in range(6)
    }
    shard1 = {**dict(list(text.items())[:3]), **{n: audio[n] for n in names[:half]}}
    shard2 = {**{n: audio[n] for n in names[half:]}, **dict(list(text.items())[3:])}
    files = {"model-00001-of-00002.safetensors": safetensors_bytes(shard1),
             "model-00002-of-00002.safetensors": safetensors_bytes(shard2)}  # fmt: skip
    weight_map = {n: f for f, shard in zip(files, (shard1, shard2)) for n in shard}
    files["model.safetensors.index.json"] = json.dumps({"metadata": {}, "weight_map": weight_map}).encode()
    return files, audio


def test_fetches_only_the_audio_tensors_with_range_reads(tmp_path: Path) -> None:
    files, audio = _checkpoint()
    state = HubState(files)
    seen: list[tuple[int, int]] = []
    with serve(state) as url:
        dest = fetch_audio_weights(tmp_path / "audio.safetensors", REPO, endpoint=url, token="hf_test",
                                   progress=lambda done, total: seen.append((done, total)))  # fmt: skip
    weights = load_audio_weights(dest)
    assert weights.config.hidden_size == SMALL.hidden_size and weights.config.num_layers == SMALL.num_layers
    assert set(weights.tensors) == {k.removeprefix("model.") for k in audio}
    for name, values in audio.items():
        expected = bf16_to_f32(to_bf16_bits(values))
        assert np.array_equal(weights.tensors[name.removeprefix("model.")], expected), name
    audio_bytes = sum(v.size * 2 for v in audio.values())
    shards = [v for k, v in files.items() if k.endswith(".safetensors")]
    headers = sum(8 + int.from_bytes(shard[:8], "little") for shard in shards)
    # exactly the index, two shard headers and the audio tensors: none of the text weights
    assert state.sent == len(files["model.safetensors.index.json"]) + headers + audio_bytes
    assert state.sent < sum(map(len, shards))
    assert all(r.get("authorization") == "Bearer hf_test" for r in state.requests)
    assert any("range" in r for r in state.requests)
    assert seen and seen[-1][0] == seen[-1][1] == audio_bytes
    assert list(tmp_path.iterdir()) == [dest]


def test_gated_repository_is_one_line_with_what_to_do(tmp_path: Path) -> None:
    files, _ = _checkpoint()
    with serve(HubState(files, gated=True)) as url, pytest.raises(InputError) as err:
        fetch_audio_weights(tmp_path / "audio.safetensors", REPO, endpoint=url, token=False)
    message = str(err.value)
    assert "gated" in message and "HF_TOKEN" in message and "\n" not in message
    assert not list(tmp_path.iterdir())


def test_a_download_cut_short_leaves_no_file(tmp_path: Path) -> None:
    files, _ = _checkpoint()
    with serve(HubState(files, cut_after=5000)) as url, pytest.raises(G3ChatError):
        fetch_audio_weights(tmp_path / "audio.safetensors", REPO, endpoint=url)
    assert not list(tmp_path.iterdir())


def test_unreachable_hub_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(G3ChatError) as err:
        fetch_audio_weights(tmp_path / "a.safetensors", REPO, endpoint="http://127.0.0.1:9")
    assert "cannot reach" in str(err.value) and "\n" not in str(err.value)


def test_single_file_checkpoint_without_index(tmp_path: Path) -> None:
    audio = {f"model.{k}": v for k, v in random_weights(SMALL, seed=4).items()}
    with serve(HubState({"model.safetensors": safetensors_bytes(audio, bf16=False)})) as url:
        dest = fetch_audio_weights(tmp_path / "audio.safetensors", REPO, endpoint=url)
    loaded = load_audio_weights(dest).tensors
    assert all(np.array_equal(loaded[k.removeprefix("model.")], v) for k, v in audio.items())
