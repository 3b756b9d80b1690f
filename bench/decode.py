"""Decode speed and time-to-first-token: g3chat against raw llama-cpp-python, in one run.

Same GGUF, same threads, same context and the same sampling settings (Gemma 3n's defaults) for every
path; each measurement is repeated and the median kept, with the paths interleaved so that a busy machine
slows all of them alike. Prints a table of ratios against the raw baseline.

    python bench/decode.py [--model PATH] [--threads 2] [--tokens 128] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _models import MODEL_HELP, resolve_model

from g3chat.core.engine.llama import LlamaCppEngine
from g3chat.core.types import GenerationParams, Message, TextDelta, Usage, assistant, user

SEED = 42  # every path samples the same tokens: same prompt tokens, same sampler chain, same seed
PROMPT = "Write a long story about a lighthouse keeper who finds a message in a bottle."
FOLLOW_UP = "Continue the story with one more paragraph about the sea."


def raw_llama(model: Path, threads: int, n_ctx: int, tokens: int, repeats: int) -> list[tuple[float, float]]:
    """(ttft_s, decode tokens/s) per run through Llama.create_chat_completion(stream=True)."""
    import llama_cpp

    from g3chat.core.engine.native_log import native_log

    native_log.install(verbose=False)  # llama-cpp-python's own logger prints llama.cpp warnings
    llm = llama_cpp.Llama(
        str(model),
        n_ctx=n_ctx,
        n_threads=threads,
        n_threads_batch=threads,
        chat_format="gemma",
        verbose=False,
    )
    runs = []
    for _ in range(repeats):
        llm.reset()
        start = time.perf_counter()
        times = []
        for chunk in llm.create_chat_completion(
            [{"role": "user", "content": PROMPT}],
            stream=True,
            max_tokens=tokens,
            temperature=1.0,
            top_k=64,
            top_p=0.95,
            min_p=0.0,
            seed=SEED,
        ):
            if chunk["choices"][0]["delta"].get("content"):
                times.append(time.perf_counter())
        runs.append((times[0] - start, (len(times) - 1) / (times[-1] - times[0])))
    llm.close()
    return runs


def engine_runs(
    model: Path, threads: int, n_ctx: int, tokens: int, repeats: int
) -> list[tuple[float, float]]:
    eng = LlamaCppEngine(model, n_ctx=n_ctx, n_threads=threads)
    eng.load()
    runs = []
    for _ in range(repeats):
        eng.llama.reset()
        usage = _usage(eng.stream_chat([user(PROMPT)], GenerationParams(max_tokens=tokens, seed=SEED)))
        runs.append((usage.ttft_s or 0.0, usage.decode_tokens_per_s or 0.0))
    eng.close()
    return runs


def _usage(events) -> Usage:  # type: ignore[no-untyped-def]
    usage = None
    for event in events:
        if isinstance(event, Usage):
            usage = event
    assert usage is not None
    return usage


def ask_runs(model: Path, threads: int, n_ctx: int, tokens: int, repeats: int) -> list[tuple[float, float]]:
    """Through `g3chat ask --json` in a subprocess (its own timings: TTFT from the request, decode rate)."""
    runs = []
    with tempfile.TemporaryDirectory() as home:
        env = {
            **os.environ,
            "G3CHAT_HOME": home,
            "G3CHAT_MODEL": str(model),
            "G3CHAT_ENGINE__THREADS": str(threads),
            "G3CHAT_ENGINE__N_CTX": str(n_ctx),
        }
        for _ in range(repeats):
            proc = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "g3chat",
                    "ask",
                    "--json",
                    "--no-save",
                    "-n",
                    str(tokens),
                    "--seed",
                    str(SEED),
                    PROMPT,
                ],
                capture_output=True,
                text=True,
                env=env,
                check=True,
            )
            timings = json.loads(proc.stdout)["timings"]
            runs.append((timings["ttft_s"], timings["decode_tokens_per_s"]))
    return runs


def multi_turn(model: Path, threads: int, n_ctx: int, turns: int = 10) -> list[float]:
    """TTFT of each turn of one conversation through g3chat's engine; new messages all the same length."""
    eng = LlamaCppEngine(model, n_ctx=n_ctx, n_threads=threads)
    eng.load()
    history: list[Message] = []
    ttfts = []
    for turn in range(turns):
        history.append(user(f"{FOLLOW_UP} (part {turn + 1:02d})"))
        text = []
        usage = None
        for event in eng.stream_chat(history, GenerationParams(max_tokens=48, seed=turn)):
            if isinstance(event, TextDelta):
                text.append(event.text)
            elif isinstance(event, Usage):
                usage = event
        assert usage is not None and usage.ttft_s is not None
        ttfts.append(usage.ttft_s)
        history.append(assistant("".join(text)))
    eng.close()
    return ttfts


