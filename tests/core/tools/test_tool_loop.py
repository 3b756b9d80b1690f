"""The tool loop with the scripted FakeEngine: calls, results, approval paths, limits, history."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from g3chat.core.engine.fake import FakeEngine
from g3chat.core.prompt import normalize
from g3chat.core.store import Store
from g3chat.core.tools.approval import ApprovalPolicy, ApprovalRequest, Decision
from g3chat.core.tools.builtins import builtin_tools
from g3chat.core.tools.confine import Roots
from g3chat.core.tools.loop import FenceFilter, ToolCallFinished, ToolCallStarted, ToolLoop
from g3chat.core.tools.model import Tool, object_schema
from g3chat.core.tools.protocol import TOOLS_INTRO
from g3chat.core.types import (
    Finished,
    GenerationParams,
    Message,
    TextDelta,
    ToolCallPart,
    ToolResultPart,
    Usage,
    user,
)


class RecordingEngine(FakeEngine):
    """FakeEngine that also keeps the params of every turn (to see the grammar the loop asked for)."""

    def __init__(self) -> None:
        super().__init__()
        self.params: list[GenerationParams] = []
        self.load()

    def stream_chat(self, messages: Any, params: GenerationParams, cancel: Any = None) -> Iterator[Any]:
        self.params.append(params)
        return super().stream_chat(messages, params, cancel)


def call(name: str, **arguments: Any) -> str:
    return "```tool_code\n" + json.dumps({"name": name, "parameters": arguments}) + "\n```"


@pytest.fixture
def work(tmp_path: Path) -> Path:
    (tmp_path / "notes.txt").write_text("alpha\nTODO: beta\n")
    return tmp_path


def tools(work: Path) -> list[Tool]:
    return builtin_tools(Roots([work]))


def run(loop: ToolLoop) -> list[Any]:
    return list(loop)


def last_prompt_text(engine: FakeEngine) -> str:
    return "\n".join(text for _, text in normalize(engine.calls[-1]))


def test_call_runs_and_result_goes_back_in_a_user_turn(work: Path) -> None:
    engine = RecordingEngine().enqueue(
        ["Let me check. ", call("read_file", path="notes.txt")], "It says beta."
    )
    loop = ToolLoop(engine, [user("what is in notes.txt?")], GenerationParams(), tools(work))
    events = run(loop)
    texts = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert texts == "Let me check. \n\nIt says beta." and "tool_code" not in texts
    started = [e for e in events if isinstance(e, ToolCallStarted)]
    finished = [e for e in events if isinstance(e, ToolCallFinished)]
    assert [e.call.name for e in started] == ["read_file"] and finished[
        0
    ].result.content == "alpha\nTODO: beta\n"
    assert isinstance(events[-2], Usage) and events[-1] == Finished("stop")
    assert loop.steps == 2 and loop.result.text == texts and loop.result.finish_reason == "stop"
    roles = [m.role for m in loop.history]
    assert roles == ["user", "assistant", "user", "assistant"]
    assert isinstance(loop.history[1].parts[-1], ToolCallPart)
    assert isinstance(loop.history[2].parts[0], ToolResultPart)
    second = engine.calls[1]
    assert second[-1].role == "user" and "```tool_outputs\nalpha\nTODO: beta\n```" in last_prompt_text(engine)
    assert [e.to_json()["status"] for e in loop.trace] == ["ok"]


def test_choice_sets_the_grammar_and_the_prompt(work: Path) -> None:
    engine = RecordingEngine().enqueue(call("list_dir"), "done", call("calculator", expression="1+1"), "two")
    run(ToolLoop(engine, [user("x")], GenerationParams(), tools(work), tool_choice="auto"))
    assert engine.params[0].grammar and engine.params[0].grammar_triggers  # auto: lazy
    assert "Call a tool only when you need it" in last_prompt_text(engine)
    run(ToolLoop(engine, [user("x")], GenerationParams(), tools(work), tool_choice="calculator"))
    forced = engine.params[2]
    assert forced.grammar_triggers == () and '"\\"calculator\\""' in forced.grammar
    assert '"\\"read_file\\""' not in forced.grammar
    assert engine.params[3].grammar_triggers  # later steps are auto again
    engine.enqueue("plain")
    run(ToolLoop(engine, [user("x")], GenerationParams(), tools(work), tool_choice="none"))
    assert engine.params[4].grammar is None and "tool_code" not in last_prompt_text(engine)


def test_mutating_call_denied_goes_back_to_the_model(work: Path) -> None:
    asked: list[ApprovalRequest] = []

    def deny(request: ApprovalRequest) -> Decision:
        asked.append(request)
        return Decision.DENY

    engine = RecordingEngine().enqueue(call("write_file", path="notes.txt", content="gone"), "ok then")
    loop = ToolLoop(
        engine, [user("wipe")], GenerationParams(), tools(work), policy=ApprovalPolicy.create(deny)
    )
    run(loop)
    assert (work / "notes.txt").read_text() == "alpha\nTODO: beta\n"
    assert asked[0].tool == "write_file" and asked[0].preview.startswith("--- a/notes.txt\n+++ b/notes.txt\n")
    assert "-alpha\n-TODO: beta\n+gone" in asked[0].preview
    assert loop.trace[0].result.status == "denied" and loop.trace[0].approval == "denied"
    assert "Denied: the user did not allow this call" in last_prompt_text(engine)


def test_no_approver_means_mutating_tools_never_run(work: Path) -> None:
    engine = RecordingEngine().enqueue(call("run_shell", command="touch made.txt"), "fine")
    loop = ToolLoop(engine, [user("go")], GenerationParams(), tools(work), policy=ApprovalPolicy())
    run(loop)
    assert not (work / "made.txt").exists() and loop.trace[0].approval == "no-approver"


@pytest.mark.parametrize(
    ("policy", "how"),
    [
        (ApprovalPolicy.create(yes=True), "yes"),
        (ApprovalPolicy.create(allow=["run_shell"]), "allowed"),
        (ApprovalPolicy.create(lambda r: Decision.ONCE), "once"),
    ],
)
def test_allowed_paths_run_the_command(work: Path, policy: ApprovalPolicy, how: str) -> None:
    engine = RecordingEngine().enqueue(call("run_shell", command="touch made.txt"), "made")
    loop = ToolLoop(engine, [user("go")], GenerationParams(), tools(work), policy=policy)
    run(loop)
    assert (work / "made.txt").exists() and loop.trace[0].approval == how


def test_always_lasts_for_the_chat_and_read_only_tools_never_ask(work: Path) -> None:
    asked: list[str] = []

    def always(request: ApprovalRequest) -> Decision:
        asked.append(request.tool)
        return Decision.ALWAYS

    policy = ApprovalPolicy.create(always)
    engine = RecordingEngine().enqueue(
        call("run_shell", command="echo 1 > a.txt"),
        call("run_shell", command="echo 2 > b.txt"),
        call("read_file", path="a.txt"),
        "done",
    )
    loop = ToolLoop(engine, [user("go")], GenerationParams(), tools(work), policy=policy)
    run(loop)
    assert asked == ["run_shell"] and [e.approval for e in loop.trace] == ["always", "always", "read-only"]
    assert (work / "b.txt").read_text() == "2\n"


def test_bad_calls_become_error_results_and_the_model_can_retry(work: Path) -> None:
    engine = RecordingEngine().enqueue(
        '```tool_code\n{"name": "read_file", "parameters": {"path": \n```',
        call("nope", x=1),
        call("read_file", path="../outside"),
        call("read_file", path=3),
        call("read_file", path="notes.txt"),
        "finally",
    )
    loop = ToolLoop(engine, [user("go")], GenerationParams(), tools(work))
    run(loop)
    results = [m.parts for m in loop.history if m.role == "user"][1:]
    contents = [r[0].content for r in results]
    assert contents[0].startswith("the tool call could not be read: malformed JSON tool call")
    assert contents[1].startswith("unknown tool 'nope'")
    assert "outside the folders" in contents[2]
    assert (
        contents[3]
        == "invalid arguments: path: 3 is not of type 'string'. Fix them and call read_file again."
    )
    assert contents[4] == "alpha\nTODO: beta\n"
    assert [r[0].status for r in results] == ["error"] * 4 + ["ok"] and loop.result.text == "finally"
    assert [(e.call.name, e.approval) for e in loop.trace][:2] == [("", "invalid"), ("nope", "invalid")]


def test_out_of_bounds_arguments_go_back_and_retries_are_bounded() -> None:
    """What the grammar cannot hold (a decimal's bounds) is caught after parsing and sent back with the
    bound; after two retries without a valid call, the model answers without tools."""
    ran: list[dict[str, Any]] = []
    schema = object_schema({"t": {"type": "number", "minimum": 0, "maximum": 2}}, ["t"])

    def run_tune(arguments: dict[str, Any]) -> str:
        ran.append(arguments)
        return "tuned"

    tune = Tool("tune", "Tune.", schema, run_tune, mutating=False)
    engine = RecordingEngine().enqueue(
        call("tune", t=5.5), call("tune", t=-1), call("tune"), call("tune", t=1.5), "answered"
    )
    loop = ToolLoop(engine, [user("tune it")], GenerationParams(), [tune])
    run(loop)
    assert [e.result.content for e in loop.trace] == [
        "invalid arguments: t: 5.5 is greater than the maximum of 2. Fix them and call tune again.",
        "invalid arguments: t: -1 is less than the minimum of 0. Fix them and call tune again.",
        "invalid arguments: 't' is a required property. Fix them and call tune again.",
    ]
    assert "t: 5.5 is greater than the maximum of 2" in last_prompt_text(engine)  # the model was told
    assert ran == [] and loop.steps == 4 and loop.invalid_steps == 3
    assert engine.params[3].grammar is None and TOOLS_INTRO not in last_prompt_text(engine)
    assert loop.result.text == call("tune", t=1.5)  # the tool-less step's answer is text


def test_a_valid_call_resets_the_retry_count(work: Path) -> None:
    engine = RecordingEngine().enqueue(
        call("read_file", path=1),
        call("read_file", path=2),
        call("list_dir"),
        call("read_file", path=3),
        call("read_file", path=4),
        call("read_file", path="notes.txt"),
        "done",
    )
    loop = ToolLoop(engine, [user("go")], GenerationParams(), tools(work))
    run(loop)
    assert [e.result.status for e in loop.trace] == ["error", "error", "ok", "error", "error", "ok"]
    assert loop.result.text == "done" and all(p.grammar for p in engine.params[:6])


def test_step_limit_ends_with_an_answer_without_tools(work: Path) -> None:
    engine = RecordingEngine().enqueue(*[call("list_dir")] * 3, "enough")
    loop = ToolLoop(engine, [user("loop")], GenerationParams(), tools(work), max_steps=2)
    run(loop)
    assert loop.steps == 3 and len(loop.trace) == 2
    assert engine.params[2].grammar is None and TOOLS_INTRO not in last_prompt_text(engine)
    assert loop.result.text == call("list_dir")  # the last step's answer is text, shown as it is


def test_tool_timeouts_and_crashes_are_results(work: Path) -> None:
    def slow(args: dict[str, Any]) -> str:
        time.sleep(5)
        return "late"

    def broken(args: dict[str, Any]) -> str:
        raise KeyError("boom")

    extra = [
        Tool("slow", "Sleeps.", object_schema(), slow, timeout=0.2),
        Tool("broken", "Fails.", object_schema(), broken),
    ]
    engine = RecordingEngine().enqueue(call("slow") + "\n" + call("broken"), "ok")
    loop = ToolLoop(engine, [user("go")], GenerationParams(), extra)
    started = time.monotonic()
    run(loop)
    assert time.monotonic() - started < 4
    assert [e.result.content for e in loop.trace] == [
        "timed out after 0.2 s",
        "the tool failed: KeyError: 'boom'",
    ]


def test_every_call_and_result_is_saved(work: Path, tmp_path: Path) -> None:
    store = Store(tmp_path / "h.db")
    conversation = store.create_conversation("t")
    store.add_message(conversation.id, "user", "read notes")
    engine = RecordingEngine().enqueue(call("read_file", path="notes.txt"), "beta")
    loop = ToolLoop(
        engine,
        [user("read notes")],
        GenerationParams(),
        tools(work),
        store=store,
        conversation_id=conversation.id,
    )
    run(loop)
    saved = store.messages(conversation.id)
    assert [m.role for m in saved] == ["user", "assistant", "user", "assistant"]
    assert isinstance(saved[1].parts[0], ToolCallPart) and saved[1].parts[0].arguments == {
        "path": "notes.txt"
    }
    assert saved[1].meta["tool_step"] == 0 and saved[3].meta["tool_step"] == 1
    assert saved[2].parts[0] == loop.trace[0].result and saved[3].text == "beta"
    # Reloaded history renders the same protocol text the model saw.
    assert normalize(store.history(conversation.id)) == normalize(loop.history)
    assert loop.history[-1].text == "beta"
    from g3chat.core.export import to_markdown

    markdown = to_markdown(store.get_conversation(conversation.id), saved)
    assert '**Tool call** `read_file` `{"path": "notes.txt"}`' in markdown
    assert "## Tool results\n\n**Tool result** `read_file` (ok)\n```\nalpha\nTODO: beta\n```" in markdown
    store.close()


def test_fence_filter_holds_back_only_the_call() -> None:
    fence = FenceFilter()
    pieces = ["Sure", ". `", "``", "tool", "_code\n{}", "\n```"]
    shown = "".join(fence.feed(p) for p in pieces)
    assert shown == "Sure. " and fence.flush() == "```tool_code\n{}\n```"
    plain = FenceFilter()
    assert "".join(plain.feed(p) for p in ["use ``", "` fences"]) + plain.flush() == "use ``` fences"


@pytest.mark.parametrize(
    ("answer", "decision"),
    [
        ("y\n", Decision.ONCE),
        ("always\n", Decision.ALWAYS),
        ("n\n", Decision.DENY),
        ("\n", Decision.DENY),
        ("", Decision.DENY),
    ],
)
def test_terminal_approver_shows_the_exact_change_and_reads_the_answer(
    answer: str, decision: Decision
) -> None:
    import io

    from g3chat.cli.tools_cmd import TerminalApprover

    err = io.StringIO()
    approver = TerminalApprover(stdin=io.StringIO(answer), stderr=err)
    request = ApprovalRequest(
        "run_shell", {"command": "rm -rf build"}, "$ rm -rf build\n(in /w, timeout 30 s)"
    )
    assert approver(request) is decision
    shown = err.getvalue()
    assert "run_shell wants to make a change:\n$ rm -rf build\n(in /w, timeout 30 s)\n" in shown
    assert "[y] once, [a] always in this chat, [N] no" in shown


@pytest.mark.parametrize("choice", ["auto", "required", "calculator", "none"])
def test_the_loop_asks_for_exactly_what_prompt_with_tools_renders(work: Path, choice: str) -> None:
    """What a recording read while it is made is evaluated after (engine/listening.py) must be the prompt's
    start as the loop renders it: the tools' section after the leading system messages."""
    from g3chat.core.tools.loop import prompt_with_tools

    history = [Message.text_message("system", "be brief"), user("what is in notes.txt?")]
    loop = ToolLoop(FakeEngine(), history, GenerationParams(), tools(work), tool_choice=choice)
    rendered = prompt_with_tools(history, tools(work), choice)
    assert loop.request(choice)[0] == rendered
    if choice == "none":
        assert rendered == history
    else:
        assert [m.role for m in rendered] == ["system", "system", "user"] and TOOLS_INTRO in rendered[1].text
