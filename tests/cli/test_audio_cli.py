"""Gemma 3n audio from the command line: `ask --audio/--mic` with the tiny Gemma 3n, the missing-weights
line, and `models pull --audio` against the local Hub server (tests/hubserver.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from g3chat.core.audio.install import safetensors_header
from g3chat.core.audio.weights import bf16_to_f32, load_audio_weights
from g3chat.core.engine.llama import LlamaCppEngine
from g3chat.core.media.audio import attach_audio, audio_part, wav_bytes
from g3chat.core.media.store import MediaStore
from g3chat.core.types import user
from tests.conftest import FIXTURES, run_cli
from tests.core.media.test_mic import needs_portaudio, speech_like
from tests.fixtures.audio_synth import SMALL, random_weights, safetensors_bytes, to_bf16_bits
from tests.fixtures.gguf_edit import with_metadata
from tests.fixtures.tiny_gemma3n_chat import tiny_chat_model
from tests.fixtures.tiny_gemma3n_reference import speech_clip
from tests.hubserver import HubFile, HubServer

MMPROJ = FIXTURES / "audio" / "tiny-gemma3n-mmproj.gguf"
REPO = "google/gemma-3n-E2B-it"
PROMPT = "the keeper"


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("audio-cli")
    speech = base / "speech.wav"
    speech.write_bytes(wav_bytes(speech_clip()))
    model = tiny_chat_model(base / "tiny-gemma3n-chat.gguf")
    # the names llama.cpp's converter gives google/gemma-3n-E4B-it (the tiny model has 5 layers, not 35)
    names = {"general.basename": "gemma", "general.finetune": "3n-E4B-it"}
    e4b = with_metadata(model, base / "tiny-e4b.gguf", names)
    return {"model": model, "e4b": e4b, "speech": speech, "base": base}


@pytest.fixture
def env(files: dict[str, Path]) -> dict[str, str]:
    return {
        "G3CHAT_MODEL": str(files["model"]),
        "G3CHAT_ENGINE__THREADS": "2",
        "G3CHAT_ENGINE__N_CTX": "1024",
    }


def ask_json(*args: str, env: dict[str, str]) -> tuple[int, dict, str]:
    proc = run_cli("ask", *args, "--json", "--temperature", "0", "--max-tokens", "2", PROMPT, env=env)
    payload = json.loads(proc.stdout) if proc.stdout.strip() else {}
    return proc.returncode, payload, proc.stderr


def prompt_counts(model: Path, tmp: Path, seconds: float = 1.0) -> tuple[int, int]:
    """What the engine's plan counts for the prompt without and with a clip of ``seconds`` heard (Gemma
    3n's 188 soft tokens per window of 30 s)."""
    engine = LlamaCppEngine(model, n_ctx=1024, n_threads=2, audio_weights=[MMPROJ], state_memory_mb=0)
    engine.load()
    try:
        part = audio_part(MediaStore(tmp / "media"), np.zeros(int(16000 * seconds), np.float32), "c.wav")
        text_only = engine.count_tokens([user(PROMPT)])
        with_clip = engine.count_tokens([user(PROMPT, [part])])
    finally:
        engine.close()
    assert with_clip - text_only >= 189 * (1 + int(seconds > 30))
    return text_only, with_clip


def test_ask_audio_is_heard_by_gemma_3n(files: dict[str, Path], env: dict[str, str], tmp_path: Path) -> None:
    rc, payload, stderr = ask_json("--audio", str(files["speech"]), env={
        **env, "G3CHAT_ENGINE__AUDIO_WEIGHTS": str(MMPROJ)
    })  # fmt: skip
    assert rc == 0, stderr
    assert "not sent" not in stderr and payload["finish_reason"] in ("length", "stop")
    assert payload["usage"]["prompt_tokens"] == prompt_counts(files["model"], tmp_path)[1]
    # read as it was decoded: the answer evaluated only the prompt's last token, for its logits
    assert payload["usage"]["prompt_eval_tokens"] == 1
    [part] = payload["attachments"]
    assert part["type"] == "audio" and part["sample_rate"] == 16000
    assert part["sha256"] == stored_sha256(files["speech"], tmp_path)  # what attaching it stores


