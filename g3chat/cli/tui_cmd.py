"""``g3chat`` with no command: open the chat UI."""

from __future__ import annotations

import sys
from dataclasses import dataclass

from g3chat.core.errors import InputError
from g3chat.runtime import Runtime


@dataclass
class TuiOptions:
    model: str | None = None
    server: str | None = None
    ctx: int | None = None
    threads: int | None = None
    chat_id: int | None = None
    continue_last: bool = False
    verbose: bool = False


def run_tui(opts: TuiOptions) -> int:
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise InputError("the chat UI needs a terminal; for scripts and pipes use `g3chat ask`")
    if opts.chat_id is not None and opts.continue_last:
        raise InputError("--chat and --continue cannot be used together")
    runtime = Runtime.from_env()
    store = runtime.open_store()
    try:
        conversation_id = opts.chat_id
        if conversation_id is not None:
            store.get_conversation(conversation_id)  # an unknown id is a one-line error, before the UI opens
        elif opts.continue_last:
            latest = store.latest_conversation()
            conversation_id = latest.id if latest else None
        factory = runtime.engine_factory(
            model=opts.model, server=opts.server, n_ctx=opts.ctx, threads=opts.threads, verbose=opts.verbose
        )
        app = runtime.chat_app(store, engine_factory=factory, conversation_id=conversation_id)
        try:
            app.run()
        finally:
            app.shutdown()
        return app.return_code or 0
    finally:
        store.close()
