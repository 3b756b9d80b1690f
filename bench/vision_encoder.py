"""Gemma 3n's image encoder on the CPU: what a user waits for before the answer to a picture starts.

Builds (once) a vision projector with the layout llama.cpp's converter gives google/gemma-3n-E2B-it's
MobileNetV5 tower (about 300M parameters, F16 as the published mmproj, seeded random weights: speed does not
depend on the values; ``tests/fixtures/gemma3n_vision.py``, checked against the converter by
``make_gemma3n_vision --check-layout``) into the bench cache beside the E2B-shaped models, loads it with an
E2B-shaped text model through g3chat's engine, and times in one run:

- the encode of one 768x768 picture (mtmd: the vision tower and the projection into 256 soft tokens), the
  first (which also plans the graph's memory) and the median of the next ones;
- as the same-run baseline, the prefill of those 256 image embeddings into the text model, and the prefill of
  256 text tokens (so the encode can be read as "N tokens' worth of prompt").

    python bench/vision_encoder.py [--model e2b-q4] [--threads 2] [--repeats 3] [--force]
"""

from __future__ import annotations

import argparse
import ctypes
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _models import MODEL_HELP, models_dir, resolve_model

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the layout lives in tests/fixtures


def projector_path(force: bool) -> Path:
    from tests.fixtures.gemma3n_vision import E2B, write_mmproj

    path = models_dir() / "mmproj-gemma-3n-E2B-shaped-f16.gguf"
    if force or not path.is_file():
        started = time.perf_counter()
        write_mmproj(path, E2B, seed=0)
        print(f"wrote {path} ({path.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - started:.0f} s")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="e2b-q4", help=MODEL_HELP)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--force", action="store_true", help="rebuild the projector")
    args = parser.parse_args()
    import llama_cpp
    import llama_cpp.mtmd_cpp as mtmd
    import numpy as np
    from PIL import Image

    from g3chat.core.engine.embeddings import decode_embeddings
    from g3chat.core.engine.kv import KVSession
    from g3chat.core.engine.llama import LlamaCppEngine
    from g3chat.core.engine.projector import MediaChunk
    from g3chat.core.media.images import attach_image
    from g3chat.core.media.store import MediaStore
    from tests.fixtures.gemma3n_vision import E2B, mmproj_layout, pattern_image

    mmproj = projector_path(args.force)
    model = resolve_model(args.model)
    n_params = sum(int(np.prod(shape)) for shape, _ in mmproj_layout(E2B).values())
    engine = LlamaCppEngine(
        model, n_ctx=1024, n_threads=args.threads, flash_attn=False, mmproj=mmproj, state_memory_mb=0,
        state_dir=None,
    )  # fmt: skip
    engine.load()
    projector = engine._projector
    assert projector is not None and projector.projector_type == "gemma3nv"
    llm = engine.llama
    print(f"text model {model.name}, projector {mmproj.name} ({n_params / 1e6:.0f}M parameters), "
          f"llama-cpp-python {llama_cpp.__version__}, {args.threads} threads")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "picture.png"
        Image.fromarray(pattern_image(1)).save(path)
        part = attach_image(MediaStore(Path(tmp) / "media"), path)
        [chunk] = [p for p in projector.tokenize(part).pieces if isinstance(p, MediaChunk)]
        assert chunk.n_tokens == 256, chunk.n_tokens

        def encode() -> float:
            started = time.perf_counter()
            assert mtmd.mtmd_encode_chunk(projector._ctx, ctypes.c_void_p(chunk.pointer)) == 0
            return time.perf_counter() - started

        kv = KVSession(llm)
        text = llm.tokenize(b" the lighthouse keeper" * 128, add_bos=False, special=False)[:256]

        def text_prefill() -> float:
            kv.truncate(0)
            started = time.perf_counter()
            kv.decode([2, *text[:255]], all_logits=False)
            return time.perf_counter() - started

        def image_prefill() -> float:  # the 256 encoded rows decoded as embeddings (no encode timed)
            rows = (
                np.ctypeslib.as_array(
                    mtmd.mtmd_get_output_embd(projector._ctx), shape=(chunk.n_tokens * llm.n_embd(),)
                )
                .reshape(chunk.n_tokens, llm.n_embd())
                .copy()
            )
            kv.truncate(0)
            kv.decode([2], all_logits=False)
            started = time.perf_counter()
            decode_embeddings(llm, rows, ids=chunk.placeholders)
            return time.perf_counter() - started

        first = encode()
        encodes, prefills, texts = [], [], []
        for _ in range(args.repeats):
            encodes.append(encode())
            prefills.append(image_prefill())
            texts.append(text_prefill())
    engine.close()
    enc, txt, img = (statistics.median(x) for x in (encodes, texts, prefills))
    print(f"image encode (768x768 -> 256 soft tokens): first {first:.2f} s, then {enc:.2f} s (median of "
          f"{args.repeats})")  # fmt: skip
    print(f"baseline, same run: prefill of the 256 image embeddings {img:.2f} s; of 256 text tokens "
          f"{txt:.2f} s ({txt / 256 * 1000:.1f} ms a token)")  # fmt: skip
    print(f"the encode costs as much as {enc / (txt / 256):.0f} text tokens of prefill "
          f"(encode / 256-token prefill = {enc / txt:.2f})")  # fmt: skip


if __name__ == "__main__":
    main()
