"""Spoken question to first answer token: the model reading the recording while it is made, against reading
it after the recording ends (`ask --mic` before), in one run on the same machine.

The utterance is served by a file-backed ALSA capture device through PortAudio and the real ``Recorder``
(shared/audio-capture.md), paced to real time in the block callback (the file device itself delivers as
fast as it is read). For each path: record ``--seconds`` of audio, then from the moment the recorder
returns (the end of the recording) store the WAV and ask for one answer token; the clock stops at the
first token. Both paths start from an empty KV cache and load nothing after the recording.

The model is the E2B-shaped GGUF of bench/e2b_model.py (``--model e2b-q4``) and the audio tower Gemma 3n
E2B's at full size with seeded random weights (tests/fixtures/audio_synth.py: speed does not depend on the
values; about 6 GB of memory); the shaped vocabulary has no audio tokens, so two other special tokens
stand in for <start_of_audio> and <end_of_audio>. ``--small`` is a smoke run (test model sizes).

    python bench/listen_latency.py [--model e2b-q4] [--seconds 10] [--threads 2] [--repeats 1] [--small]
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


def record(seconds: float, on_block=None) -> np.ndarray:  # -> int16 samples
    """The real recorder on the file device, paced to real time; returns at the end of the recording."""
    started = time.perf_counter()
    fed = 0

    def paced(block: np.ndarray) -> None:
        nonlocal fed
        fed += len(block)
        time.sleep(max(0.0, started + fed / 16_000 - time.perf_counter()))
        if on_block is not None:
            on_block(block)

    return Recorder(max_seconds=seconds, silence_s=None, on_block=paced).record().samples


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


def listening(engine: LlamaCppEngine, store: MediaStore, seconds: float) -> tuple[float, int]:
    live = live_part()
    listener = Listener(engine, [user(QUESTION, [live])], live)
    samples = record(seconds, listener.feed)
    started = time.perf_counter()
    read, queued = listener.rows_read, listener._queue.qsize()
    part = audio_part(store, samples, "recording.wav")
    listener.finish(part)
    finished = time.perf_counter() - started
    took, evaluated = first_token(engine, [user(QUESTION, [part])], started)
    print(f"  {'':>9}  at the end: {read} rows read, {queued} blocks queued; {listener.rows_read - read} "
          f"rows read after it in {finished:.2f} s")  # fmt: skip
    return took, evaluated


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="e2b-q4", help=MODEL_HELP)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--small", action="store_true", help="the tests' tower and model (a smoke run)")
    args = parser.parse_args()
    from tests.fixtures.audio_synth import tone_mix

    tmp = Path(tempfile.mkdtemp(prefix="g3chat-listen-"))
    extra: dict = {}
    if args.small:  # the tiny Gemma 3n and its own audio weights (24 soft tokens: 3.9 s windows)
        from tests.conftest import FIXTURES
        from tests.fixtures.tiny_gemma3n_chat import tiny_chat_model

        model = tiny_chat_model(tmp / "tiny-gemma3n-chat.gguf")
        extra = {"audio_weights": [FIXTURES / "audio" / "tiny-gemma3n-mmproj.gguf"]}
        extra["audio_config"] = AudioConfig(soft_tokens=24)
        global QUESTION
        QUESTION = "the keeper"  # words of its tiny vocabulary
    else:
        model = resolve_model(args.model)
    capture_device(tmp, tone_mix(args.seconds + 1.0, seed=1))
    engine = LlamaCppEngine(
        model, n_ctx=2048, n_threads=args.threads, state_memory_mb=0, state_dir=None, **extra
    )
    started = time.perf_counter()
    engine.load()
    if engine._hearing is None:
        raise SystemExit(f"{model.name} is not a Gemma 3n model: it cannot hear")
    if not args.small:
        weights_file = tmp / "stand-in-weights"
        weights_file.write_bytes(b"random")
        hearing_for(engine, AudioConfig(), weights_file)
    print(f"model {model.name}, {args.threads} threads; loaded with the audio tower in "
          f"{time.perf_counter() - started:.1f} s; utterance {args.seconds:.0f} s")  # fmt: skip
    store = MediaStore(tmp / "media")
    warm = audio_part(store, tone_mix(1.0, seed=2), "warm.wav")
    first_token(engine, [user(QUESTION, [warm])], time.perf_counter())  # graphs built, pages touched
    runs: dict[str, list[float]] = {"after": [], "listening": []}
    for _ in range(args.repeats):
        for name, path in (("after", at_once), ("listening", listening)):
            KVSession(engine.llama).truncate(0)
            engine._hearing._rows.clear()  # type: ignore[union-attr]
            took, evaluated = path(engine, store, args.seconds)
            runs[name].append(took)
            print(f"  {name:>9}: first token {took:5.2f} s after the recording ended "
                  f"({evaluated} prompt positions evaluated after it)")  # fmt: skip
    before, now = statistics.median(runs["after"]), statistics.median(runs["listening"])
    print(f"end of recording -> first token: read after {before:.2f} s, read while recorded {now:.2f} s "
          f"({before / now:.1f}x sooner)")  # fmt: skip
    engine.close()


if __name__ == "__main__":
    main()
