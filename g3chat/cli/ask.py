"""``g3chat ask``: answer once, streaming to stdout."""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from g3chat.cli.ask_compose import chosen_role, compose, sampling, switched_params, with_role
from g3chat.cli.ask_options import AskOptions
from g3chat.cli.output import AnswerWriter, choose_writer
from g3chat.core.answer import Answer, HistoryTrimmed
from g3chat.core.chat import post_question
from g3chat.core.errors import G3ChatError, InputError, ModelFileError
from g3chat.core.models.resolve import PullOffer, ResolvedModel
from g3chat.core.roles import ROLE_KEY, LoadedRole, conversation_params
from g3chat.core.store import Conversation, Store
from g3chat.core.types import AttachmentPart, GenerationParams, Message, PromptProgress, TextDelta, user
from g3chat.runtime import Runtime

LONG_CLIP_S = 30.0  # Gemma 3n's audio window: longer clips are heard in several windows


def read_prompt(prompt: str | None, stdin: Any = None, *, allow_empty: bool = False) -> str:
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
    if not text.strip() and not allow_empty:
        raise InputError("no prompt: pass one as an argument or pipe text on stdin")
    return text


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
    role = chosen_role(opts, runtime.paths)
    role_tools = role is not None and role.role.tools is True
    if opts.tools is None and not role_tools and (opts.allow or opts.tool_choice != "auto" or opts.max_steps):
        raise InputError("--allow, --tool-choice and --max-steps need --tools")
    prompt = compose(opts, read_prompt(opts.prompt, allow_empty=opts.has_attachments or opts.editor))
    if opts.mmproj and not Path(opts.mmproj).expanduser().exists():
        raise ModelFileError(f"{opts.mmproj}: no such projector file")  # before recording, not after
    attachments = _attachments(runtime, opts) + _mentioned(runtime, opts, prompt)
    needs_store = opts.save or opts.continue_last or opts.chat_id is not None
    store = runtime.open_store() if needs_store else None
    try:
        return _run(runtime, store, prompt, opts, attachments, role)
    finally:
        if store is not None:
            store.close()


def _attachments(runtime: Runtime, opts: AskOptions) -> list[AttachmentPart]:
    if not opts.has_attachments:
        return []
    from g3chat.cli.attachments import check_microphone, collect_files

    # a local model may read each audio file as it is decoded: the files are decoded once it is loaded
    local = runtime.server_url(opts.server) is None
    parts = collect_files(runtime.media_store(), opts.images, opts.audio, opts.videos, defer_audio=local)
    if opts.mic:
        check_microphone()  # recorded once the model is loaded: it listens while the user speaks
    return parts


def _mentioned(runtime: Runtime, opts: AskOptions, prompt: str) -> list[AttachmentPart]:
    """Files named by ``@path`` in the prompt argument (piped stdin is content: its ``@`` stays text),
    or in the whole prompt when it all came from stdin."""
    text = opts.prompt if opts.prompt is not None else prompt
    if "@" not in text:
        return []
    from g3chat.cli.attachments import collect_mentions

    tools = runtime.settings.tools
    return collect_mentions(runtime.media_store(), text, tools.roots, tools.at_file_chars)


def _record(
    runtime: Runtime,
    engine: Any,
    history: list[Message],
    prompt: str,
    opts: AskOptions,
    files: list[AttachmentPart],
) -> AttachmentPart:
    from g3chat.cli.attachments import record_heard

    stop = threading.Event()
    with sigint_cancels(stop):
        return record_heard(runtime.media_store(), opts.seconds, stop, engine, history, prompt, files)


def _hear_files(
    runtime: Runtime,
    engine: Any,
    history: list[Message],
    prompt: str,
    opts: AskOptions,
    files: list[AttachmentPart],
) -> list[AttachmentPart]:
    from g3chat.cli.attachments import hear_files
    from g3chat.core.engine.listening import live_part

    later = [live_part()] if opts.mic else []  # the recording comes after the files
    return hear_files(runtime.media_store(), engine, history, prompt, files, later)


def _run(
    runtime: Runtime,
    store: Store | None,
    prompt: str,
    opts: AskOptions,
    attachments: list[AttachmentPart],
    role: LoadedRole | None,
) -> int:
    conversation = _conversation(store, opts)
    own = conversation.params if conversation is not None else {}
    params = sampling(runtime.settings.generation.params(), opts, own, role)
    opts = with_role(opts, role, own)
    if conversation is not None and role is not None and opts.save and store is not None:
        conversation = store.update_conversation(conversation.id, params=switched_params(own, role))
    toolset = None
    if opts.tools is not None:
        from g3chat.cli.ask_tools import open_tools

        toolset = open_tools(runtime, opts)
    try:
        return _answer(runtime, store, conversation, toolset, prompt, params, opts, attachments, role)
    finally:
        if toolset is not None:
            toolset.close()


