"""Speculative decoding and saved KV states, against raw llama-cpp-python, in one run.

(a) decode tokens/s on echo-heavy tasks (rewrite a public-domain paragraph, fix a Python function, quote,
    fill a template): g3chat with and without prompt-lookup speculation, and raw
    ``Llama.create_chat_completion``; greedy output with and without speculation compared token for token.
(b) the same for free chat, where copies are rare.
(c) TTFT of ``g3chat ask -c`` on a conversation with >= 2,000 tokens of history, with and without the
    saved-state cache, against a fresh one-turn TTFT; and the saved state's size per 1,000 tokens.
(d) switching conversations in one process (what the chat UI does): TTFT of A's next turn after a turn in
    B, with and without the in-memory state tier, against A's previous turn TTFT.

Same GGUF, threads, context and sampling settings everywhere; medians over interleaved repeats.

    python bench/speculative.py [--model PATH] [--threads 2] [--tokens 160] [--repeats 3]
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from _models import MODEL_HELP, resolve_model

from g3chat.core.engine.llama import LlamaCppEngine
from g3chat.core.types import GenerationParams, collect, user

# Jane Austen, Pride and Prejudice (1813), chapter 1: public domain.
AUSTEN = (
    "It is a truth universally acknowledged, that a single man in possession of a good fortune, must be in "
    "want of a wife. However little known the feelings or views of such a man may be on his first entering a "
    "neighbourhood, this truth is so well fixed in the minds of the surrounding families, that he is "
    'considered the rightful property of some one or other of their daughters. "My dear Mr. Bennet," said '
    'his lady to him one day, "have you heard that Netherfield Park is let at last?" Mr. Bennet replied that '
    'he had not. "But it is," returned she; "for Mrs. Long has just been here, and she told me all about it."'
)
CODE = textwrap.dedent(inspect.getsource(textwrap.shorten))  # a real Python function from the stdlib

ECHO_TASKS = {
    "rewrite paragraph": f"Rewrite this paragraph, keeping its British spelling:\n\n{AUSTEN}",
    "fix code": f"Fix the typo in the docstring of this function and return the whole function:\n\n{CODE}",
    "quote": f"Quote the passage below word for word, then say who speaks in it:\n\n{AUSTEN}",
    "fill template": "Fill in this template for Mr. Bennet, repeating every line:\n\n"
    + "\n".join(f"Field {i}: name of the field number {i} = ____" for i in range(1, 13)),
}
FREE_TASKS = {
    "history": "Tell me about the history of lighthouses.",
    "advice": "How should I plan a vegetable garden for a small balcony?",
    "story": "Write a short story about a fox who learns to sail.",
}


def engine_run(eng: LlamaCppEngine, prompt: str, params: GenerationParams) -> tuple[float, str, int, int]:
    eng.llama.reset()
    usage = None
    result = collect(eng.stream_chat([user(prompt)], params))
    usage = result.usage
    assert usage is not None
    return usage.decode_tokens_per_s or 0.0, result.text, usage.drafted_tokens, usage.accepted_tokens


def raw_run(llm, prompt: str, params: GenerationParams) -> float:  # type: ignore[no-untyped-def]
    llm.reset()
    times = []
    for chunk in llm.create_chat_completion(
        [{"role": "user", "content": prompt}],
        stream=True,
        max_tokens=params.max_tokens,
        temperature=params.temperature,
        top_k=params.top_k,
        top_p=params.top_p,
        min_p=params.min_p,
        seed=params.seed,
    ):
        if chunk["choices"][0]["delta"].get("content"):
            times.append(time.perf_counter())
    return (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else 0.0


FREE_TARGET = ", target >= 0.97 (auto never slower than off)"


def decode_table(model: Path, threads: int, tokens: int, repeats: int) -> None:
    import llama_cpp

    from g3chat.core.engine.native_log import native_log

    native_log.install(verbose=False)
    raw = llama_cpp.Llama(
        str(model), n_ctx=4096, n_threads=threads, n_threads_batch=threads, chat_format="gemma", verbose=False
    )
    spec = LlamaCppEngine(model, n_ctx=4096, n_threads=threads, speculative="on", state_memory_mb=0)
    plain = LlamaCppEngine(model, n_ctx=4096, n_threads=threads, speculative="off", state_memory_mb=0)
    spec.load()
    plain.load()
    print(
        "| task | kind | raw tok/s | g3chat plain | g3chat speculative | spec vs raw | spec vs plain | "
        "accepted | greedy identical |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---|")
    ratios: dict[str, list[float]] = {"echo": [], "free": []}
    against_plain: dict[str, list[float]] = {"echo": [], "free": []}
    for kind, tasks in (("echo", ECHO_TASKS), ("free", FREE_TASKS)):
        for name, prompt in tasks.items():
            sampled = GenerationParams(max_tokens=tokens, seed=11)
            raw_s, plain_s, spec_s, drafted, accepted = [], [], [], 0, 0
            for _ in range(repeats):
                raw_s.append(raw_run(raw, prompt, sampled))
                plain_s.append(engine_run(plain, prompt, sampled)[0])
                tps, _, d, a = engine_run(spec, prompt, sampled)
                spec_s.append(tps)
                drafted, accepted = drafted + d, accepted + a
            greedy = GenerationParams(temperature=0.0, max_tokens=tokens)
            same = engine_run(spec, prompt, greedy)[1] == engine_run(plain, prompt, greedy)[1]
            r, p, s = (statistics.median(x) for x in (raw_s, plain_s, spec_s))
            ratios[kind].append(s / r)
            against_plain[kind].append(s / p)
            rate = f"{accepted / drafted:.0%}" if drafted else "no drafts"
            print(
                f"| {name} | {kind} | {r:.1f} | {p:.1f} | {s:.1f} | {s / r:.2f}x | {s / p:.2f}x | {rate} | "
                f"{'yes' if same else 'NO'} |"
            )
    print()
    for kind, target in (("echo", ">= 1.5"), ("free", ">= 1.0")):
        values = ratios[kind]
        print(
            f"{kind}: speculative vs raw, geometric mean {statistics.geometric_mean(values):.2f}x "
            f"(min {min(values):.2f}x), target {target}"
        )
        values = against_plain[kind]
        print(
            f"{kind}: speculative vs plain g3chat, geometric mean {statistics.geometric_mean(values):.2f}x "
            f"(min {min(values):.2f}x){FREE_TARGET if kind == 'free' else ''}"
        )
    print(f"cost curve the policy used (step with k drafts / plain step): {spec.draft_ratios()}")
    raw.close()
    spec.close()
    plain.close()


def ask(env: dict[str, str], *args: str) -> dict:  # type: ignore[type-arg]
    proc = subprocess.run(
        [sys.executable, "-m", "g3chat", "ask", "--json", *args],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    return json.loads(proc.stdout)


def continue_table(model: Path, threads: int, repeats: int) -> None:
    history = " ".join(
        f"Entry {i}: the keeper logged wind, waves, three ships and the gulls." for i in range(150)
    )
    question = "What did the keeper log most often?"
    rows: dict[str, list[float]] = {
        "fresh one-turn": [],
        "ask -c, no state cache": [],
        "ask -c, state cache": [],
    }
    size_per_1k = 0.0
    for _ in range(repeats):
        for cached in (False, True):
            with tempfile.TemporaryDirectory() as home:
                env = {
                    **os.environ,
                    "G3CHAT_HOME": home,
                    "G3CHAT_MODEL": str(model),
                    "G3CHAT_ENGINE__THREADS": str(threads),
                    "G3CHAT_ENGINE__N_CTX": "4096",
                    "G3CHAT_ENGINE__STATE_CACHE_MB": "2048" if cached else "0",
                }
                first = ask(env, "-n", "16", "--temperature", "0", history)
                assert first["usage"]["prompt_tokens"] >= 2000, first["usage"]
                follow = ask(env, "-c", "-n", "8", question)
                key = "ask -c, state cache" if cached else "ask -c, no state cache"
                rows[key].append(follow["timings"]["ttft_s"])
                if cached:
                    files = list(Path(home, "cache", "kv").glob("*.g3kv"))
                    largest = max(files, key=lambda p: p.stat().st_size)
                    n_tokens = json.loads(largest.read_bytes()[12:].split(b"}", 1)[0] + b"}")["n_tokens"]
                    size_per_1k = largest.stat().st_size / n_tokens * 1000
                    fresh = ask(env, "--no-save", "-n", "8", question)
                    rows["fresh one-turn"].append(fresh["timings"]["ttft_s"])
    fresh_ttft = statistics.median(rows["fresh one-turn"])
    print("| TTFT | seconds | vs fresh one-turn |")
    print("|---|---:|---:|")
    for name, values in rows.items():
        value = statistics.median(values)
        print(f"| {name} | {value:.3f} | {value / fresh_ttft:.2f}x |")
    print(
        f"\nsaved state: {size_per_1k / 2**20:.1f} MiB per 1,000 tokens (target: ask -c with cache <= 1.5x)"
    )


def switch_table(model: Path, threads: int, repeats: int) -> None:
    from g3chat.core.types import assistant

    def long_history(topic: str) -> str:
        return " ".join(
            f"Entry {i}: the {topic} logged wind, waves, three ships and gulls." for i in range(150)
        )

    def ttft(eng: LlamaCppEngine, messages: list) -> tuple[float, str]:  # type: ignore[type-arg]
        result = collect(eng.stream_chat(messages, GenerationParams(temperature=0.0, max_tokens=8)))
        assert result.usage is not None and result.usage.ttft_s is not None
        return result.usage.ttft_s, result.text

    rows: dict[str, list[float]] = {"A, next turn (no switch)": [], "A after B, memory tier": [],
                                    "A after B, no state cache": []}  # fmt: skip
    for _ in range(repeats):
        for memory_mb in (512, 0):
            eng = LlamaCppEngine(
                model, n_ctx=8192, n_threads=threads, state_memory_mb=memory_mb, state_disk_mb=0
            )
            eng.load()
            a = [user(long_history("keeper"))]
            _, answer = ttft(eng, a)
            a += [assistant(answer), user("What did the keeper log most often?")]
            last, answer = ttft(eng, a)  # A's last turn: its history is already in the KV cache
            a += [assistant(answer), user("And what else?")]
            b = [user(long_history("captain"))]
            ttft(eng, b)  # B replaces A in the KV cache
            after, _ = ttft(eng, a)
            if memory_mb:
                rows["A, next turn (no switch)"].append(last)
                rows["A after B, memory tier"].append(after)
            else:
                rows["A after B, no state cache"].append(after)
            eng.close()
    base = statistics.median(rows["A, next turn (no switch)"])
    print("| switching conversations in one process | TTFT s | vs A's last turn |")
    print("|---|---:|---:|")
    for name, values in rows.items():
        value = statistics.median(values)
        print(f"| {name} | {value:.3f} | {value / base:.2f}x |")
    print("\n(target: A after B <= 1.5x A's last turn)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help=MODEL_HELP)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tokens", type=int, default=160)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--parts",
        default="decode,continue,switch",
        help="which tables (at E2B scale each takes many minutes)",
    )
    args = parser.parse_args()
    model = resolve_model(args.model)
    parts = set(args.parts.split(","))
    print(f"model {model.name}, {args.threads} threads, {args.tokens} tokens, median of {args.repeats}\n")
    if "decode" in parts:
        decode_table(model, args.threads, args.tokens, args.repeats)
        print()
    if "continue" in parts:
        continue_table(model, args.threads, args.repeats)
        print()
    if "switch" in parts:
        switch_table(model, args.threads, args.repeats)


if __name__ == "__main__":
    main()
