"""The chat UI's responsiveness and speed, each against a baseline measured in the same run.

1. First paint: wall time from starting the process in a real terminal (tmux) until the UI is on screen,
   for `g3chat` and for a bare one-widget Textual app.
2. Event-loop lag while a FakeEngine streams about 200 tokens/s of Markdown into a long conversation
   (the app runs headless in this process; an asyncio task measures how late 10 ms sleeps wake), against
   the same app idle.
3. Decode tokens/s through the TUI (`g3chat` under tmux with the real engine; the rate it records for each
   answer) against raw llama-cpp-python's `Llama.generate` and g3chat's engine without a UI: same GGUF,
   threads, context, prompt tokens, sampler and seed, interleaved, median of the repeats.

    python bench/tui.py [--model PATH] [--threads 2] [--tokens 200] [--repeats 3] [--skip-decode]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from _models import MODEL_HELP, resolve_model

REPO = Path(__file__).resolve().parent.parent
SEED = 42
PROMPT = "Write a long story about a lighthouse keeper who finds a message in a bottle."
BARE_APP = """
from textual.app import App
from textual.widgets import Static
class Bare(App):
    def compose(self):
        yield Static("BARE-APP-READY")
Bare().run()
"""


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


# ------------------------------------------------------------------------------------------ tmux


class Terminal:
    """A tmux session on a private socket: a real terminal for one process."""

    def __init__(self, command: str, size: tuple[int, int] = (120, 40)) -> None:
        self.socket = f"g3bench-{uuid.uuid4().hex[:8]}"
        self.started = time.perf_counter()
        self.tmux("new-session", "-d", "-s", "b", "-x", str(size[0]), "-y", str(size[1]), command)

    def tmux(self, *args: str) -> str:
        return subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True).stdout

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "b")

    def wait_for(self, check: Callable[[str], bool], timeout: float, poll: float = 0.005) -> float:
        """Seconds since the session started until ``check(screen)`` held."""
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            if check(self.screen()):
                return time.perf_counter() - self.started
            time.sleep(poll)
        raise TimeoutError(f"the screen never matched; it shows:\n{self.screen()}")

    def keys(self, *keys: str, literal: bool = False) -> None:
        self.tmux("send-keys", "-t", "b", *(["-l"] if literal else []), *keys)

    def close(self) -> None:
        self.tmux("kill-server")


def env_line(env: dict[str, str]) -> str:
    return "env " + " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())


def first_paint(model: Path, repeats: int) -> dict[str, float]:
    bare = Path(tempfile.mkdtemp()) / "bare.py"
    bare.write_text(BARE_APP)
    samples: dict[str, list[float]] = {"bare": [], "g3chat": []}
    for _ in range(repeats):
        for name in ("bare", "g3chat"):
            home = tempfile.mkdtemp()
            env = {"G3CHAT_HOME": home, "G3CHAT_MODEL": str(model), "PYTHONPATH": str(REPO)}
            if name == "bare":
                command, marker = f"{sys.executable} {bare}", "BARE-APP-READY"
            else:
                command, marker = f"{env_line(env)} {sys.executable} -m g3chat", "Enter sends"
            term = Terminal(f"cd {shlex.quote(str(REPO))} && {command}")
            try:
                samples[name].append(term.wait_for(lambda s, m=marker: m in s, 30))
            finally:
                term.close()
    return {k: statistics.median(v) for k, v in samples.items()}


# --------------------------------------------------------------------------------------- lag


def long_history(store: object, turns: int) -> int:
    c = store.create_conversation("A long conversation")  # type: ignore[attr-defined]
    for i in range(turns):
        store.add_message(c.id, "user", f"Question {i}: how do I do thing number {i} in Python?")  # type: ignore[attr-defined]
        store.add_message(  # type: ignore[attr-defined]
            c.id,
            "assistant",
            f"## Answer {i}\n\nHere is **one way**, with a list:\n\n- first step\n- second step\n\n"
            f"```python\ndef thing_{i}(x):\n    return x * {i}\n```\n\nAnd a closing paragraph that runs on "
            "for a while so that it wraps over several lines of the terminal window.",
        )
    return int(c.id)


def streamed_answer(tokens: int) -> list[str]:
    pieces = []
    for i in range(tokens):
        if i % 60 == 20:
            pieces.append("\n\n```python\n")
        elif i % 60 == 35:
            pieces.append("\n```\n\n")
        elif i % 25 == 24:
            pieces.append("\n\n")
        else:
            pieces.append(f" word{i}")
    return pieces


async def loop_lag(turns: int, tokens: int, rate: float) -> dict[str, float]:
    from g3chat.core.engine.fake import FakeEngine
    from g3chat.runtime import Runtime

    runtime = Runtime.from_env({"G3CHAT_HOME": tempfile.mkdtemp()})
    store = runtime.open_store()
    conversation_id = long_history(store, turns)
    engine = FakeEngine(delay=1.0 / rate).enqueue(streamed_answer(tokens))
    app = runtime.chat_app(store, engine=engine, conversation_id=conversation_id)
    result: dict[str, float] = {}

    async def sample_lag(duration: float | None, done: Callable[[], bool]) -> list[float]:
        lags = []
        start = time.perf_counter()
        while not done() and (duration is None or time.perf_counter() - start < duration):
            t = time.perf_counter()
            await asyncio.sleep(0.01)
            lags.append(time.perf_counter() - t - 0.01)
        return lags

    opened = time.perf_counter()
    async with app.run_test(size=(120, 40)) as pilot:
        while app.model_state != "ready" or not app.chat_screen.chat.messages():
            await pilot.pause(0.01)
        result["open_s"] = time.perf_counter() - opened
        await pilot.pause(0.5)
        idle = await sample_lag(3.0, lambda: False)
        app.chat_screen.prompt.text = "Tell me more."
        app.chat_screen.prompt.focus()
        started = time.perf_counter()
        await pilot.press("enter")
        busy = await sample_lag(None, lambda: app.job is None and time.perf_counter() - started > 0.5)
        streamed_s = time.perf_counter() - started
    app.shutdown()
    store.close()
    result.update(
        idle_p50=percentile(idle, 0.5),
        idle_p95=percentile(idle, 0.95),
        busy_p50=percentile(busy, 0.5),
        busy_p95=percentile(busy, 0.95),
        busy_max=max(busy),
        rate=tokens / streamed_s,
        messages=2 * turns,
    )
    return result


# ------------------------------------------------------------------------------------ decode


def decode(
    model: Path, threads: int, n_ctx: int, tokens: int, repeats: int
) -> dict[str, list[tuple[float, int]]]:
    import llama_cpp

    from g3chat.core.engine.llama import LlamaCppEngine
    from g3chat.core.engine.native_log import native_log
    from g3chat.core.store import Store
    from g3chat.core.types import GenerationParams, Usage, user

    engine = LlamaCppEngine(model, n_ctx=n_ctx, n_threads=threads)
    engine.load()
    prompt_tokens = engine.tokenize_prompt([user(PROMPT)])
    native_log.install(verbose=False)
    raw = llama_cpp.Llama(
        str(model),
        n_ctx=n_ctx,
        n_batch=512,
        n_ubatch=512,
        n_threads=threads,
        n_threads_batch=threads,
        flash_attn=True,  # g3chat's default, so the comparison is of the loop, not the kernels
        swa_full=True,
        verbose=False,
    )
    opener = set(raw.tokenize(b"<start_of_turn>", add_bos=False, special=True))
    vocab = raw._model.vocab

    def raw_once() -> tuple[float, int]:
        raw.reset()
        raw.set_seed(SEED)
        times = []
        for token in raw.generate(
            prompt_tokens, top_k=64, top_p=0.95, min_p=0.0, temp=1.0, repeat_penalty=1.0
        ):
            if token in opener or llama_cpp.llama_vocab_is_eog(vocab, token):
                break
            times.append(time.perf_counter())
            raw.detokenize([token])  # what any streaming consumer does with each token
            if len(times) >= tokens:
                break
        return (len(times) - 1) / (times[-1] - times[0]), len(times)

    def engine_once() -> tuple[float, int]:
        engine.llama.reset()
        usage = None
        for event in engine.stream_chat([user(PROMPT)], GenerationParams(max_tokens=tokens, seed=SEED)):
            if isinstance(event, Usage):
                usage = event
        assert usage is not None and usage.decode_tokens_per_s
        return usage.decode_tokens_per_s, usage.completion_tokens

    home = tempfile.mkdtemp()
    env = {
        "G3CHAT_HOME": home,
        "G3CHAT_MODEL": str(model),
        "G3CHAT_ENGINE__THREADS": str(threads),
        "G3CHAT_ENGINE__N_CTX": str(n_ctx),
        "G3CHAT_GENERATION__MAX_TOKENS": str(tokens),
        "G3CHAT_GENERATION__SEED": str(SEED),
        "G3CHAT_UI__TOOLS": "false",  # the baselines' prompt: no tools' description, no call grammar
        "PYTHONPATH": str(REPO),
        "TERM": "xterm-256color",
    }
    term = Terminal(f"cd {shlex.quote(str(REPO))} && {env_line(env)} {sys.executable} -m g3chat")
    db = Path(home) / "data" / "history.db"

    def tui_once() -> tuple[float, int]:
        with Store(db) as store:
            before = len(store.list_conversations())
        term.keys("C-n")
        term.keys(PROMPT, literal=True)
        term.keys("Enter")
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            with Store(db) as store:
                chats = store.list_conversations()
                if len(chats) > before:
                    path = store.messages(chats[0].id)
                    if len(path) == 2:
                        answer = path[1]
                        return answer.meta["timings"]["decode_tokens_per_s"], answer.completion_tokens or 0
            time.sleep(0.2)
        raise TimeoutError(term.screen())

    results: dict[str, list[tuple[float, int]]] = {"raw": [], "engine": [], "tui": []}
    try:
        term.wait_for(lambda s: "ready" in s.splitlines()[0] if s.strip() else False, 300, poll=0.2)
        for _ in range(repeats):  # interleaved, so a busy machine slows every path alike
            results["raw"].append(raw_once())
            results["engine"].append(engine_once())
            results["tui"].append(tui_once())
    finally:
        term.keys("C-q")
        time.sleep(1)
        term.close()
        raw.close()
        engine.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help=MODEL_HELP)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--ctx", type=int, default=4096)
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--turns", type=int, default=100, help="turns of history for the lag test")
    parser.add_argument("--stream-tokens", type=int, default=1000, help="tokens the FakeEngine streams")
    parser.add_argument("--skip-decode", action="store_true")
    parser.add_argument("--skip-ui", action="store_true", help="only the decode comparison")
    args = parser.parse_args()
    os.environ.setdefault("PYTHONPATH", str(REPO))
    model = resolve_model(args.model)

    print(f"model {model.name}, {args.threads} threads, n_ctx {args.ctx}; median of {args.repeats} repeats")
    print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print()
    if not args.skip_ui:
        ui_table(model, args)
    if not args.skip_decode:
        decode_table(model, args)


def ui_table(model: Path, args: argparse.Namespace) -> None:
    paint = first_paint(model, args.repeats)
    lag = asyncio.run(loop_lag(args.turns, tokens=args.stream_tokens, rate=200.0))
    ms = {k: v * 1000 for k, v in lag.items()}
    print("| measure | value | baseline (same run) | target |")
    print("|---|---:|---:|---:|")
    print(
        f"| first paint under tmux, `g3chat` | {paint['g3chat'] * 1000:.0f} ms | "
        f"bare Textual app {paint['bare'] * 1000:.0f} ms | <= 500 ms |"
    )
    print(f"| open a {lag['messages']:.0f}-message conversation (headless) | {ms['open_s']:.0f} ms | | |")
    print(
        f"| event-loop lag p95 while streaming {lag['rate']:.0f} tokens/s into it | {ms['busy_p95']:.1f} ms "
        f"(p50 {ms['busy_p50']:.1f}, max {ms['busy_max']:.0f}) | "
        f"idle p95 {ms['idle_p95']:.1f} ms | <= 50 ms |"
    )
    print()


def decode_table(model: Path, args: argparse.Namespace) -> None:
    runs = decode(model, args.threads, args.ctx, args.tokens, args.repeats)
    med = {k: statistics.median(r[0] for r in v) for k, v in runs.items()}
    counts = {k: sorted({r[1] for r in v}) for k, v in runs.items()}
    print(f"| decode path ({args.tokens} tokens max, seed {SEED}) | tok/s | tokens | vs raw |")
    print("|---|---:|---:|---:|")
    names = {
        "raw": "raw llama-cpp-python `Llama.generate`",
        "engine": "g3chat engine, no UI",
        "tui": "`g3chat` chat UI under tmux",
    }
    for key in ("raw", "engine", "tui"):
        print(f"| {names[key]} | {med[key]:.1f} | {counts[key]} | {med[key] / med['raw']:.2f}x |")
    print()
    print(f"TUI decode / raw decode: {med['tui'] / med['raw']:.2f} (target >= 0.97)")


if __name__ == "__main__":
    main()
