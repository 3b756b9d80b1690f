"""Audio encoder speed: g3chat's numpy tower against transformers' on the CPU, in one run.

Both run Gemma 3n E2B's audio tower and embed_audio at the real sizes (680M parameters, seeded random
weights: speed does not depend on the values) on the same clips, float32, with the same number of threads;
runs alternate between the two so that a busy machine slows both alike, and the median is kept. Prints
encoder seconds per second of audio, the ratio numpy/transformers, and the largest output difference.
Needs torch and transformers for the comparison (without them, numpy alone); about 9 GB of memory.

    python bench/audio_encoder.py [--seconds 10 30] [--repeats 3] [--threads N] [--small]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from g3chat.core.audio.config import AudioConfig
from g3chat.core.audio.encoder import AudioEncoder
from g3chat.core.audio.features import extract_features

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the seeded weights live in tests/fixtures


def timed(fn, *args):  # -> (seconds, result)
    start = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - start, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, nargs="+", default=[10.0, 30.0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--small", action="store_true", help="the tests' reduced configuration (a smoke run)")
    args = parser.parse_args()
    from tests.fixtures.audio_synth import SMALL, random_weights, tone_mix

    cfg = SMALL if args.small else AudioConfig()
    took, weights = timed(random_weights, cfg, 7)
    n_params = sum(w.size for w in weights.values()) / 1e6
    print(f"config: {'small' if args.small else 'E2B'} ({n_params:.0f}M parameters, made in {took:.1f} s)")
    try:
        import torch

        from tests.fixtures.make_audio_reference import run_torch, torch_encoder

        torch.set_num_threads(args.threads)
        tower, embed = torch_encoder(cfg, weights)
        print(f"transformers {__import__('transformers').__version__}, torch {torch.__version__}, "
              f"{torch.get_num_threads()} threads")  # fmt: skip
    except ImportError:
        tower = embed = None
        print("torch/transformers not installed: numpy only")
    took, encoder = timed(AudioEncoder, cfg, weights)
    del weights
    print(f"numpy {np.__version__}; weights prepared in {took:.1f} s\n")
    print(f"{'clip':>6} {'tokens':>6} {'features s':>10} {'numpy s':>8} {'s per s':>8} "
          f"{'torch s':>8} {'s per s':>8} {'numpy/torch':>11} {'max diff':>9}")  # fmt: skip
    for seconds in args.seconds:
        clip = tone_mix(seconds, seed=1)
        t_feat, feats = timed(extract_features, clip)
        ours, theirs = [], []
        mine = ref = None
        for _ in range(args.repeats):
            t, out = timed(encoder, feats.mel, feats.valid)
            mine = out[0]
            ours.append(t)
            if tower is not None:
                t, out = timed(run_torch, tower, embed, feats.mel, feats.valid)
                ref = out[1]
                theirs.append(t)
        mid = statistics.median(ours)
        line = f"{seconds:>5.0f}s {mine.shape[0]:>6} {t_feat:>10.3f} {mid:>8.2f} {mid / seconds:>8.3f}"
        if theirs:
            other = statistics.median(theirs)
            diff = float(np.abs(mine - ref).max())
            line += f" {other:>8.2f} {other / seconds:>8.3f} {mid / other:>11.2f} {diff:>9.1e}"
        print(line)


if __name__ == "__main__":
    main()
