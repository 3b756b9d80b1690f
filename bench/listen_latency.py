"""Spoken question to first answer token: the model reading the recording while it is made, against reading
it after the recording ends (`ask --mic` before), in one run on the same machine.

The utterance is served by a file-backed ALSA capture device through PortAudio and the real ``Recorder``
(shared/audio-capture.md), paced to real time in PortAudio's callback thread (the file device itself
delivers as fast as it is read, and that thread would then spin on a core the model needs). ``--seconds``
of sound, then silence: the recorder stops ``--silence`` seconds after the sound ends (2 s, as `ask --mic`
and the chat UI; the clip keeps 0.3 s of the silence), or with ``--silence 0`` at the time limit of
``--seconds``. For each path, from the moment the recorder returns (the end of the recording) store the
WAV and ask for one answer token; the clock stops at the first token. The paths: ``after`` reads the clip
after the recording (`ask --mic` before listening), ``listening`` reads it while it is recorded, ``ahead``
also reads the clip's end and the question during the silence wait (the recorder's ``on_pause``).
All start from an empty KV cache and load nothing after the recording.

The model is the E2B-shaped GGUF of bench/e2b_model.py (``--model e2b-q4``) and the audio tower Gemma 3n
E2B's at full size with seeded random weights (tests/fixtures/audio_synth.py: speed does not depend on the
values; about 6 GB of memory); the shaped vocabulary has no audio tokens, so two other special tokens
stand in for <start_of_audio> and <end_of_audio>. ``--small`` is a smoke run (test model sizes).

    python bench/listen_latency.py [--model e2b-q4] [--seconds 10] [--silence 2] [--threads 2] [--repeats 1]
                                   [--small]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _models import MODEL_HELP, resolve_model

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests/fixtures: weights, the capture

from g3chat.core.audio.config import AudioConfig
from g3chat.core.audio.encoder import AudioEncoder
from g3chat.core.engine.kv import KVSession
from g3chat.core.engine.listening import Listener, live_part
from g3chat.core.engine.llama import LlamaCppEngine
from g3chat.core.media.audio import audio_part, wav_bytes
from g3chat.core.media.mic import Recorder
from g3chat.core.media.store import MediaStore
from g3chat.core.types import Finished, GenerationParams, TextDelta, Usage, user

QUESTION = "What is said in this recording? Answer in one sentence."
ONE_TOKEN = GenerationParams(temperature=0, max_tokens=1)


def capture_device(tmp: Path, samples: np.ndarray) -> None:
    """HOME with an .asoundrc whose default capture device serves ``samples`` (before PortAudio starts)."""
    from tests.core.media.test_mic import ASOUNDRC

    raw = tmp / "utterance.raw"
    raw.write_bytes(wav_bytes(samples)[44:])
    home = tmp / "home"
    home.mkdir()
    (home / ".asoundrc").write_text(ASOUNDRC.format(infile=raw))
    os.environ["HOME"] = str(home)
    pace_the_device()


def hearing_for(engine: LlamaCppEngine, cfg: AudioConfig, weights_file: Path) -> None:
    """Give the engine the full-size tower with random weights (the shaped model has no audio tokens)."""
    from tests.fixtures.audio_synth import random_weights

    llm = engine.llama
    hearing = engine._hearing
    assert hearing is not None
    [boa] = llm.tokenize(b"<start_of_image>", add_bos=False, special=True)
    [eoa] = llm.tokenize(b"<end_of_image>", add_bos=False, special=True)
    hearing.boa, hearing.eoa, hearing.problem, hearing.path = boa, eoa, None, weights_file
    hearing.between = tuple(llm.tokenize(b"\n\n\n\n", add_bos=False, special=False))
    config = AudioConfig(**{**cfg.__dict__, "vocab_offset": eoa, "text_hidden_size": llm.n_embd()})
    hearing.config = config
    hearing._encoder = AudioEncoder(config, random_weights(config, 7))


def hearing_engine(args: argparse.Namespace, tmp: Path, n_ctx: int) -> tuple[LlamaCppEngine, float]:
    """The loaded engine the audio benches run, and its load time: ``args.model`` (an E2B-shaped GGUF) with
    the full-size tower, or with ``args.small`` the tiny Gemma 3n and its own audio weights (24 soft tokens:
    3.9 s windows; its tiny vocabulary wants questions of its words, e.g. "the keeper")."""
    extra: dict = {}
    if args.small:
        from tests.conftest import FIXTURES
        from tests.fixtures.tiny_gemma3n_chat import tiny_chat_model

        model = tiny_chat_model(tmp / "tiny-gemma3n-chat.gguf")
        extra = {"audio_weights": [FIXTURES / "audio" / "tiny-gemma3n-mmproj.gguf"]}
        extra["audio_config"] = AudioConfig(soft_tokens=24)
    else:
        model = resolve_model(args.model)
    engine = LlamaCppEngine(
        model, n_ctx=n_ctx, n_threads=args.threads, state_memory_mb=0, state_dir=None, **extra
    )
    started = time.perf_counter()
    engine.load()
    if engine._hearing is None:
        raise SystemExit(f"{model.name} is not a Gemma 3n model: it cannot hear")
    if not args.small:
        weights_file = tmp / "stand-in-weights"
        weights_file.write_bytes(b"random")
        hearing_for(engine, AudioConfig(), weights_file)
    return engine, time.perf_counter() - started


def empty_cache(engine: LlamaCppEngine) -> None:
    """Before each path: nothing of an earlier one in the KV cache or the hearing's rows."""
    KVSession(engine.llama).truncate(0)
    engine._hearing._rows.clear()  # type: ignore[union-attr]


