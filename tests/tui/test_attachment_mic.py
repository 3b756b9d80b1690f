"""The chat UI's record toggle over a real microphone: PortAudio capturing from an ALSA device backed by a
file (see tests/core/media/test_mic.py), in a subprocess with its own HOME, since ALSA reads
``$HOME/.asoundrc`` when PortAudio starts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from g3chat.core.media.audio import read_wav
from g3chat.core.media.mic import NO_DEVICE
from tests.conftest import REPO
from tests.core.media.test_mic import capture_home, needs_portaudio, speech_like

__all__ = ["capture_home"]  # a fixture, used by name

SCRIPT = """
import asyncio, json, time
from g3chat.core.engine.fake import FakeEngine
from g3chat.runtime import Runtime

async def wait(pilot, predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await pilot.pause(0.05)

async def main():
    runtime = Runtime.from_env()
    store = runtime.open_store()
    app = runtime.chat_app(store, engine_factory=lambda: (FakeEngine(audio=True), None))
    meter = []
    async with app.run_test(size=(100, 30)) as pilot:
        await wait(pilot, lambda: app.model_state == "ready")
        toggle = app.chat_screen.tray.toggle
        shown = toggle._level

        def level(reading):  # what the meter shows after each reading (the file plays faster than life)
            shown(reading)
            meter.append(str(toggle.render()))

        toggle._level = level
        await pilot.press("ctrl+s")  # nobody presses it again: trailing silence ends the recording
        await wait(pilot, lambda: bool(app.chat_screen.tray.attachments))
        app.chat_screen.prompt.focus()
        await pilot.press("enter")
        await wait(pilot, lambda: app.job is None and len(store.list_conversations()) == 1)
        notes = [n.message for n in app._notifications]
    [question, _answer] = store.messages(store.latest_conversation().id)
    print(json.dumps({"parts": [p.to_json() for p in question.parts], "meter": meter, "notes": notes}))
    app.shutdown()
    store.close()

asyncio.run(main())
"""


@needs_portaudio
def test_mic_records_for_real_and_the_clip_is_sent(capture_home: Path) -> None:
    env = {**os.environ, "HOME": str(capture_home), "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=120, cwd=REPO
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    [part] = result["parts"]
    assert part["type"] == "audio" and part["name"].startswith("recording-") and part["sample_rate"] == 16000
    # 1.25 s to the end of the speech, then 2 s of silence: stopped by silence, not the 60 s limit; the
    # clip keeps 0.3 s of the silence.
    assert 1.45 <= part["duration_s"] <= 1.75, part
    assert any(note.startswith("Recorded") and "(silence)" in note for note in result["notes"])
    loud = [frame for frame in result["meter"] if frame.startswith("■ 0:0") and set("▅▆▇█") & set(frame)]
    assert loud and result["meter"][-1].startswith("■ 0:03"), result["meter"]  # the live meter and time
    samples, _ = read_wav(part["path"])
    expected = speech_like()[: len(samples)]
    assert np.corrcoef(samples, expected)[0, 1] > 0.99  # the capture device's own samples


NO_DEVICE_SCRIPT = """
import asyncio, json, time
from g3chat.core.engine.fake import FakeEngine
from g3chat.runtime import Runtime

async def main():
    runtime = Runtime.from_env()
    store = runtime.open_store()
    app = runtime.chat_app(store, engine_factory=lambda: (FakeEngine(audio=True), None))
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("ctrl+s")
        deadline = time.monotonic() + 30
        while not app._notifications and time.monotonic() < deadline:
            await pilot.pause(0.05)
        await pilot.pause(0.2)
        tray = app.chat_screen.tray
        state = {"notes": [n.message for n in app._notifications], "running": app.is_running,
                 "recording": tray.recording, "attachments": len(tray.attachments)}
    print(json.dumps(state))
    app.shutdown()
    store.close()

asyncio.run(main())
"""


@needs_portaudio
def test_no_input_device_is_a_notification_with_the_fix(tmp_path: Path) -> None:
    home = tmp_path / "empty-home"  # no .asoundrc and no sound card: PortAudio finds no capture device
    home.mkdir()
    env = {**os.environ, "HOME": str(home), "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-c", NO_DEVICE_SCRIPT],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    state = json.loads(proc.stdout.strip().splitlines()[-1])
    assert state == {"notes": [NO_DEVICE], "running": True, "recording": False, "attachments": 0}
