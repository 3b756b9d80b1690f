"""Prefill already paid for: shared preambles, partial-prefix restore and generated ids, in one run.

At Gemma 3n E2B scale on two CPU cores every prompt token evaluated costs ~20 ms, so what matters is how
many tokens a turn evaluates. Each figure is printed next to its baseline from the same run:

1. ``g3chat ask "hello there"`` TTFT (the baseline) against ``g3chat ask --tools all "hello there"``: the
   first run ever (an empty state folder: it evaluates and saves the tools' preamble) and the runs after it
   (the preamble restored). Target: later runs <= 1.5x the baseline.
2. The chat UI's case in one process (the engine the UI keeps loaded): the first answer of a new chat with
   the built-in tools on (their description in the prompt, through the tool loop) against tools off, after
   one earlier chat with tools. Target <= 1.5x.
3. ``g3chat ask -c`` right after a first turn with a long answer: prompt tokens evaluated (target <= 64)
   and TTFT, against a fresh one-turn question.

    python bench/prefix.py [--model PATH|e2b-q4|...] [--threads 2] [--ctx 8192] [--repeats 3]
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
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._models import resolve_model  # noqa: E402
from g3chat.core.chat import Turn  # noqa: E402
from g3chat.core.engine.llama import LlamaCppEngine  # noqa: E402
from g3chat.core.tools.builtins import builtin_tools  # noqa: E402
from g3chat.core.tools.confine import Roots  # noqa: E402
from g3chat.core.tools.loop import ToolLoop  # noqa: E402
from g3chat.core.types import GenerationParams, Usage, user  # noqa: E402

QUESTION = "hello there"
OTHER = "what can you do"  # a later run with another question: only the preamble is shared
STORY = "Write a long story about a lighthouse keeper who finds a message in a bottle."


def ask(env: dict[str, str], *args: str) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-m", "g3chat", "ask", "--json", "--temperature", "0", *args],
        capture_output=True, text=True, env=env, check=False, cwd=ROOT,
    )  # fmt: skip
    if proc.returncode != 0:
        raise SystemExit(f"g3chat ask failed: {proc.stderr.strip()}")
    return json.loads(proc.stdout)


def ttft(data: dict[str, Any]) -> float:
    value = data["timings"]["ttft_s"]
    if value is None:
        raise SystemExit("an answer produced no text (no TTFT): try more tokens (-n)")
    return float(value)


def cli_figures(model: Path, threads: int, n_ctx: int, repeats: int, answer: int) -> dict[str, Any]:
    out: dict[str, Any] = {
        "plain": [], "tools_cold": [], "tools_warm": [], "tools_other": [], "fresh": [], "continue": []
    }  # fmt: skip
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as home:  # an empty state folder: the first run ever
            env = {
                **os.environ,
                "G3CHAT_HOME": home,
                "G3CHAT_MODEL": str(model),
                "G3CHAT_ENGINE__THREADS": str(threads),
                "G3CHAT_ENGINE__N_CTX": str(n_ctx),
            }
            out["plain"].append(ttft(ask(env, "--no-save", "-n", "4", QUESTION)))
            cold = ask(env, "--no-save", "-n", "4", "--tools", "all", QUESTION)
            out["tools_cold"].append(ttft(cold))
            out["preamble_tokens"] = cold["usage"]["prompt_tokens"]
            warm = ask(env, "--no-save", "-n", "4", "--tools", "all", QUESTION)
            out["tools_warm"].append(ttft(warm))
            out["tools_warm_eval"] = warm["usage"]["prompt_eval_tokens"]
            other = ask(env, "--no-save", "-n", "4", "--tools", "all", OTHER)
            out["tools_other"].append(ttft(other))
            out["tools_other_eval"] = other["usage"]["prompt_eval_tokens"]
            first = ask(env, "-n", str(answer), STORY)
            out["fresh"].append(ttft(first))
            out["first_answer_tokens"] = first["usage"]["completion_tokens"]
            follow = ask(env, "-n", "4", "-c", "Continue the story with one more paragraph.")
            out["continue"].append(ttft(follow))
            out["continue_prompt"] = follow["usage"]["prompt_tokens"]
            out["continue_eval"] = follow["usage"]["prompt_eval_tokens"]
    return out


def first_ttft(events: Any) -> tuple[float, Usage | None]:
    usage = None
    for event in events:
        if isinstance(event, Usage):
            usage = event
    assert usage is not None and usage.ttft_s is not None, "no text was produced"
    return usage.ttft_s, usage


def ui_figures(model: Path, threads: int, n_ctx: int, repeats: int) -> dict[str, list[float]]:
    """New chats in one process, as the chat UI runs them: the engine stays loaded between chats."""
    params = GenerationParams(temperature=0, max_tokens=4)
    tools = builtin_tools(Roots([Path.cwd()]))
    out: dict[str, list[float]] = {"off": [], "on_first": [], "on": []}
    with tempfile.TemporaryDirectory() as states:
        eng = LlamaCppEngine(model, n_ctx=n_ctx, n_threads=threads, state_dir=Path(states))
        eng.load()
        try:
            for rep in range(repeats):
                with_tools = ToolLoop(eng, [user(f"{QUESTION} ({rep})")], params, tools, max_steps=1)
                seconds, _ = first_ttft(with_tools)
                out["on_first" if rep == 0 else "on"].append(seconds)
                without = Turn(eng, [user(f"{QUESTION} ({rep})")], params)
                out["off"].append(first_ttft(without)[0])
        finally:
            eng.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="a GGUF path or e2b-q4, e2b-q8, e4b-q4, e4b-q8")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--ctx", type=int, default=8192)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--answer", type=int, default=200, help="tokens of the long first answer")
    args = parser.parse_args()
    model = resolve_model(args.model)
    started = time.perf_counter()
    cli = cli_figures(model, args.threads, args.ctx, args.repeats, args.answer)
    ui = ui_figures(model, args.threads, args.ctx, args.repeats + 1)
    med = statistics.median
    base = med(cli["plain"])
    print(f"model {model.name}, {args.threads} threads, n_ctx {args.ctx}, median of {args.repeats} "
          f"({time.perf_counter() - started:.0f} s)")  # fmt: skip
    print()
    print('| `g3chat ask` (new process each) | TTFT s | vs `ask "hello there"` | target |')
    print("|---|---:|---:|---:|")
    print(f'| `ask "hello there"` | {base:.3f} | 1.00x | |')
    cold, warm = med(cli["tools_cold"]), med(cli["tools_warm"])
    print(f"| `ask --tools all \"hello there\"`, first run ever ({cli['preamble_tokens']} prompt tokens) "
          f"| {cold:.3f} | {cold / base:.2f}x | (pays once) |")  # fmt: skip
    print(f"| `ask --tools all \"hello there\"`, later runs ({cli['tools_warm_eval']} evaluated) "
          f"| {warm:.3f} | {warm / base:.2f}x | <= 1.5x |")  # fmt: skip
    other = med(cli["tools_other"])
    print(f"| `ask --tools all \"{OTHER}\"` after them ({cli['tools_other_eval']} evaluated) "
          f"| {other:.3f} | {other / base:.2f}x | <= 1.5x |")  # fmt: skip
    fresh, cont = med(cli["fresh"]), med(cli["continue"])
    print(f"| `ask` one-turn story question (fresh) | {fresh:.3f} | | |")
    print(f"| `ask -c` after a {cli['first_answer_tokens']}-token answer: {cli['continue_eval']} of "
          f"{cli['continue_prompt']} prompt tokens evaluated (target <= 64) | {cont:.3f} "
          f"| {cont / fresh:.2f}x fresh | |")  # fmt: skip
    print()
    off, on_first, on = med(ui["off"]), ui["on_first"][0], med(ui["on"])
    print("| new chat in a running chat UI (one engine) | TTFT s | vs tools off | target |")
    print("|---|---:|---:|---:|")
    print(f"| tools off | {off:.3f} | 1.00x | |")
    print(f"| tools on, first chat ever | {on_first:.3f} | {on_first / off:.2f}x | (pays once) |")
    print(f"| tools on, later new chats | {on:.3f} | {on / off:.2f}x | <= 1.5x |")


if __name__ == "__main__":
    main()
