"""The microphone for real: PortAudio records from an ALSA capture device backed by a WAV file.

Each scenario runs in a subprocess with its own HOME (ALSA reads ``$HOME/.asoundrc`` when PortAudio
starts, i.e. when sounddevice is imported): a file-backed capture device, no device at all, and, in a
private mount namespace, a PortAudio library that cannot be loaded.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from g3chat.core.media.audio import read_wav, wav_bytes
from g3chat.core.media.mic import NO_DEVICE, NO_PORTAUDIO
from tests.conftest import REPO, run_cli
from tests.fixtures import media_files as mf

ASOUNDRC = """pcm.!default {{
    type asym
    playback.pcm "null"
    capture.pcm {{
        type file
        slave.pcm "null"
        file "/dev/null"
        infile "{infile}"
        format "raw"
    }}
}}
"""


def _portaudio_present() -> bool:
    from ctypes.util import find_library

    return find_library("portaudio") is not None


needs_portaudio = pytest.mark.skipif(not _portaudio_present(), reason="libportaudio2 is not installed")


def speech_like(seconds_silence_after: float = 4.0) -> np.ndarray:
    """0.25 s of silence, 1 s of a modulated tone (loud, like speech), then silence."""
    burst = mf.tone(1.0, 16000, freq=300, amp=0.5) * (0.6 + 0.4 * np.sin(np.linspace(0, 6 * np.pi, 16000)))
    return np.concatenate([np.zeros(4000), burst, np.zeros(int(16000 * seconds_silence_after))]).astype(
        np.float32
    )


@pytest.fixture
def capture_home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    # Raw 16-bit PCM: the plugin serves the file's bytes as samples (a WAV header would be 22 clicks).
    infile = tmp_path / "input16k.raw"
    infile.write_bytes(wav_bytes(speech_like())[44:])
    (home / ".asoundrc").write_text(ASOUNDRC.format(infile=infile))
    return home


def _run(code: str, home: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HOME": str(home), "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=timeout, cwd=REPO
    )


RECORD = """
import json, sys
from g3chat.core.media.mic import Recorder
from g3chat.core.media.audio import wav_bytes
from g3chat.core.errors import MicrophoneError
levels = []
try:
    rec = Recorder(max_seconds={limit}, silence_s={silence}, on_level=levels.append).record()
except MicrophoneError as exc:
    print(json.dumps({{"error": str(exc)}})); sys.exit(0)
open(sys.argv[0] if False else {out!r}, "wb").write(wav_bytes(rec.samples, rec.rate))
print(json.dumps({{"by": rec.stopped_by, "seconds": rec.duration_s, "levels": [l.level for l in levels],
                  "speech": sum(l.speech for l in levels)}}))
