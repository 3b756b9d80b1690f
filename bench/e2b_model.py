"""Build Gemma 3n E2B-shaped (and E4B-shaped) GGUF files with random weights, for speed and memory work.

The real Gemma 3n GGUFs are 3-5 GB downloads that an offline machine cannot fetch; what decides decode
speed, prefill speed and memory is the tensor layout, not the weights. This writes the F16/F32 file
llama.cpp's converter makes of google/gemma-3n-E2B-it (tensor names, shapes and types, metadata, the Gemma
vocabulary taken from the offline test model, Gemma 3n's chat template), quantizes it with llama.cpp's own
quantizer through llama-cpp-python (Q4_K_M and Q8_0), deletes the F16 source, and checks the result:

- size: the E2B Q8_0 against the published ggml-org/gemma-3n-E2B-it-GGUF Q8_0 (4,788,112,064 bytes): the
  tensor data is byte for byte the same size, the header 256 bytes smaller (metadata strings: name,
  licence, tags);
- load and run: the E2B Q4_K_M through llama-cpp-python (n_ctx 8192, flash attention, swa_full, as
  g3chat loads it): architecture, load time, prefill and decode tokens/s, after the same measurement on
  the offline test model (a busy machine slows both).

Outputs go to ~/.cache/g3chat-bench/models (``--out`` or $G3CHAT_BENCH_MODELS), never the repository;
files already there are kept unless --force. Bench scripts take them as ``--model e2b-q4`` etc. Building
E2B needs 9 GB of free disk for the F16 source (E4B 13 GB) besides the outputs (E2B Q4_K_M 3.3 GB, Q8_0
4.8 GB), and on 2 cores about 20 minutes (Q4_K_M's k-quants are the slow part).

    python bench/e2b_model.py [--shape E2B|E4B] [--quant Q4_K_M --quant Q8_0] [--out DIR] [--force]
                              [--threads 2] [--no-run] [--tiny]
"""

from __future__ import annotations

import argparse
import ctypes
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from _gemma3n_layout import (
    SHAPES,
    Shape,
    TensorSpec,
    keeps_source_type,
    read_tokenizer,
    tensor_plan,
    write_source,
)
from _models import QUANTS, models_dir, resolve_model, shaped_file
from gguf import GGMLQuantizationType

REPO = Path(__file__).resolve().parent.parent
TEMPLATE = REPO / "tests" / "fixtures" / "gemma3n_template.jinja"  # Gemma 3n's own chat template
PUBLISHED = {("E2B", "Q8_0"): 4_788_112_064}  # ggml-org/gemma-3n-E2B-it-GGUF, gemma-3n-E2B-it-Q8_0.gguf
Q8_0_BLOCK = (32, 34)  # elements, bytes
PROMPT = (
    "You are a careful assistant. Summarise the following notes for a colleague who missed the meeting, "
    "in five short bullet points, and end with one open question.\n\n"
    "The lighthouse on the north headland has been automated since spring, but the keeper's cottage is "
    "still used by the coastal survey team. They reported that the fog signal fails in heavy rain, that "
    "the access road floods at high tide twice a month, and that the solar panels on the store roof "
    "produce about a third less than the installer promised. The council has offered to pay for a new "
    "drainage culvert if the survey team shares its tide records. Nobody has yet decided who owns the "
    "old boat shed, which the harbour trust and the parish both claim. "
) * 2


def ftype(quant: str) -> int:
    import llama_cpp

    return {"Q4_K_M": llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_K_M, "Q8_0": llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0}[quant]


def quantize(src: Path, dst: Path, quant: str, threads: int) -> None:
    """llama.cpp's quantizer (what `llama-quantize` runs) with its default parameters; atomic."""
    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftype(quant)
    params.nthread = threads
    part = dst.with_name(f"{dst.name}.part-{os.getpid()}")
    try:
        rc = llama_cpp.llama_model_quantize(str(src).encode(), str(part).encode(), ctypes.byref(params))
        if rc != 0:
            raise SystemExit(f"llama_model_quantize failed ({rc}) for {dst.name}")
        os.replace(part, dst)
    finally:
        part.unlink(missing_ok=True)


def build(
    shape: Shape,
    quants: list[str],
    out: Path,
    *,
    force: bool = False,
    threads: int = 2,
    vocab_from: Path | None = None,
    log: Callable[[str], object] = print,
) -> dict[str, Path]:
    """Make the quantized files of ``shape`` in ``out`` that are missing; returns all of them.

    The tokenizer metadata comes from ``vocab_from`` (default: the offline test model, Gemma 3 270M, whose
    vocabulary is Gemma's 262,144 tokens), so prompts tokenize as they would for Gemma 3n."""
    targets = {q: shaped_file(shape.name, q, out) for q in quants}
    todo = [q for q, path in targets.items() if force or not path.is_file()]
    for q in set(quants) - set(todo):
        log(f"{targets[q]} exists (use --force to rebuild)")
    if not todo:
        return targets
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = read_tokenizer(vocab_from or resolve_model(None))
    template = TEMPLATE.read_text() if TEMPLATE.is_file() else None
    fd, name = tempfile.mkstemp(prefix=f".gemma-3n-{shape.name}-F16-", suffix=".gguf", dir=out)
    os.close(fd)
    source = Path(name)
    try:
        start = time.perf_counter()
        write_source(source, shape, tokenizer, template)
        log(f"source F16 {source.stat().st_size:,} bytes in {time.perf_counter() - start:.0f} s")
        for q in todo:
            start = time.perf_counter()
            quantize(source, targets[q], q, threads)
            log(f"{targets[q]}: {targets[q].stat().st_size:,} bytes in {time.perf_counter() - start:.0f} s")
    finally:
        source.unlink(missing_ok=True)
    return targets


