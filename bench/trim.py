"""Trimming with hysteresis against minimal trimming: KV-cache reuse over a long conversation, in one run.

One scripted conversation (questions and fixed answers of varied length, the same for both policies) runs
through two engines on the same GGUF, turn by turn interleaved so that a busy machine slows both alike:
one trims with g3chat's schedule (g3chat.core.context.fit_to_context), the other with the old policy, kept
below as the baseline, that drops only what the next turn needs. Each turn generates a few tokens (greedy,
``--tokens``) to time the first token; the history then gets the script's answer, so the evaluated tokens
of a turn that keeps its beginning are that answer and the new question.

Prints per turn: messages kept, prompt tokens, prompt tokens evaluated (the rest came from the KV cache)
and TTFT for each policy; then a summary (turns from one trim to the next, evaluated tokens and TTFT a
turn), new against old.

    python bench/trim.py [--model PATH] [--threads 2] [--ctx 1024] [--turns 40] [--tokens 4]
"""

from __future__ import annotations

import argparse
import itertools
import random
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from _models import MODEL_HELP, resolve_model

from g3chat.core.context import answer_reserve, fit_to_context, trim_slack
from g3chat.core.engine.llama import LlamaCppEngine
from g3chat.core.types import GenerationParams, Message, assistant, collect, system, user

WORDS = [
    *("river", "lantern", "copper", "orchard", "signal", "harbour", "meadow", "engine", "violet", "thunder"),
    *("pocket", "ladder", "winter", "candle", "garden", "marble", "compass", "willow", "anchor", "basket"),
]


def fit_minimal(
    messages: Sequence[Message], count_tokens: Callable[[Sequence[Message]], int], n_ctx: int, reserve: int
) -> tuple[list[Message], int]:
    """The old policy (before hysteresis): drop the fewest oldest turns that make the prompt fit.
    Returns the kept messages and how many were dropped."""
    messages = list(messages)
    budget = n_ctx - reserve
    if count_tokens(messages) <= budget:
        return messages, 0
    system_ = [m for m in messages if m.role == "system"]
    body = [m for m in messages if m.role != "system"]
    starts = [0, *(i for i, m in enumerate(body) if m.role == "user" and i > 0)]
    lo, hi = 1, len(starts) - 1
    best = len(starts) - 1
    while lo <= hi:
        mid = (lo + hi) // 2
        if count_tokens([*system_, *body[starts[mid] :]]) <= budget:
            best, hi = mid, mid - 1
        else:
            lo = mid + 1
    return [*system_, *body[starts[best] :]], starts[best]


def script(turns: int, seed: int = 7) -> list[tuple[str, str]]:
    """(question, answer) pairs of 12-40 and 8-30 words: about 40-110 tokens a turn with the markers."""
    rng = random.Random(seed)

    def text(lo: int, hi: int) -> str:
        return " ".join(rng.choice(WORDS) for _ in range(rng.randint(lo, hi)))

    return [(f"Question {i + 1}: {text(12, 40)}?", f"Answer {i + 1}: {text(8, 30)}.") for i in range(turns)]


@dataclass
class Row:
    kept: int
    dropped: int
    prompt: int
    evaluated: int
    ttft_s: float


def run_turn(engine: LlamaCppEngine, messages: list[Message], dropped: int, tokens: int) -> Row:
    result = collect(engine.stream_chat(messages, GenerationParams(temperature=0, max_tokens=tokens)))
    usage = result.usage
    assert usage is not None and usage.ttft_s is not None, result.error
    return Row(len(messages), dropped, usage.prompt_tokens, usage.prompt_eval_tokens, usage.ttft_s)


