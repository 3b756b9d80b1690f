"""How fast ``g3chat chats import`` brings in a large ChatGPT export, against plain Store writes, in one run.

A synthetic ``conversations.json`` (N conversations of T question-answer turns, each with one edited
question: two branches) is imported three ways into fresh history databases: reading only (detection and
parsing), the import (one transaction for the whole file), and the baseline: the same messages written
by plain ``Store.add_message`` calls, each committing on its own, as a loop outside the importer would.

    python bench/import_history.py [--conversations 300] [--turns 20]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from g3chat.core.importers import import_file, read_file
from g3chat.core.store import Store


def node(key: str, parent: str, role: str, when: float, text: str) -> dict[str, object]:
    content = {"content_type": "text", "parts": [text]}
    message = {"id": key, "author": {"role": role}, "create_time": when, "content": content, "metadata": {}}
    return {"id": key, "message": message, "parent": parent, "children": []}


def export(conversations: int, turns: int) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for c in range(conversations):
        start = 1.7e9 + c * 1000
        mapping: dict[str, dict[str, object]] = {"root": {"id": "root", "message": None, "children": []}}
        parent = "root"
        for t in range(turns):
            for role, key in (("user", f"u{t}"), ("assistant", f"a{t}")):
                text = f"{role} says something about topic {c} in turn {t}. " * 8
                mapping[key] = node(key, parent, role, start + t, text)
                parent = key
        mapping["edit"] = node("edit", "a0", "user", start + turns, "an edited question")
        conversation = {
            "title": f"chat {c}",
            "create_time": start,
            "update_time": start + turns,
            "id": f"c{c}",
        }
        out.append({**conversation, "mapping": mapping, "current_node": parent})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=300)
    parser.add_argument("--turns", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        path = folder / "conversations.json"
        path.write_text(json.dumps(export(args.conversations, args.turns)))
        megabytes = path.stat().st_size / 1e6
        start = time.perf_counter()
        source = read_file(path)
        read_s = time.perf_counter() - start
        messages = sum(len(c.messages) for c in source.conversations)

        start = time.perf_counter()
        with Store(folder / "imported.db") as store:
            import_file(store, path)
        import_s = time.perf_counter() - start

        start = time.perf_counter()
        with Store(folder / "baseline.db") as store:
            for c in source.conversations:
                conversation = store.create_conversation(c.title)
                ids: dict[str, int] = {}
                for m in c.messages:
                    parent = ids[m.parent] if m.parent is not None else None
                    ids[m.key] = store.add_message(conversation.id, m.role, m.parts, parent_id=parent).id
        baseline_s = time.perf_counter() - start

    print(f"{args.conversations} conversations, {messages} messages, {megabytes:.1f} MB of JSON")
    print(f"read and parse:        {read_s:6.2f} s")
    print(f"import (one tx):       {import_s:6.2f} s  {messages / import_s:8.0f} messages/s")
    print(f"baseline (tx per call): {baseline_s:5.2f} s  {messages / baseline_s:8.0f} messages/s")
    print(f"import / baseline:     {import_s / baseline_s:6.2f}x the time")


if __name__ == "__main__":
    main()