def _answer(
    runtime: Runtime,
    store: Store | None,
    conversation: Conversation | None,
    toolset: Any,
    prompt: str,
    params: GenerationParams,
    opts: AskOptions,
    attachments: list[AttachmentPart],
    role: LoadedRole | None,
) -> int:
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
        mmproj=opts.mmproj,
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

    from g3chat.core.engine.listening import is_live

    deferred = [p for p in attachments if is_live(p)]  # --audio files, for collect_files' stand-ins
    if opts.mic or deferred:
        try:
            before = history
            if toolset is not None:  # the answer's prompt has the tools' description: listen after it
                from g3chat.core.tools.loop import prompt_with_tools

                tools = toolset.registry.select(opts.tools or "")
                before = prompt_with_tools(history, tools, opts.tool_choice)
            if deferred:
                attachments = _hear_files(runtime, engine, before, prompt, opts, attachments)
            if opts.mic:
                attachments = [*attachments, _record(runtime, engine, before, prompt, opts, attachments)]
        except BaseException:
            engine.close()
            raise
    question = user(prompt, attachments)
    if opts.save and store is not None:
        saved = post_question(  # committed before generation starts
            store,
            conversation.id if conversation is not None else None,
            question,
            model=info.name,
            system_prompt=system_prompt,
            params=conversation_params(role) if role is not None else None,
        )
        conversation_id = saved.conversation_id
    elif conversation is not None:
        conversation_id = conversation.id  # read, not written (--no-save)
    messages = [*history, question]
    if attachments:
        _check_attachments(engine, info.name, history, question, opts, conversation_id)

    cancel = threading.Event()
    writer: AnswerWriter | None = (
        None
        if opts.json_output
        else choose_writer(plain=opts.plain, markdown_enabled=runtime.settings.ui.markdown)
    )
    plan = trace = None
    if toolset is not None:
        from g3chat.cli.ask_tools import ToolTrace, tool_plan

        plan, trace = tool_plan(runtime, toolset, opts), ToolTrace(runtime, opts)
    answer = Answer(
        engine,
        messages,
        params,
        cancel=cancel,
        store=store if opts.save else None,
        conversation_id=conversation_id,
        model_name=info.name,
        tools=plan,
    )
    preparing = _PreambleNotice(what="tools" if toolset is not None else "the system prompt")
    try:
        with sigint_cancels(cancel):
            for event in answer:
                if isinstance(event, TextDelta):
                    preparing.done()
                    if writer is not None:
                        writer.write(event.text)
                elif isinstance(event, PromptProgress):
                    preparing.show(event)
                elif isinstance(event, HistoryTrimmed):
                    _say_trimmed(event)
                elif trace is not None:
                    writer = trace.show(event, writer)
    finally:
        preparing.done()
        if writer is not None:
            writer.finish()
        engine.close()

    result = answer.result
    assert result is not None  # the stream ran (a refusal before it raised)
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
        if attachments:
            payload["attachments"] = [part.to_json() for part in attachments]
        if info.base_url:
            payload["server"] = info.base_url
        role_name = (
            role.name if role is not None else (conversation.params if conversation else {}).get(ROLE_KEY)
        )
        if role_name:
            payload["role"] = role_name
        if toolset is not None:
            payload["steps"] = answer.steps
            payload["tool_calls"] = [entry.to_json() for entry in answer.trace]
        if result.error:
            payload["error"] = result.error
        sys.stdout.write(json.dumps(payload, ensure_ascii=False) + "\n")
    if result.finish_reason == "cancelled":
        sys.stderr.write(
            "g3chat: interrupted; the partial answer was saved\n" if answer.kept else "g3chat: interrupted\n"
        )
        return 130
    if result.finish_reason == "error":
        kept = "; the partial answer was saved" if result.text and answer.kept else ""
        sys.stderr.write(f"g3chat: {result.error}{kept}\n")
        return 1
    return 0


def _say_trimmed(event: HistoryTrimmed) -> None:
    """The chat UI's trimming, said on stderr: the history is unchanged, only the prompt is shorter."""
    sys.stderr.write(
        f"g3chat: note: the conversation is longer than the {event.n_ctx}-token context window; "
        f"its first {event.dropped} messages were left out of the prompt (they stay in the history)\n"
    )


class _PreambleNotice:
    """On a terminal, says that the system prompt or tools are being prepared (once per model and
    settings: they are saved and restored afterwards), with progress, on one stderr line."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.shown = False
        self.live = sys.stderr.isatty()

    def show(self, event: PromptProgress) -> None:
        if not self.live:
            return
        if event.stage != "preamble":
            self.done()
            return
        percent = 100 * event.done // max(1, event.total)
        sys.stderr.write(f"\rg3chat: preparing {self.what} (once for this model)… {percent}%")
        sys.stderr.flush()
        self.shown = True

    def done(self) -> None:
        if self.shown:
            sys.stderr.write("\r\x1b[2K")
            sys.stderr.flush()
            self.shown = False


def _check_attachments(
    engine: Any,
    model: str,
    history: list[Message],
    question: Message,
    opts: AskOptions,
    conversation_id: int | None,
) -> None:
    """Say what the video frames cost; refuse (the message stays saved) what the model cannot take."""
    from g3chat.core.media import support

    frames = [p for p in question.attachments if p.source is not None]
    try:
        support.check_sendable(engine, question)
    except G3ChatError as exc:
        engine.close()
        if opts.json_output:
            payload = {
                "text": "",
                "model": model,
                "conversation_id": conversation_id,
                "finish_reason": None,
                "attachments": [p.to_json() for p in question.attachments],
                "error": str(exc),
            }
            sys.stdout.write(json.dumps(payload, ensure_ascii=False) + "\n")
        raise
    if frames:
        cost = support.token_cost(engine, history, question)
        sources = ", ".join(dict.fromkeys(p.source or "" for p in frames))
        sys.stderr.write(f"g3chat: {sources}: {len(frames)} frames, {cost:,} prompt tokens\n")
    long_clips = [p for p in question.attachments if p.kind == "audio" and (p.duration_s or 0) > LONG_CLIP_S]
    if long_clips:
        cost = support.token_cost(engine, history, question)
        names = ", ".join(p.name for p in long_clips)
        sys.stderr.write(
            f"g3chat: {names}: longer than 30 s, heard in windows of 30 s, {cost:,} prompt tokens\n"
        )