def stored_sha256(path: Path, tmp: Path) -> str:
    return attach_audio(MediaStore(tmp / "media"), path).sha256


def test_ask_audio_files_are_read_in_order_as_they_are_decoded(
    files: dict[str, Path], env: dict[str, str], tmp_path: Path
) -> None:
    """Two files, one longer than the tiny model's window (3.872 s), 44.1 kHz stereo: each is read while it
    is decoded, the second after the first; the answer evaluates one token."""
    from tests.fixtures.media_files import wav

    clip = np.resize(speech_clip(), 6 * 16_000)
    long = wav(tmp_path / "long.wav", np.interp(np.arange(6 * 44_100) / 2.75625, np.arange(len(clip)), clip),
               44_100, channels=2)  # fmt: skip
    rc, payload, stderr = ask_json("--audio", str(long), "--audio", str(files["speech"]), env={
        **env, "G3CHAT_ENGINE__AUDIO_WEIGHTS": str(MMPROJ)
    })  # fmt: skip
    assert rc == 0, stderr
    assert "note" not in stderr
    assert [p["name"] for p in payload["attachments"]] == ["long.wav", "speech.wav"]
    assert [p["sha256"] for p in payload["attachments"]] == [
        stored_sha256(long, tmp_path), stored_sha256(files["speech"], tmp_path)
    ]  # fmt: skip
    assert payload["usage"]["prompt_tokens"] > 3 * 25
    assert payload["usage"]["prompt_eval_tokens"] == 1


