"""``g3chat chats``: list, show, export, import and delete saved conversations."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from g3chat.core import export
from g3chat.core.errors import InputError
from g3chat.runtime import Runtime


def _is_terminal() -> bool:
    return sys.stdout.isatty() and os.environ.get("TERM") != "dumb"


def list_chats(limit: int, json_output: bool) -> None:
    with Runtime.from_env().open_store() as store:
        conversations = store.list_conversations(limit=limit)
    if json_output:
        for c in conversations:
            row = {
                "id": c.id,
                "title": c.title,
                "messages": c.message_count,
                "updated_at": c.updated_at,
                "model": c.model,
            }
            sys.stdout.write(json.dumps(row, ensure_ascii=False) + "\n")
        return
    if not conversations:
        sys.stdout.write('no conversations yet (start one with: g3chat ask "hello")\n')
        return
    if _is_terminal():
        from rich.console import Console
        from rich.table import Table

        table = Table(box=None, header_style="bold")
        for column in ("id", "title", "messages", "updated", "model"):
            table.add_column(column, justify="right" if column in ("id", "messages") else "left")
        for c in conversations:
            table.add_row(
                str(c.id),
                c.title or "(untitled)",
                str(c.message_count),
                c.updated_at[:16].replace("T", " "),
                c.model or "",
            )
        Console().print(table)
        return
    for c in conversations:
        sys.stdout.write(f"{c.id}\t{c.message_count}\t{c.updated_at}\t{c.title}\n")


def show_chat(chat_id: int, plain: bool) -> None:
    with Runtime.from_env().open_store() as store:
        conversation = store.get_conversation(chat_id)
        text = export.to_markdown(conversation, store.messages(chat_id))
    if plain or not _is_terminal():
        sys.stdout.write(text)
        return
    from rich.console import Console
    from rich.markdown import Markdown

    Console().print(Markdown(text))


def export_chat(chat_id: int, fmt: str, output: Path | None) -> None:
    with Runtime.from_env().open_store() as store:
        conversation = store.get_conversation(chat_id)
        messages = store.messages(chat_id)
    text = (
        export.to_markdown(conversation, messages)
        if fmt == "md"
        else export.to_json_text(conversation, messages)
    )
    if output is None:
        sys.stdout.write(text)
        return
    if output.is_dir():
        raise InputError(f"{output}: is a directory")
    tmp = output.with_name(output.name + ".tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, output)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise InputError(f"{output}: cannot write: {exc.strerror or exc}") from None
    sys.stderr.write(f"exported conversation {chat_id} to {output}\n")


def remove_chats(chat_ids: list[int], yes: bool) -> None:
    with Runtime.from_env().open_store() as store:
        conversations = [store.get_conversation(i) for i in chat_ids]  # all exist, or nothing is deleted
        if not yes and sys.stdin.isatty() and sys.stdout.isatty():
            names = ", ".join(f"{c.id} ({c.title or 'untitled'})" for c in conversations)
            answer = input(f"delete {names}? [y/N] ").strip().lower()
            if answer not in ("y", "yes"):
                sys.stderr.write("nothing deleted\n")
                return
        for c in conversations:
            store.delete_conversation(c.id)
            sys.stderr.write(f"deleted conversation {c.id} ({c.title or 'untitled'})\n")


def import_chats(path: Path, json_output: bool) -> None:
    from g3chat.core.importers import read_file, write

    source = read_file(path)  # a file that is not history fails here, before the history is opened
    with Runtime.from_env().open_store() as store:
        report = write(store, source)
    if json_output:
        sys.stdout.write(json.dumps({"file": str(path), **report.to_json()}, ensure_ascii=False) + "\n")
        return
    for c in report.imported:
        branches = f", {c.branches} branches" if c.branches > 1 else ""
        sys.stdout.write(
            f"imported {c.conversation_id}: {c.title or '(untitled)'} ({c.messages} messages{branches})\n"
        )
    already = f"; {len(report.skipped)} imported before" if report.skipped else ""
    count = len(report.imported)
    sys.stdout.write(
        f"{count} conversation{'' if count == 1 else 's'} imported from {report.label} {path}{already}\n"
    )