def medians(title: str, runs: dict[str, list[float]]) -> str:
    """``title``: each path's median, and how many times faster than the first path's."""
    base = statistics.median(next(iter(runs.values())))
    return f"{title} (median): " + ", ".join(
        f"{name} {statistics.median(times):.2f} s ({base / statistics.median(times):.2f}x)"
        for name, times in runs.items()
    )


SILENCE_S = 2.0


def pace_the_device() -> None:
    """Deliver the file device's blocks at the rate a microphone does: ALSA's file plugin over a null
    slave hands them out as fast as PortAudio asks, and its callback thread then spins on a core that the
    model needs (a whole core here). The recorder's own callback runs unchanged, each block in real time."""
    import g3chat.core.media.mic as mic

    load = mic.load_sounddevice

    class Paced:
        def __init__(self, sd):
            self._sd = sd

        def __getattr__(self, name):
            return getattr(self._sd, name)

        def InputStream(self, *, callback, samplerate, **kwargs):  # sounddevice's name
            started, fed = time.perf_counter(), 0

            def paced(indata, frames, when, status):
                nonlocal fed
                fed += frames
                time.sleep(max(0.0, started + fed / samplerate - time.perf_counter()))
                callback(indata, frames, when, status)

            return self._sd.InputStream(callback=paced, samplerate=samplerate, **kwargs)

    mic.load_sounddevice = lambda: Paced(load())  # type: ignore[assignment]


def record(seconds: float, on_block=None, on_pause=None) -> np.ndarray:  # -> int16 samples
    """The real recorder on the file device (paced to real time by :func:`pace_the_device`); returns at the
    end of the recording."""
    pauses.clear()

    def pause(end: int | None) -> None:
        pauses.append(time.perf_counter())
        if on_pause is not None:
            on_pause(end)

    limit = seconds + SILENCE_S + 1.0 if SILENCE_S else seconds
    recording = Recorder(
        max_seconds=limit, silence_s=SILENCE_S or None, on_block=on_block, on_pause=pause
    ).record()
    assert recording.stopped_by == ("silence" if SILENCE_S else "time"), recording.stopped_by
    if pauses:
        pauses.append(time.perf_counter())
    return recording.samples


pauses: list[float] = []  # when the recorder heard silence begin, and (last) when it stopped