def raw_multi_turn(model: Path, threads: int, n_ctx: int, turns: int = 10) -> list[float]:
    """The same conversation through raw create_chat_completion (which also reuses a matching prefix)."""
    import llama_cpp

    llm = llama_cpp.Llama(
        str(model),
        n_ctx=n_ctx,
        n_threads=threads,
        n_threads_batch=threads,
        chat_format="gemma",
        verbose=False,
    )
    history: list[dict[str, str]] = []
    ttfts = []
    for turn in range(turns):
        history.append({"role": "user", "content": f"{FOLLOW_UP} (part {turn + 1:02d})"})
        start = time.perf_counter()
        first = None
        text = []
        for chunk in llm.create_chat_completion(
            history, stream=True, max_tokens=48, seed=turn, temperature=1.0, top_k=64, top_p=0.95, min_p=0.0
        ):
            content = chunk["choices"][0]["delta"].get("content")
            if content:
                first = first or time.perf_counter() - start
                text.append(content)
        ttfts.append(first or 0.0)
        history.append({"role": "assistant", "content": "".join(text)})
    llm.close()
    return ttfts


def startup(repeats: int = 10) -> tuple[float, float]:
    def wall(cmd: list[str]) -> float:
        samples = []
        for _ in range(repeats):
            start = time.perf_counter()
            subprocess.run(cmd, capture_output=True, check=True)
            samples.append(time.perf_counter() - start)
        return statistics.median(samples)

    return wall([sys.executable, "-m", "g3chat", "--help"]), wall([sys.executable, "-c", "import typer"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help=MODEL_HELP)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--ctx", type=int, default=4096)
    parser.add_argument("--tokens", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    model = resolve_model(args.model)
    common = (model, args.threads, args.ctx, args.tokens)

    results: dict[str, list[tuple[float, float]]] = {"raw": [], "engine": [], "ask": []}
    for _ in range(args.repeats):  # interleave the paths
        results["raw"] += raw_llama(*common, 1)
        results["engine"] += engine_runs(*common, 1)
        results["ask"] += ask_runs(*common, 1)
    med = {
        k: (statistics.median(r[0] for r in v), statistics.median(r[1] for r in v))
        for k, v in results.items()
    }
    conversations = [
        (multi_turn(model, args.threads, args.ctx), raw_multi_turn(model, args.threads, args.ctx))
        for _ in range(args.repeats)
    ]
    ttfts = [statistics.median(c[0][turn] for c in conversations) for turn in range(10)]
    raw_ttfts = [statistics.median(c[1][turn] for c in conversations) for turn in range(10)]
    help_s, typer_s = startup()

    raw_tps = med["raw"][1]
    print(
        f"model {model.name}, {args.threads} threads, n_ctx {args.ctx}, {args.tokens} tokens, "
        f"median of {args.repeats}"
    )
    print()
    print("| path | TTFT s | decode tok/s | decode vs raw |")
    print("|---|---:|---:|---:|")
    names = {
        "raw": "raw llama-cpp-python create_chat_completion",
        "engine": "g3chat engine (in-process)",
        "ask": "`g3chat ask --json` (subprocess)",
    }
    for key in ("raw", "engine", "ask"):
        ttft, tps = med[key]
        print(f"| {names[key]} | {ttft:.3f} | {tps:.1f} | {tps / raw_tps:.2f}x |")
    print()
    print("| measure | value | target |")
    print("|---|---:|---:|")
    print(
        f"| turn-10 TTFT / turn-1 TTFT (10-turn chat), g3chat | {ttfts[-1] / ttfts[0]:.2f} "
        f"({ttfts[-1] * 1000:.0f} ms / {ttfts[0] * 1000:.0f} ms) | <= 1.5 |"
    )
    print(
        f"| turn-10 TTFT / turn-1 TTFT (10-turn chat), raw | {raw_ttfts[-1] / raw_ttfts[0]:.2f} "
        f"({raw_ttfts[-1] * 1000:.0f} ms / {raw_ttfts[0] * 1000:.0f} ms) | (reference) |"
    )
    print(
        f"| `g3chat --help` / `python -c 'import typer'` wall time | {help_s / typer_s:.2f} "
        f"({help_s * 1000:.0f} ms / {typer_s * 1000:.0f} ms) | <= 1.6 |"
    )
    print(f"| `g3chat ask` decode / raw decode | {med['ask'][1] / raw_tps:.2f} | >= 0.97 |")


if __name__ == "__main__":
    main()