def trims(rows: list[Row]) -> list[int]:
    """Turns whose prompt begins somewhere new: the first trim and every later change of the cut."""
    return [t for t in range(1, len(rows)) if rows[t].dropped and rows[t].dropped != rows[t - 1].dropped]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help=MODEL_HELP)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--ctx", type=int, default=1024)
    parser.add_argument("--turns", type=int, default=40)
    parser.add_argument("--tokens", type=int, default=4)
    args = parser.parse_args()
    model = resolve_model(args.model)
    reserve = answer_reserve(args.ctx, args.tokens)

    engines = {
        name: LlamaCppEngine(model, n_ctx=args.ctx, n_threads=args.threads, speculative=False)
        for name in ("old", "new")
    }
    for eng in engines.values():
        eng.load()
    rows: dict[str, list[Row]] = {"old": [], "new": []}
    history: list[Message] = [system("You are a patient assistant. Answer in one short paragraph.")]
    for question, answer in script(args.turns):
        history.append(user(question))
        for name, eng in engines.items():
            if name == "old":
                kept, dropped = fit_minimal(history, eng.count_tokens, args.ctx, reserve)
            else:
                fitted = fit_to_context(history, eng.count_tokens, args.ctx, reserve)
                kept, dropped = fitted.messages, fitted.dropped
            rows[name].append(run_turn(eng, kept, dropped, args.tokens))
        history.append(assistant(answer))
    for eng in engines.values():
        eng.close()

    slack = trim_slack(args.ctx, args.ctx - reserve)
    print(
        f"model {model.name}, {args.threads} threads, n_ctx {args.ctx}, reserve {reserve}, slack {slack}, "
        f"{args.turns} turns, {args.tokens} tokens an answer"
    )
    print()
    columns = ("kept", "prompt", "evaluated", "TTFT ms")
    print("| turn | " + " | ".join(f"{name} {c}" for name in ("old", "new") for c in columns) + " |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for t, (old, new) in enumerate(zip(rows["old"], rows["new"])):
        print(
            f"| {t + 1} | {old.kept} | {old.prompt} | {old.evaluated} | {old.ttft_s * 1000:.0f} "
            f"| {new.kept} | {new.prompt} | {new.evaluated} | {new.ttft_s * 1000:.0f} |"
        )
    print()
    # "Once full": from the first turn either policy trims, where the policies differ.
    first = min((t for name in rows for t in trims(rows[name])), default=len(rows["old"]))

    def summary(name: str) -> dict[str, float]:
        cuts = trims(rows[name])
        gaps = [b - a for a, b in itertools.pairwise(cuts)]
        full = rows[name][first:] or rows[name]
        return {
            "trims": len(cuts),
            "gap": statistics.mean(gaps) if gaps else float("nan"),
            "evaluated": statistics.mean(r.evaluated for r in rows[name]),
            "evaluated_full": statistics.mean(r.evaluated for r in full),
            "ttft": statistics.mean(r.ttft_s for r in rows[name]),
            "ttft_full": statistics.mean(r.ttft_s for r in full),
            "prompt_full": statistics.mean(r.prompt for r in full),
        }

    old, new = summary("old"), summary("new")
    print("| measure | old (minimal drop) | new (hysteresis) | new / old |")
    print("|---|---:|---:|---:|")
    span = f"turns {first + 1}-{args.turns}"
    measures = [
        ("trims (prompt beginning moved)", "trims", "{:.0f}", 1),
        ("mean turns from one trim to the next", "gap", "{:.1f}", 1),
        ("mean prompt tokens evaluated a turn, all turns", "evaluated", "{:.0f}", 1),
        (f"mean prompt tokens evaluated a turn, {span}", "evaluated_full", "{:.0f}", 1),
        ("mean TTFT ms, all turns", "ttft", "{:.0f}", 1000),
        (f"mean TTFT ms, {span}", "ttft_full", "{:.0f}", 1000),
        (f"mean prompt tokens (context kept), {span}", "prompt_full", "{:.0f}", 1),
    ]
    for label, key, fmt, scale in measures:
        ratio = new[key] / old[key] if old[key] else float("nan")
        print(f"| {label} | {fmt.format(old[key] * scale)} | {fmt.format(new[key] * scale)} | {ratio:.2f} |")


if __name__ == "__main__":
    main()