"""


@needs_portaudio
def test_records_real_samples_and_stops_on_trailing_silence(capture_home: Path, tmp_path: Path) -> None:
    out = tmp_path / "rec.wav"
    proc = _run(RECORD.format(limit=10, silence=1.0, out=str(out)), capture_home)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert "error" not in result, result
    assert result["by"] == "silence"
    assert 1.45 <= result["seconds"] <= 1.75  # 1.25 s to the end of the speech, 0.3 s of the silence kept
    assert result["speech"] >= 10 and max(result["levels"]) > 0.7 and result["levels"][0] == 0.0
    samples, rate = read_wav(out)
    expected = speech_like()[: len(samples)]
    assert rate == 16000 and np.corrcoef(samples, expected)[0, 1] > 0.99  # the file's own samples


@needs_portaudio
def test_time_limit(capture_home: Path, tmp_path: Path) -> None:
    proc = _run(RECORD.format(limit=0.5, silence=None, out=str(tmp_path / "r.wav")), capture_home)
    result = json.loads(proc.stdout)
    assert result["by"] == "time" and result["seconds"] == pytest.approx(0.5, abs=0.01)


@needs_portaudio
def test_no_input_device(tmp_path: Path) -> None:
    home = tmp_path / "empty-home"  # no .asoundrc and no sound card: PortAudio finds no device
    home.mkdir()
    proc = _run(RECORD.format(limit=1, silence=None, out=str(tmp_path / "r.wav")), home)
    assert json.loads(proc.stdout) == {"error": NO_DEVICE}


@needs_portaudio
def test_no_portaudio_library(tmp_path: Path) -> None:
    """PortAudio made unloadable for real: an empty file mounted over it in a private mount namespace."""
    unshare = shutil.which("unshare")
    from ctypes.util import find_library

    lib = Path("/usr/lib/x86_64-linux-gnu") / (find_library("portaudio") or "missing")
    if unshare is None or os.geteuid() != 0 or not lib.exists():
        pytest.skip("needs root, unshare and the Debian libportaudio2 layout")
    target = lib.resolve()
    code = RECORD.format(limit=1, silence=None, out=str(tmp_path / "r.wav"))
    script = f'mount --bind /dev/null {target} && exec {sys.executable} -c "$0"'
    proc = subprocess.run(
        [unshare, "-m", "sh", "-c", script, code],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=60,
        cwd=REPO,
    )
    if "mount" in proc.stderr and proc.returncode != 0:
        pytest.skip(f"cannot make a private mount namespace here: {proc.stderr.strip()}")
    assert json.loads(proc.stdout) == {"error": NO_PORTAUDIO}


@needs_portaudio
@pytest.mark.model
def test_ask_mic_records_and_stores_the_wav(capture_home: Path, cli_env: dict[str, str]) -> None:
    """`ask --mic --seconds 3` with the test model: recorded, stored, saved; the model cannot hear it."""
    env = {**cli_env, "HOME": str(capture_home)}
    proc = run_cli("ask", "--mic", "--seconds", "3", "--json", env=env)
    assert proc.returncode == 2, proc.stderr
    assert "recorded" in proc.stderr and "this model has no audio projector" in proc.stderr
    payload = json.loads(proc.stdout)
    [part] = payload["attachments"]
    assert part["type"] == "audio" and part["sample_rate"] == 16000 and 1.5 < part["duration_s"] <= 3.0
    samples, _ = read_wav(part["path"])
    assert np.abs(samples).max() > 0.3
    export = run_cli("chats", "export", str(payload["conversation_id"]), "--format", "json", env=env)
    [message] = json.loads(export.stdout)["messages"]
    assert message["content"][0]["sha256"] == part["sha256"]


@needs_portaudio
def test_ask_mic_without_device_is_one_clear_line(tmp_path: Path) -> None:
    home = tmp_path / "nohome"
    home.mkdir()
    proc = run_cli("ask", "--mic", "--seconds", "1", "hello", env={"HOME": str(home)})
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == f"g3chat: {NO_DEVICE}"


@needs_portaudio
def test_blocks_reach_the_listener_as_recorded(capture_home: Path) -> None:
    """``on_block`` sees every kept sample as it arrives, and none past the time limit."""
    code = """
import json, numpy as np
from g3chat.core.media.mic import Recorder
blocks = []
rec = Recorder(max_seconds=0.52, silence_s=None, on_block=blocks.append).record()
same = bool(np.array_equal(np.concatenate(blocks), rec.samples))
print(json.dumps({"n": len(rec.samples), "blocks": len(blocks), "same": same}))
"""
    result = json.loads(_run(code, capture_home).stdout)
    assert result == {"n": 8320, "blocks": 11, "same": True}  # 10 blocks of 50 ms and 20 ms of the 11th


@needs_portaudio
def test_silence_is_announced_where_the_trimmed_clip_will_end(capture_home: Path) -> None:
    """``on_pause`` hears, when the silence begins, the length a silence stop then keeps."""
    code = """
import json, numpy as np
from g3chat.core.media.mic import Recorder
events, blocks = [], []
rec = Recorder(max_seconds=10, silence_s=1.0, on_block=blocks.append,
               on_pause=lambda end: events.append((end, sum(map(len, blocks))))).record()
print(json.dumps({"n": len(rec.samples), "by": rec.stopped_by, "events": events,
                  "same": bool(np.array_equal(np.concatenate(blocks)[:len(rec.samples)], rec.samples))}))
"""
    result = json.loads(_run(code, capture_home).stdout)
    [(end, fed)] = result["events"]
    assert result["by"] == "silence" and result["n"] == end and result["same"]
    assert end == 20_000 + 4_800  # the speech's last block ends at 1.25 s; 0.3 s kept
    assert fed == 20_800  # announced with the first silent block, before the end's samples arrived