def first_token(engine: LlamaCppEngine, messages: list, started: float) -> tuple[float, int]:
    """Seconds from ``started`` to the first answer token, and the prompt positions evaluated after it."""
    took, evaluated = None, 0
    for event in engine.stream_chat(messages, ONE_TOKEN):
        if isinstance(event, (TextDelta, Usage)) and took is None:
            took = time.perf_counter() - started
        if isinstance(event, Usage):
            evaluated = event.prompt_eval_tokens
        if isinstance(event, Finished) and event.error:
            raise SystemExit(event.error)
    assert took is not None
    return took, evaluated


def at_once(engine: LlamaCppEngine, store: MediaStore, seconds: float) -> tuple[float, int]:
    samples = record(seconds)
    started = time.perf_counter()
    part = audio_part(store, samples, "recording.wav")
    return first_token(engine, [user(QUESTION, [part])], started)


def listening(engine: LlamaCppEngine, store: MediaStore, seconds: float, ahead: bool) -> tuple[float, int]:
    live = live_part()
    listener = Listener(engine, [user(QUESTION, [live])], live, read_ahead=ahead)
    samples = record(seconds, listener.feed, listener.expect_end)  # the trimmed clip's end, at least
    started = time.perf_counter()
    read, queued, done = listener.rows_read, listener._queue.qsize(), listener.ahead_done.is_set()
    ahead_read = listener.read_ahead
    part = audio_part(store, samples, "recording.wav")
    listener.finish(part)
    finished = time.perf_counter() - started
    took, evaluated = first_token(engine, [user(QUESTION, [part])], started)
    all_ahead = ", all" if done else ""
    print(f"  {'':>9}  at the end: {read} rows read ({ahead_read} positions ahead{all_ahead}), {queued} "
          f"blocks queued; {listener.rows_read - read} rows read after it in {finished:.2f} s")  # fmt: skip
    return took, evaluated


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="e2b-q4", help=MODEL_HELP)
    parser.add_argument("--seconds", type=float, default=10.0, help="the utterance's sound")
    parser.add_argument("--silence", type=float, default=2.0, help="stop after this silence (0: time)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--small", action="store_true", help="the tests' tower and model (a smoke run)")
    args = parser.parse_args()
    global SILENCE_S
    SILENCE_S = args.silence
    from tests.fixtures.audio_synth import tone_mix

    tmp = Path(tempfile.mkdtemp(prefix="g3chat-listen-"))
    if args.small:
        global QUESTION
        QUESTION = "the keeper"  # words of the tiny model's vocabulary
    engine, took = hearing_engine(args, tmp, n_ctx=2048)
    sound = tone_mix(args.seconds, seed=1)
    capture_device(tmp, np.concatenate([sound, np.zeros(int(16_000 * (args.silence + 2.0)), np.float32)]))
    print(f"model {Path(engine.model_path).name}, {args.threads} threads; loaded with the audio tower in "
          f"{took:.1f} s; utterance {args.seconds:.0f} s")  # fmt: skip
    store = MediaStore(tmp / "media")
    warm = audio_part(store, tone_mix(1.0, seed=2), "warm.wav")
    first_token(engine, [user(QUESTION, [warm])], time.perf_counter())  # graphs built, pages touched
    paths = {
        "after": at_once,
        "listening": lambda e, st, sec: listening(e, st, sec, ahead=False),
        "ahead": lambda e, st, sec: listening(e, st, sec, ahead=True),
    }
    if not args.silence:
        del paths["ahead"]  # no silence, no pause: the same as listening
    runs: dict[str, list[float]] = {name: [] for name in paths}
    for _ in range(args.repeats):
        for name, path in paths.items():
            empty_cache(engine)
            took, evaluated = path(engine, store, args.seconds)
            runs[name].append(took)
            wait = f"; {pauses[-1] - pauses[-2]:.2f} s of silence waited" if pauses else ""
            print(f"  {name:>9}: first token {took:5.2f} s after the recording ended "
                  f"({evaluated} prompt positions evaluated after it{wait})")  # fmt: skip
    print(medians("end of recording -> first token", runs))
    engine.close()


if __name__ == "__main__":
    main()
