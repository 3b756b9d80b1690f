"""``g3chat serve`` and a chat client that re-sends the whole conversation every turn, as every client does.

Starts ``g3chat serve`` (the real command, on a free loopback port) and talks to it with the official
``openai`` client, streaming, as an editor would: a system prompt of a few hundred tokens, then three turns,
each re-sending the conversation so far with the server's earlier answers. Printed per turn: TTFT measured
by the client (request sent to first content chunk), prompt tokens and how many of them came from the KV
cache (``usage.prompt_tokens_details.cached_tokens``). The figures, from the same run:

- the third turn's TTFT against the first's (target: <= 1.0x: the third turn evaluates only its new
  message although its prompt is the longest);
- the third turn against the same conversation sent cold (its system prompt changed in its first word, so
  nothing of it is cached): what a server without prefix reuse would cost.

    python bench/serve_resend.py [--model PATH|e2b-q4|...] [--threads 2] [--ctx 4096] [--repeats 3]
"""

from __future__ import annotations

import argparse
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

from bench._models import MODEL_HELP, resolve_model  # noqa: E402

SYSTEM = (
    "You are a careful coding assistant inside a text editor. Answer briefly and precisely. When the user "
    "shows code, point at the exact line that matters and explain why in one sentence. Prefer standard "
    "library solutions, never invent APIs, and say so when you are not sure. Format code in fenced blocks "
    "with the language named. Keep answers under ten lines unless the user asks for more. "
) * 4
TURNS = (
    "How do I read a file line by line in Python?",
    "And how do I skip blank lines?",
    "Now count the lines that start with a hash.",
)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(model: Path, threads: int, n_ctx: int, home: str) -> tuple[subprocess.Popen[bytes], str]:
    import httpx2 as httpx

    port = free_port()
    env = {**os.environ, "G3CHAT_HOME": home, "G3CHAT_MODEL": str(model)}
    command = [sys.executable, "-m", "g3chat", "serve", "--port", str(port), "--threads", str(threads)]
    process = subprocess.Popen([*command, "--ctx", str(n_ctx)], env=env, cwd=ROOT, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if process.poll() is not None:
            said = process.stderr.read().decode() if process.stderr else ""
            raise SystemExit(f"g3chat serve exited: {said}")
        try:
            if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                return process, f"{base}/v1"
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    process.kill()
    raise SystemExit("g3chat serve did not load the model within 10 minutes")


def turn(client: Any, messages: list[dict[str, Any]], answer_tokens: int) -> tuple[float, str, Any]:
    model = client.models.list().data[0].id
    first: float | None = None
    started = time.perf_counter()
    text, usage = "", None
    stream = client.chat.completions.create(
        model=model, messages=messages, max_tokens=answer_tokens, temperature=0, stream=True,
        stream_options={"include_usage": True},
    )  # fmt: skip
    for chunk in stream:
        usage = chunk.usage or usage
        for choice in chunk.choices:
            if choice.delta.content:
                first = first if first is not None else time.perf_counter() - started
                text += choice.delta.content
    if first is None:
        raise SystemExit("an answer produced no text (no TTFT): try more tokens (-n)")
    return first, text, usage


def conversation(
    client: Any, system: str, answer_tokens: int
) -> tuple[list[tuple[float, Any]], list[dict[str, Any]]]:
    """Each turn's (TTFT, usage), and the messages of the last request."""
    messages: list[dict[str, Any]] = [{"role": "system", "content": system}]
    out = []
    for question in TURNS:
        messages.append({"role": "user", "content": question})
        sent = list(messages)
        ttft, text, usage = turn(client, messages, answer_tokens)
        messages.append({"role": "assistant", "content": text})
        out.append((ttft, usage))
    return out, sent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help=MODEL_HELP)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--ctx", type=int, default=4096)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("-n", "--answer-tokens", type=int, default=8)
    args = parser.parse_args()
    from openai import OpenAI

    model = resolve_model(args.model)
    firsts, thirds, colds = [], [], []
    with tempfile.TemporaryDirectory() as home:
        process, url = start(model, args.threads, args.ctx, home)
        try:
            client = OpenAI(base_url=url, api_key="none", max_retries=0, timeout=1200)
            # one short answer first: the weights paged in and the kernels warm, so no turn pays for that
            client.chat.completions.create(
                model=client.models.list().data[0].id,
                messages=[{"role": "user", "content": "hi"}],
                max_tokens=1,
            )
            for repeat in range(args.repeats):
                # a new system prompt per repeat: the first turn is a first turn (nothing saved matches)
                turns, last = conversation(client, f"Session {repeat}. {SYSTEM}", args.answer_tokens)
                for i, (ttft, usage) in enumerate(turns, 1):
                    cached = usage.prompt_tokens_details.cached_tokens if usage.prompt_tokens_details else 0
                    prompt = usage.prompt_tokens
                    print(
                        f"repeat {repeat + 1} turn {i}: TTFT {ttft * 1000:7.0f} ms, prompt {prompt} tokens,"
                        f" {cached} from the cache, {prompt - cached} evaluated"
                    )
                print(f"  answers: {[a['content'] for a in last if a['role'] == 'assistant']!r}")
                firsts.append(turns[0][0])
                thirds.append(turns[2][0])
                # the third request again, its system prompt changed in the first word: nothing cached
                cold = [{"role": "system", "content": f"Cold {repeat}. {SYSTEM}"}, *last[1:]]
                colds.append(turn(client, cold, args.answer_tokens)[0])
        finally:
            process.terminate()
            process.wait(60)
    first, third, cold = (statistics.median(v) for v in (firsts, thirds, colds))
    print(f"\nmodel {model.name}, {args.threads} threads, median of {args.repeats}")
    print(f"first turn TTFT   {first * 1000:7.0f} ms")
    print(f"third turn TTFT   {third * 1000:7.0f} ms  ({third / first:.2f}x the first; target <= 1.0x)")
    print(f"third turn, cold  {cold * 1000:7.0f} ms  (re-sent turns: {third / cold:.2f}x of this)")


if __name__ == "__main__":
    main()
