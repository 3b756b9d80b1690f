"""``ask --tools`` in-process with the scripted FakeEngine: approval wiring, the trace, the JSON output.

The real model cannot be made to write a given call; these flows need exact calls, so the engine is the
FakeEngine (the real-model CLI run is in test_tool_model.py).
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from g3chat.cli.ask import AskOptions, run_ask
from g3chat.core.engine.fake import FakeEngine
from g3chat.runtime import Runtime


def call(name: str, **arguments: object) -> str:
    return "```tool_code\n" + json.dumps({"name": name, "parameters": arguments}) + "\n```"


@pytest.fixture
def scripted(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> FakeEngine:
    engine = FakeEngine()
    monkeypatch.setattr(Runtime, "engine_for", lambda self, **kw: (engine, None))
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")  # the tools' folder; G3CHAT_HOME is beside it, not inside
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))  # not a terminal: nobody to ask
    return engine


def ask_json(capsys: pytest.CaptureFixture[str], **options: Any) -> dict:
    code = run_ask(AskOptions(prompt="make hello.txt", json_output=True, **options))
    out = capsys.readouterr().out
    assert code == 0, out
    return json.loads(out)


def test_mutating_call_without_a_terminal_is_not_run(scripted: FakeEngine, tmp_path: Path, capsys) -> None:
    scripted.enqueue(call("write_file", path="hello.txt", content="hi"), "I could not.")
    data = ask_json(capsys, tools="write_file")
    assert not (Path("hello.txt")).exists()
    assert [(c["name"], c["approval"], c["status"]) for c in data["tool_calls"]] == [
        ("write_file", "no-approver", "denied")
    ]
    assert data["text"] == "I could not." and data["steps"] == 2


@pytest.mark.parametrize(("flags", "how"), [({"allow": "write_file"}, "allowed"), ({"yes": True}, "yes")])
def test_allow_and_yes_let_it_run(
    scripted: FakeEngine, tmp_path: Path, capsys, flags: dict, how: str
) -> None:
    scripted.enqueue(call("write_file", path="hello.txt", content="hi"), "Done.")
    data = ask_json(capsys, tools="write_file,read_file", **flags)
    assert (Path("hello.txt")).read_text() == "hi"
    assert data["tool_calls"][0]["approval"] == how and data["tool_calls"][0]["result"].startswith("created")


def test_allow_covers_only_the_named_tools(scripted: FakeEngine, tmp_path: Path, capsys) -> None:
    scripted.enqueue(
        call("run_shell", command="touch x.txt"), call("write_file", path="y.txt", content="y"), "ok"
    )
    data = ask_json(capsys, tools="all", allow="write_file")
    assert [c["approval"] for c in data["tool_calls"]] == ["no-approver", "allowed"]
    assert not (Path("x.txt")).exists() and (Path("y.txt")).exists()


def test_trace_on_stderr_and_history(scripted: FakeEngine, tmp_path: Path, capsys, g3chat_home: Path) -> None:
    (Path("notes.txt")).write_text("TODO: one\n")
    scripted.enqueue(call("search_files", pattern="todo"), "notes.txt mentions TODO.")
    code = run_ask(AskOptions(prompt="which files mention TODO?", tools="read_file,search_files", plain=True))
    captured = capsys.readouterr()
    assert code == 0 and captured.out == "notes.txt mentions TODO.\n"
    assert captured.err.splitlines()[-1] == '[tool] search_files {"pattern": "todo"} -> ok: 22 chars'
    from g3chat.core.store import Store

    with Store(g3chat_home / "data" / "history.db") as store:
        conversation = store.latest_conversation()
        assert conversation is not None
        kinds = [[p.type for p in m.parts] for m in store.messages(conversation.id)]
    assert kinds == [["text"], ["tool_call"], ["tool_result"], ["text"]]
