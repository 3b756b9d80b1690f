"""``g3chat ask``: answer once, streaming to stdout."""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

from g3chat.cli.output import AnswerWriter, choose_writer
from g3chat.core.chat import Turn
from g3chat.core.errors import InputError
from g3chat.core.models.resolve import PullOffer, ResolvedModel
from g3chat.core.store import Conversation, Store
from g3chat.core.types import GenerationParams, Message, TextDelta, user
from g3chat.runtime import Runtime

TITLE_LENGTH = 60


@dataclass
class AskOptions:
    prompt: str | None = None
    model: str | None = None
    server: str | None = None
    system: str | None = None
    temperature: float | None = None
    top_k: int | None = None
    top_p: float | None = None
    min_p: float | None = None
    seed: int | None = None
    max_tokens: int | None = None
    ctx: int | None = None
    threads: int | None = None
    continue_last: bool = False
    chat_id: int | None = None
    save: bool = True
    json_output: bool = False
    plain: bool = False
    verbose: bool = False
    yes: bool = False


def read_prompt(prompt: str | None, stdin: Any = None) -> str:
    """The prompt from the argument and piped stdin (stdin is appended to a given prompt as context)."""
    stream = sys.stdin if stdin is None else stdin
    piped = ""
    if stream is not None and not stream.isatty():
        try:
            piped = stream.read()
        except UnicodeDecodeError:
            raise InputError("stdin is not valid UTF-8 text") from None
    if prompt is not None and piped.strip():
        return f"{prompt}\n\n{piped.rstrip()}"
    text = prompt if prompt is not None else piped
    if not text.strip():
        raise InputError("no prompt: pass one as an argument or pipe text on stdin")
    return text


def sampling(runtime: Runtime, opts: AskOptions) -> GenerationParams:
    params = runtime.settings.generation.params()
    overrides = {
        name: value
        for name, value in (
            ("temperature", opts.temperature),
            ("top_k", opts.top_k),
            ("top_p", opts.top_p),
            ("min_p", opts.min_p),
            ("seed", opts.seed),
            ("max_tokens", opts.max_tokens),
        )
        if value is not None
    }
    return replace(params, **overrides)


