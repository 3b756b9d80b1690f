"""What saving the answer while it streams costs the decode speed, against no saving, in one run.

A chat turn (g3chat.core.chat.Turn) on one loaded engine, greedy, the same prompt each time, in three arms run
interleaved: no history database (the baseline), the default checkpoints (the first token inserts the
answer, then at most every 32 tokens or second), and a checkpoint after every token (the worst case). The
decode speed is measured by the consumer, from the first token to the last, so the checkpoints' time counts.
Then the cost of one checkpoint (an UPDATE in WAL mode, re-indexing the text for search) by answer length.

    python bench/checkpoint.py [--model PATH|e2b-q4|...] [--threads 2] [--tokens 128] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.append(str(Path(__file__).resolve().parent))

from _models import MODEL_HELP, resolve_model

from g3chat.core.chat import Turn
from g3chat.core.checkpoint import EVERY_SECONDS, EVERY_TOKENS
from g3chat.core.engine.llama import LlamaCppEngine
from g3chat.core.store import Store
from g3chat.core.types import GenerationParams, Message, TextDelta

PROMPT = "Write a long story about the sea."
ARMS = {"no saving": None, "default checkpoints": (EVERY_TOKENS, EVERY_SECONDS), "every token": (1, 0.0)}


def one_turn(engine: LlamaCppEngine, store: Store | None, every: tuple[int, float] | None, n: int) -> float:
    """Decode tokens per second as the consumer sees them (first token to last)."""
    conversation_id = None
    if store is not None:
        conversation_id = store.create_conversation("bench").id
        store.add_message(conversation_id, "user", PROMPT)
    turn = Turn(
        engine,
        [Message.text_message("user", PROMPT)],
        GenerationParams(temperature=0.0, max_tokens=n),
        store=store,
        conversation_id=conversation_id,
        checkpoint_every=every or (EVERY_TOKENS, EVERY_SECONDS),
    )
    first = last = 0.0
    tokens = 0
    for event in turn:
        if isinstance(event, TextDelta):
            last = time.perf_counter()
            first = first or last
            tokens += 1
    return (tokens - 1) / (last - first) if tokens > 1 and last > first else 0.0


def update_cost(folder: Path, sizes: tuple[int, ...] = (1_000, 8_000, 32_000), repeats: int = 200) -> None:
    with Store(folder / "updates.db") as store:
        c = store.create_conversation("bench")
        message = store.add_message(c.id, "assistant", "", status="partial")
        print("\none checkpoint (UPDATE + search re-index, WAL, synchronous=NORMAL):")
        for size in sizes:
            text = ("the sea " * (size // 8 + 1))[:size]
            started = time.perf_counter()
            for i in range(repeats):
                store.checkpoint_message(message.id, text, i)
            each = (time.perf_counter() - started) / repeats
            print(f"  {size:>6,} characters: {each * 1e6:7.0f} µs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help=MODEL_HELP)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tokens", type=int, default=128, help="tokens per answer")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    path = resolve_model(args.model)
    engine = LlamaCppEngine(path, n_ctx=2048, n_threads=args.threads)
    engine.load()
    print(f"{path.name}, {args.threads} threads, {args.tokens} tokens per answer, {args.repeats} rounds")
    speeds: dict[str, list[float]] = {arm: [] for arm in ARMS}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        with Store(folder / "history.db") as store:
            one_turn(engine, None, None, 8)  # warm-up
            for _ in range(args.repeats):
                for arm, every in ARMS.items():
                    speeds[arm].append(one_turn(engine, store if every else None, every, args.tokens))
        base = statistics.median(speeds["no saving"])
        print(f"{'arm':<22}{'decode tok/s (median)':>24}{'vs no saving':>15}   all runs")
        for arm, runs in speeds.items():
            median = statistics.median(runs)
            shown = " ".join(f"{r:.1f}" for r in runs)
            print(f"{arm:<22}{median:>24.2f}{median / base:>14.3f}x   {shown}")
        update_cost(folder)
    engine.close()


if __name__ == "__main__":
    main()
