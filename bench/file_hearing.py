"""An audio file heard by Gemma 3n: read into the KV cache while it is decoded (`ask --audio` now), against
decoding it whole and then reading it with the prompt (`ask --audio` before), in one run on the same machine.

The model is the E2B-shaped GGUF of bench/e2b_model.py (``--model e2b-q4``) with Gemma 3n E2B's audio
tower at full size and seeded random weights, as in bench/listen_latency.py (speed does not depend on the
values). The file is ``--seconds`` of tones as a 44.1 kHz MP3 (FFmpeg's libmp3lame through PyAV).
Each path starts from an empty KV cache with the model and the tower loaded and ends at the first answer
token; the paths alternate over ``--repeats``, each going first in every other repeat. For the file read as
it is decoded, it also prints when the decoder gave its last block and how many positions the cache held
then (the first window is ~190).
``--small``: the tiny Gemma 3n and its tower (3.9 s windows), a smoke run.

    python bench/file_hearing.py [--model e2b-q4] [--seconds 95] [--threads 2] [--repeats 1] [--small]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from _models import MODEL_HELP
from listen_latency import empty_cache, first_token, hearing_engine, medians

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests/fixtures: weights, the file

from g3chat.core.engine.listen_along import hear_file
from g3chat.core.media.audio import attach_audio, audio_blocks
from g3chat.core.media.store import MediaStore
from g3chat.core.types import user

QUESTION = "Summarize this recording in one sentence."


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="e2b-q4", help=MODEL_HELP)
    parser.add_argument("--seconds", type=float, default=95.0, help="the file's length")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--small", action="store_true", help="the tests' tower and model (a smoke run)")
    args = parser.parse_args()
    from tests.fixtures.audio_synth import tone_mix
    from tests.fixtures.media_files import encoded_audio

    tmp = Path(tempfile.mkdtemp(prefix="g3chat-file-hearing-"))
    question = "the keeper" if args.small else QUESTION  # the tiny model's words
    mp3 = encoded_audio(tmp / "memo.mp3", "libmp3lame", tone_mix(args.seconds, 1, 44_100), 44_100)
    engine, took = hearing_engine(args, tmp, n_ctx=4096)
    print(f"model {Path(engine.model_path).name}, {args.threads} threads; loaded with the audio tower in "
          f"{took:.1f} s; {mp3.name}: {args.seconds:.0f} s, {mp3.stat().st_size / 1e6:.1f} MB")  # fmt: skip
    store = MediaStore(tmp / "media")
    first_token(engine, [user(question, [attach_audio(store, mp3)])], time.perf_counter())  # warm

    def after(start: float) -> tuple[float, int]:
        part = attach_audio(store, mp3)  # decoded whole, then read with the prompt
        return first_token(engine, [user(question, [part])], start)

    def as_decoded(start: float) -> tuple[float, int]:
        last: list[tuple[float, int]] = []

        def blocks(path: Path) -> Iterator[np.ndarray]:
            for block in audio_blocks(path):
                last[:] = [(time.perf_counter() - start, engine.llama.n_tokens)]
                yield block

        part = hear_file(engine, store, mp3, lambda live: [user(question, [live])], note=print, blocks=blocks)
        took, evaluated = first_token(engine, [user(question, [part])], start)
        print(f"  {'':>10}  the decoder's last block at {last[0][0]:.2f} s, with {last[0][1]} positions "
              f"in the cache")  # fmt: skip
        return took, evaluated

    paths = {"after": after, "as decoded": as_decoded}
    runs: dict[str, list[float]] = {name: [] for name in paths}
    for repeat in range(args.repeats):
        order = list(paths.items())
        for name, path in order if repeat % 2 == 0 else order[::-1]:  # ABBA: neither always goes first
            empty_cache(engine)
            took, evaluated = path(time.perf_counter())
            runs[name].append(took)
            print(f"  {name:>10}: first token {took:6.2f} s ({evaluated} prompt positions evaluated "
                  f"by the answer)")  # fmt: skip
    print(medians("file to first token", runs))
    engine.close()


if __name__ == "__main__":
    main()