@contextmanager
def sigint_cancels(cancel: threading.Event) -> Iterator[None]:
    """First Ctrl+C stops generation cleanly (the partial answer is kept); a second one interrupts."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        if cancel.is_set():
            raise KeyboardInterrupt
        cancel.set()

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _conversation(store: Store | None, opts: AskOptions) -> Conversation | None:
    if opts.chat_id is not None and opts.continue_last:
        raise InputError("--chat and --continue cannot be used together")
    if store is None:
        return None
    if opts.chat_id is not None:
        return store.get_conversation(opts.chat_id)
    if opts.continue_last:
        latest = store.latest_conversation()
        if latest is None:
            sys.stderr.write("g3chat: no earlier conversation to continue; starting a new one\n")
        return latest
    return None


def _verifying(name: str) -> None:
    sys.stderr.write(f"g3chat: checking {name}'s sha256 before its first use…\n")
    sys.stderr.flush()


def _pull_offer(runtime: Runtime, yes: bool) -> Callable[[PullOffer], ResolvedModel]:
    def accept(offer: PullOffer) -> ResolvedModel:
        from g3chat.cli.pull import accept_offer

        return accept_offer(runtime, offer, yes=yes)

    return accept


def run_ask(opts: AskOptions) -> int:
    runtime = Runtime.from_env()
    prompt = read_prompt(opts.prompt)
    params = sampling(runtime, opts)
    needs_store = opts.save or opts.continue_last or opts.chat_id is not None
    store = runtime.open_store() if needs_store else None
    try:
        return _run(runtime, store, prompt, params, opts)
    finally:
        if store is not None:
            store.close()


def _run(
    runtime: Runtime, store: Store | None, prompt: str, params: GenerationParams, opts: AskOptions
) -> int:
    conversation = _conversation(store, opts)
    if runtime.server_url(opts.server) and (opts.ctx is not None or opts.threads is not None):
        raise InputError("--ctx and --threads set up the local engine; a server decides its own")
    engine, notice = runtime.engine_for(
        model=opts.model,
        server=opts.server,
        n_ctx=opts.ctx,
        threads=opts.threads,
        verbose=opts.verbose,
        on_offer=_pull_offer(runtime, opts.yes),
        verify_progress=_verifying,
    )
    if notice:
        sys.stderr.write(f"g3chat: {notice}\n")
    started = time.perf_counter()
    try:
        info = engine.load()
    except BaseException:
        engine.close()
        raise
    load_s = time.perf_counter() - started

    system_prompt = opts.system if opts.system is not None else runtime.settings.generation.system_prompt
    history: list[Message] = []
    conversation_id: int | None = None
    if conversation is not None:
        if opts.system is not None and opts.save and store is not None:
            store.update_conversation(conversation.id, system_prompt=opts.system)
        history = store.history(conversation.id) if store is not None else []
        if opts.system is not None:
            history = [m for m in history if m.role != "system"]
            history.insert(0, Message.text_message("system", opts.system))
    elif system_prompt.strip():
        history = [Message.text_message("system", system_prompt)]

    if opts.save and store is not None:
        if conversation is None:
            title = " ".join(prompt.split())[:TITLE_LENGTH]
            conversation = store.create_conversation(title, model=info.name, system_prompt=system_prompt)
        conversation_id = conversation.id
        store.add_message(conversation_id, "user", prompt)  # committed before generation starts
    elif conversation is not None:
        conversation_id = conversation.id  # read, not written (--no-save)
    messages = [*history, user(prompt)]

    cancel = threading.Event()
    turn = Turn(
        engine,
        messages,
        params,
        cancel=cancel,
        store=store if opts.save else None,
        conversation_id=conversation_id,
        model_name=info.name,
    )
    writer: AnswerWriter | None = (
        None
        if opts.json_output
        else choose_writer(plain=opts.plain, markdown_enabled=runtime.settings.ui.markdown)
    )
    try:
        with sigint_cancels(cancel):
            for event in turn:
                if writer is not None and isinstance(event, TextDelta):
                    writer.write(event.text)
    finally:
        if writer is not None:
            writer.finish()
        engine.close()

    result = turn.result
    if opts.json_output:
        usage = result.usage
        payload: dict[str, Any] = {
            "text": result.text,
            "model": info.name,
            "engine": info.engine,
            "conversation_id": conversation_id,
            "finish_reason": result.finish_reason,
            "usage": {
                "prompt_tokens": usage.prompt_tokens if usage else 0,
                "completion_tokens": usage.completion_tokens if usage else 0,
                "prompt_eval_tokens": usage.prompt_eval_tokens if usage else 0,
                **({"estimated": True} if usage and usage.estimated else {}),
            },
            "timings": {
                "load_s": round(load_s, 4),
                "ttft_s": round(usage.ttft_s, 4) if usage and usage.ttft_s is not None else None,
                "decode_tokens_per_s": round(usage.decode_tokens_per_s, 2)
                if usage and usage.decode_tokens_per_s
                else None,
            },
        }
        if info.base_url:
            payload["server"] = info.base_url
        if result.error:
            payload["error"] = result.error
        sys.stdout.write(json.dumps(payload, ensure_ascii=False) + "\n")
    if result.finish_reason == "cancelled":
        sys.stderr.write(
            "g3chat: interrupted; the partial answer was saved\n" if turn.saved else "g3chat: interrupted\n"
        )
        return 130
    if result.finish_reason == "error":
        kept = "; the partial answer was saved" if result.text and turn.saved else ""
        sys.stderr.write(f"g3chat: {result.error}{kept}\n")
        return 1
    return 0
