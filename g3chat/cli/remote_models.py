"""``g3chat models list --server URL``: the models an OpenAI-compatible server offers."""

from __future__ import annotations

import json
import sys
from typing import Any

from g3chat.core.errors import InputError
from g3chat.runtime import Runtime


def describe(entry: dict[str, Any]) -> str:
    """What a server says about a model beyond its id: context window, owner."""
    notes = []
    meta: dict[str, Any] = entry["meta"] if isinstance(entry.get("meta"), dict) else {}
    n_ctx = entry.get("max_model_len") or meta.get("n_ctx")
    if n_ctx:
        notes.append(f"context {n_ctx}")
    if entry.get("owned_by"):
        notes.append(f"owned by {entry['owned_by']}")
    return ", ".join(notes)


def list_server_models(server: str | None, json_output: bool) -> None:
    runtime = Runtime.from_env()
    url = runtime.server_url(server)
    if url is None:
        raise InputError("no server: pass --server URL or set engine.base_url")
    engine = runtime.make_remote_engine(url)
    try:
        entries = engine.list_models()
    finally:
        engine.close()
    if json_output:
        for entry in entries:
            sys.stdout.write(json.dumps(entry, ensure_ascii=False) + "\n")
        return
    if not entries:
        sys.stdout.write(f"the server at {engine.base_url} lists no models\n")
        return
    width = max(len(str(e.get("id", ""))) for e in entries)
    for entry in entries:
        notes = describe(entry)
        sys.stdout.write(f"{str(entry.get('id', '')).ljust(width)}  {notes}".rstrip() + "\n")