@pytest.mark.parametrize(
    ("name", "content", "says"),
    [
        ("empty.wav", wav_bytes(np.zeros(0, np.float32)), "empty.wav: contains no audio"),  # after loading
        ("noise.wav", b"RIFF\x00\x00garbage" + bytes(range(256)) * 4, "noise.wav: not an audio file"),
        ("nothing.mp3", b"", "nothing.mp3: not an audio file"),
    ],
)
def test_ask_audio_with_a_file_that_is_no_audio_is_one_line(
    env: dict[str, str], tmp_path: Path, name: str, content: bytes, says: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    rc, _, stderr = ask_json("--audio", str(path), env={**env, "G3CHAT_ENGINE__AUDIO_WEIGHTS": str(MMPROJ)})
    lines = stderr.strip().splitlines()
    assert rc == 2 and len(lines) == 1 and "Traceback" not in stderr, stderr
    assert says in lines[0]


def test_a_clip_longer_than_30_s_is_heard_in_windows_and_says_so(
    files: dict[str, Path], env: dict[str, str], tmp_path: Path
) -> None:
    from tests.fixtures.audio_synth import tone_mix

    wav = tmp_path / "long.wav"
    wav.write_bytes(wav_bytes(tone_mix(31.0, seed=3)))
    rc, payload, stderr = ask_json(
        "--audio", str(wav), env={**env, "G3CHAT_ENGINE__AUDIO_WEIGHTS": str(MMPROJ)}
    )
    assert rc == 0, stderr
    text_only, expected = prompt_counts(files["model"], tmp_path, seconds=31.0)
    assert payload["usage"]["prompt_tokens"] == expected
    cost = expected - text_only
    assert "long.wav: longer than 30 s, heard in windows of 30 s" in stderr and f"{cost:,} prompt" in stderr


def test_missing_audio_weights_is_one_line_naming_the_command(
    files: dict[str, Path], env: dict[str, str]
) -> None:
    rc, payload, stderr = ask_json("--audio", str(files["speech"]), env=env)
    assert rc == 2
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    assert "audio encoder weights are not installed" in lines[0] and "speech.wav" in lines[0]
    assert "g3chat models pull --audio" in lines[0]
    assert "g3chat models pull --audio" in payload["error"]


def test_a_missing_configured_weights_file_is_one_line(files: dict[str, Path], env: dict[str, str]) -> None:
    rc, _, stderr = ask_json("--audio", str(files["speech"]), env={
        **env, "G3CHAT_ENGINE__AUDIO_WEIGHTS": str(files["base"] / "nope.safetensors")
    })  # fmt: skip
    assert (
        rc == 2
        and stderr.strip() == f"g3chat: engine.audio_weights: {files['base']}/nope.safetensors: no such file"
    )


def ask_mic(env: dict[str, str], tmp_path: Path, *, sound_s: float, seconds: int) -> tuple[int, dict, str]:
    """``ask --mic --json`` on the tiny Gemma 3n, the microphone a file-backed capture device playing
    ``sound_s`` of speech-like sound (then silence)."""
    from tests.core.media.test_mic import ASOUNDRC

    home = tmp_path / "home"
    home.mkdir()
    raw = tmp_path / "input16k.raw"
    raw.write_bytes(wav_bytes(speech_like(sound_s))[44:])
    (home / ".asoundrc").write_text(ASOUNDRC.format(infile=raw))
    return ask_json("--mic", "--seconds", str(seconds), env={
        **env, "HOME": str(home), "G3CHAT_ENGINE__AUDIO_WEIGHTS": str(MMPROJ)
    })  # fmt: skip


@needs_portaudio
def test_ask_mic_is_heard_by_gemma_3n(files: dict[str, Path], env: dict[str, str], tmp_path: Path) -> None:
    rc, payload, stderr = ask_mic(env, tmp_path, sound_s=2.0, seconds=3)
    assert rc == 0, stderr
    assert "recorded" in stderr and "not sent" not in stderr
    [part] = payload["attachments"]
    assert part["type"] == "audio" and part["duration_s"] > 1.0
    assert payload["usage"]["prompt_tokens"] == prompt_counts(files["model"], tmp_path)[1]
    # read while it was recorded: the answer evaluated only what follows the clip's 25 positions
    assert payload["usage"]["prompt_eval_tokens"] < 25


@needs_portaudio
def test_ask_mic_ended_by_silence_leaves_one_token_to_the_answer(
    files: dict[str, Path], env: dict[str, str], tmp_path: Path
) -> None:
    rc, payload, stderr = ask_mic(env, tmp_path, sound_s=3.0, seconds=10)
    assert rc == 0, stderr
    assert "(silence)" in stderr
    [part] = payload["attachments"]
    assert part["duration_s"] == pytest.approx(1.55, abs=0.01)  # the speech and 0.3 s of the silence
    # the trimmed clip, its end and the prompt after it were read by the listener: one token was left
    assert payload["usage"]["prompt_eval_tokens"] == 1


# ------------------------------------------------------------------------------------ models pull --audio


def checkpoint(path: Path, *, drop: str | None = None) -> tuple[Path, dict[str, np.ndarray], int]:
    """A single-file checkpoint: text weights around the (small) audio tower, bf16 like the real one.
    Returns the file, the audio tensors and how many bytes they take."""
    rng = np.random.default_rng(1)
    audio = {f"model.{k}": v for k, v in random_weights(SMALL, seed=9).items() if k != drop}
    text = {
        f"model.language_model.layers.{i}.mlp.weight": rng.random((64, 128), np.float32) for i in range(4)
    }
    path.write_bytes(
        safetensors_bytes({**dict(list(text.items())[:2]), **audio, **dict(list(text.items())[2:])})
    )
    return path, audio, sum(v.size * 2 for v in audio.values())


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[tuple[HubServer, dict[str, np.ndarray], int]]:
    path, audio, size = checkpoint(tmp_path / "model.safetensors")
    with HubServer([HubFile(REPO, "model.safetensors", path)]) as server:
        yield server, audio, size


def installed(home: Path) -> Path:
    return home / "data" / "models" / "audio" / "gemma-3n-E2B-it-audio.safetensors"


def test_models_pull_audio_fetches_checks_and_installs(
    hub: tuple[HubServer, dict[str, np.ndarray], int],
    g3chat_home: Path,
    files: dict[str, Path],
    env: dict[str, str],
) -> None:
    server, audio, audio_bytes = hub
    pull_env = {"HF_ENDPOINT": server.endpoint, "HF_TOKEN": "hf_test"}
    proc = run_cli("models", "pull", "--audio", env=pull_env)
    assert proc.returncode == 0, proc.stderr
    dest = installed(g3chat_home)
    assert "installed, checked" in proc.stderr and str(dest) in proc.stderr
    assert sorted(p.name for p in dest.parent.iterdir()) == [dest.name]  # nothing left behind
    loaded = load_audio_weights(dest).tensors
    for name, values in audio.items():
        assert np.array_equal(loaded[name.removeprefix("model.")], bf16_to_f32(to_bf16_bits(values))), name
    [file] = server.state.files
    header = 8 + int.from_bytes(file.path.read_bytes()[:8], "little")
    assert server.sent(file.sha256) == header + audio_bytes  # the header and the audio tensors only
    assert any(path.startswith("/google/") and auth for _, path, _, auth in server.state.requests)
    again = run_cli("models", "pull", "--audio", env=pull_env)
    assert again.returncode == 0 and "already installed" in again.stderr
    # the installed weights fit the tiny model (text width 32): `ask --audio` finds them by itself
    rc, payload, stderr = ask_json("--audio", str(files["speech"]), env=env)
    assert rc == 0, stderr
    usage = payload["usage"]
    assert usage["prompt_tokens"] > 189 and usage["prompt_eval_tokens"] == 1  # heard, read as decoded
    # they record where they came from; an E4B model (the same width as E2B) refuses them
    recorded = safetensors_header(dest)[0]["__metadata__"]
    assert recorded["source"] == f"{REPO}@main" and recorded["model_size"] == "e2b"
    rc, _, stderr = ask_json("--audio", str(files["speech"]), env={**env, "G3CHAT_MODEL": str(files["e4b"])})
    assert rc == 2 and len(stderr.strip().splitlines()) == 1, stderr
    assert "gemma-3n-E2B-it-audio.safetensors (E2B); this model is E4B" in stderr
    assert "(run 'g3chat models pull --audio e4b')" in stderr


def test_models_pull_audio_for_an_e4b_file_asks_for_e4b_weights(
    hub: tuple[HubServer, dict[str, np.ndarray], int], files: dict[str, Path], g3chat_home: Path
) -> None:
    server, _, _ = hub
    proc = run_cli("models", "pull", "--audio", env={
        "HF_ENDPOINT": server.endpoint, "G3CHAT_MODEL": str(files["e4b"])
    })  # fmt: skip
    assert "google/gemma-3n-E4B-it" in proc.stderr and proc.returncode != 0  # the local Hub has only E2B
    assert not any(path.startswith(f"/{REPO}/") for _, path, _, _ in server.state.requests)


def test_models_pull_audio_refuses_an_incomplete_tower(tmp_path: Path, g3chat_home: Path) -> None:
    path, _, _ = checkpoint(tmp_path / "model.safetensors", drop="embed_audio.soft_embedding_norm.weight")
    with HubServer([HubFile(REPO, "model.safetensors", path)]) as server:
        proc = run_cli("models", "pull", "--audio", env={"HF_ENDPOINT": server.endpoint})
    assert proc.returncode == 2
    assert "audio weights incomplete" in proc.stderr and "soft_embedding_norm" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) <= 2 and "Traceback" not in proc.stderr
    folder = installed(g3chat_home).parent
    assert not folder.exists() or not list(folder.iterdir())


def test_models_pull_audio_with_the_hub_down_is_one_line(
    hub: tuple[HubServer, dict[str, np.ndarray], int], g3chat_home: Path
) -> None:
    server, _, _ = hub
    server.state.offline = True
    proc = run_cli("models", "pull", "--audio", env={"HF_ENDPOINT": server.endpoint})
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 2 and "failed" in proc.stderr.splitlines()[-1]
    folder = installed(g3chat_home).parent
    assert not folder.exists() or not list(folder.iterdir())