def expected_types(plan: list[TensorSpec], quant: str) -> dict[str, str]:
    """Tensor types after quantizing to Q8_0 (one type for all that llama.cpp quantizes at all)."""
    assert quant == "Q8_0", "only Q8_0 is one type; Q4_K_M mixes Q4_K and Q6_K by tensor and layer"
    return {s.name: s.ggml_type.name if keeps_source_type(s) else "Q8_0" for s in plan}


def q8_0_tensor_bytes(plan: list[TensorSpec]) -> int:
    """The tensor data of the Q8_0 file (every tensor's size is a multiple of the 32-byte alignment)."""
    per_block, block_bytes = Q8_0_BLOCK
    return sum(s.nbytes if keeps_source_type(s) else s.n_elements // per_block * block_bytes for s in plan)


def type_name(ggml_type: int) -> str:
    return GGMLQuantizationType(ggml_type).name


def check_size(path: Path, shape: Shape, quant: str) -> list[str]:
    """Print the file's size against the published one and its bytes by tensor type; for Q8_0, return
    the tensors whose type is not the expected one (the first place to look when the size is off)."""
    from g3chat.core.gguf_file import inspect_gguf

    summary = inspect_gguf(path)
    embd = next(t for t in summary.tensors if t.name == "token_embd.weight")
    plan = tensor_plan(shape, embd.shape[1])
    size = summary.file_size
    published = PUBLISHED.get((shape.name, quant))
    line = f"{path.name}: {size:,} bytes"
    if published:
        line += f"; published {published:,}; difference {size - published:+,} bytes"
    print(line)
    by_type: dict[str, int] = {}
    for t in summary.tensors:
        by_type[type_name(t.ggml_type)] = by_type.get(type_name(t.ggml_type), 0) + (t.nbytes or 0)
    print("  tensor bytes by type: " + ", ".join(f"{k} {v:,}" for k, v in sorted(by_type.items())))
    if quant != "Q8_0":
        return []
    types = expected_types(plan, quant)
    actual = {t.name: type_name(t.ggml_type) for t in summary.tensors}
    wrong = [f"{name} {kind}" for name, kind in actual.items() if types.get(name) != kind]
    missing = sorted(set(types) - set(actual))
    data, expected = summary.file_size - summary.data_offset, q8_0_tensor_bytes(plan)
    print(f"  header {summary.data_offset:,} bytes; tensor data {data:,}, expected {expected:,}")
    if wrong or missing:
        print(f"  unexpected: {', '.join(wrong[:10])}; missing: {', '.join(missing[:10])}")
    return wrong + missing


def run_check(
    path: Path, threads: int, n_ctx: int = 8192, decode_tokens: int = 32, arch: str | None = "gemma3n"
) -> dict[str, float]:
    """Load as g3chat does and time a prefill and a greedy decode (the weights are random: the tokens are
    noise, the speed is E2B's). ``arch``: the architecture llama.cpp must read, None for any."""
    import llama_cpp
    import numpy as np

    from g3chat.core.engine.native_log import native_log

    native_log.install(verbose=False)
    start = time.perf_counter()
    llm = llama_cpp.Llama(
        str(path), n_ctx=n_ctx, n_threads=threads, n_threads_batch=threads, flash_attn=True, swa_full=True,
        verbose=False,
    )  # fmt: skip
    load_s = time.perf_counter() - start
    read = llm.metadata.get("general.architecture")
    if arch and read != arch:
        raise SystemExit(f"{path.name}: llama.cpp reads architecture {read!r}, not {arch}")
    tokens = llm.tokenize(PROMPT.encode(), add_bos=True)
    start = time.perf_counter()
    llm.eval(tokens)
    prefill_s = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(decode_tokens):
        logits = np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(llm.n_vocab(),))
        llm.eval([int(np.argmax(logits))])
    decode_s = time.perf_counter() - start
    llm.close()
    result = {
        "load_s": load_s,
        "prompt_tokens": len(tokens),
        "prefill_tok_s": len(tokens) / prefill_s,
        "decode_tok_s": decode_tokens / decode_s,
    }
    print(
        f"{path.name}: architecture {read}, n_ctx {n_ctx}, {threads} threads: load {load_s:.1f} s, "
        f"prefill {result['prefill_tok_s']:.1f} tok/s ({len(tokens)} tokens), "
        f"decode {result['decode_tok_s']:.1f} tok/s ({decode_tokens} tokens); "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", type=str.upper, choices=sorted(SHAPES), default="E2B")
    parser.add_argument("--quant", action="append", choices=QUANTS, help="default: Q4_K_M and Q8_0")
    parser.add_argument("--out", type=Path, default=None, help="default: $G3CHAT_BENCH_MODELS or ~/.cache/…")
    parser.add_argument("--force", action="store_true", help="rebuild files that exist")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-run", action="store_true", help="skip the load-and-run check")
    parser.add_argument("--tiny", action="store_true", help="toy widths, same tensor names and types")
    args = parser.parse_args()
    shape = SHAPES[args.shape].tiny() if args.tiny else SHAPES[args.shape]
    quants = args.quant or list(QUANTS)
    out = models_dir(args.out)
    targets = build(shape, quants, out, force=args.force, threads=args.threads)
    for quant, path in targets.items():
        check_size(path, shape, quant)
    if not args.no_run:
        print("the offline test model first, same settings: how fast this machine is right now")
        run_check(resolve_model(None), args.threads, arch=None)
        run_check(targets.get("Q4_K_M") or next(iter(targets.values())), args.threads)


if __name__ == "__main__":
    main()
