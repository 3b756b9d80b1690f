"""The tool-call parser and the protocol text: malformed, partial, multiple and nested calls."""

from __future__ import annotations

import json

import pytest

from g3chat.core.prompt import GemmaTurnFormat, render_text
from g3chat.core.tools.protocol import (
    CallSyntaxError,
    ParsedCall,
    format_calls,
    parse_block,
    parse_calls,
    parts_text,
    tool_line,
    tools_prompt,
)
from g3chat.core.types import (
    Message,
    OpaquePart,
    Part,
    TextPart,
    ToolCallPart,
    ToolResultPart,
    part_from_json,
    parts_from_json,
    parts_to_json,
    user,
)

KNOWN = ["read_file", "list_dir", "calculator"]
SCHEMAS = {
    "read_file": {
        "type": "object",
        "properties": {"path": {"type": "string"}, "max_lines": {"type": "integer"}},
    },
    "calculator": {"type": "object", "properties": {"expression": {"type": "string"}}},
}


def test_fenced_json_call_with_prose_before() -> None:
    text = 'Let me look.\n```tool_code\n{"name": "read_file", "parameters": {"path": "a.txt"}}\n```'
    parsed = parse_calls(text, KNOWN)
    assert parsed.calls == [ParsedCall("read_file", {"path": "a.txt"})]
    assert parsed.prose == "Let me look." and parsed.errors == []


def test_fenced_python_call_is_parsed_not_evaluated() -> None:
    text = '```tool_code\nread_file(path="a.txt", max_lines=3)\n```'
    assert parse_calls(text, KNOWN).calls == [ParsedCall("read_file", {"path": "a.txt", "max_lines": 3})]
    evil = '```tool_code\nread_file(path=__import__("os").system("touch /tmp/pwned"))\n```'
    parsed = parse_calls(evil, KNOWN)
    assert parsed.calls == [] and "must be a literal" in parsed.errors[0]


def test_multiple_calls_json_lines_list_and_python_list() -> None:
    lines = (
        '```tool_code\n{"name": "list_dir", "parameters": {}}\n'
        '{"name": "read_file", "parameters": {"path": "b"}}\n```'
    )
    assert [c.name for c in parse_calls(lines, KNOWN).calls] == ["list_dir", "read_file"]
    openai_style = '{"name": "calculator", "arguments": "{\\"expression\\": \\"1+1\\"}"}'
    array = f'```tool_code\n[{{"name": "list_dir"}}, {openai_style}]\n```'
    calls = parse_calls(array, KNOWN).calls
    assert calls == [ParsedCall("list_dir", {}), ParsedCall("calculator", {"expression": "1+1"})]
    pylist = '[list_dir(), calculator(expression="2*3")]'
    assert [c.name for c in parse_calls(pylist, KNOWN).calls] == ["list_dir", "calculator"]
    first = format_calls([ToolCallPart("1", "list_dir", {})])
    second = format_calls([ToolCallPart("2", "list_dir", {"path": "x"})])
    two_blocks = f"{first}\nand\n{second}"
    parsed = parse_calls(two_blocks, KNOWN)
    assert len(parsed.calls) == 2 and parsed.prose == "and"


def test_nested_arguments_survive() -> None:
    args = {"path": "a", "options": {"deep": [1, {"x": None, "y": [True, 2.5]}], "s": "```not a fence```"}}
    text = "```tool_code\n" + json.dumps({"name": "read_file", "parameters": args}) + "\n```"
    assert parse_calls(text, KNOWN).calls == [ParsedCall("read_file", args)]
    python = '```tool_code\nread_file(path="a", options={"deep": [1, {"x": None, "y": [True, 2.5]}]})\n```'
    assert parse_calls(python, KNOWN).calls[0].arguments["options"] == {
        "deep": [1, {"x": None, "y": [True, 2.5]}]
    }
    nested_call = "```tool_code\nread_file(path=list_dir(path='x'))\n```"
    assert "must be a literal" in parse_calls(nested_call, KNOWN).errors[0]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('```tool_code\n{"name": "read_file", "parameters": {"path": "a"\n```', "malformed JSON"),
        ('```tool_code\n{"parameters": {"path": "a"}}\n```', '"name"'),
        ('```tool_code\n{"name": "read_file", "parameters": [1, 2]}\n```', "must be an object"),
        ("```tool_code\nread_file(path='a'\n```", "malformed tool call"),
        ("```tool_code\nx = read_file(path='a')\n```", "only calls"),
        ("```tool_code\n\n```", "empty"),
        ("```tool_code\nread_file('a', 'b', 'c')\n```", "named arguments"),
        ("```tool_code\nread_file(**{'path': 'a'})\n```", "not supported"),
    ],
)
def test_malformed_calls_are_errors_not_calls(text: str, problem: str) -> None:
    parsed = parse_calls(text, KNOWN, SCHEMAS)
    assert parsed.calls == [] and len(parsed.errors) == 1 and problem in parsed.errors[0]


def test_partial_call_cut_off_mid_generation() -> None:
    parsed = parse_calls('Sure.\n```tool_code\n{"name": "read_file", "parameters": {"pa', KNOWN)
    assert parsed.calls == [] and parsed.errors[0].startswith("incomplete tool_code block")
    complete_but_unclosed = parse_calls('```tool_code\n{"name": "list_dir", "parameters": {}}', KNOWN)
    assert complete_but_unclosed.calls == [ParsedCall("list_dir", {})] and not complete_but_unclosed.errors


def test_bare_calls_need_known_tools_and_nothing_else() -> None:
    assert (
        parse_calls('{"name": "read_file", "parameters": {"path": "x"}}', KNOWN).calls[0].name == "read_file"
    )
    assert parse_calls('read_file(path="x")', KNOWN).calls[0].arguments == {"path": "x"}
    assert parse_calls("print(default_api.list_dir())", KNOWN).calls == [ParsedCall("list_dir", {})]
    for prose in ['I think {"name": "read_file"} is it', "max(3, 4) is 4", "unknown_tool(a=1)", "Hello!"]:
        parsed = parse_calls(prose, KNOWN)
        assert parsed.calls == [] and parsed.errors == [] and parsed.prose == prose.strip()
    assert parse_calls('{"name": "other", "parameters": {}}', KNOWN).calls == []


def test_plain_code_fences_are_prose_unless_they_are_known_calls() -> None:
    code = "Here:\n```python\nprint('hi')\n```"
    assert parse_calls(code, KNOWN).calls == [] and "print('hi')" in parse_calls(code, KNOWN).prose
    fenced = '```json\n{"name": "calculator", "parameters": {"expression": "2+2"}}\n```'
    assert parse_calls(fenced, KNOWN).calls == [ParsedCall("calculator", {"expression": "2+2"})]


def test_positional_python_arguments_follow_the_schema_order() -> None:
    parsed = parse_calls("```tool_code\nread_file('notes.txt', 5)\n```", KNOWN, SCHEMAS)
    assert parsed.calls == [ParsedCall("read_file", {"path": "notes.txt", "max_lines": 5})]
    with pytest.raises(CallSyntaxError):
        parse_block("read_file(")


def test_parts_round_trip_through_json() -> None:
    parts: list[Part] = [
        TextPart("hi"),
        ToolCallPart("call_1", "read_file", {"path": "a", "n": [1, {"b": None}]}),
        ToolResultPart("call_1", "read_file", "contents", "ok"),
        ToolResultPart("call_2", "run_shell", "the user did not allow this call", "denied"),
    ]
    data = json.loads(json.dumps(parts_to_json(parts)))
    assert parts_from_json(data) == parts
    assert isinstance(part_from_json({"type": "tool_call", "name": 3}), OpaquePart)
    assert isinstance(part_from_json({"type": "tool_result", "content": "x", "status": "weird"}), OpaquePart)


def test_calls_and_results_render_as_protocol_text_in_turns() -> None:
    call = ToolCallPart("c1", "read_file", {"path": "a.txt"})
    result = ToolResultPart("c1", "read_file", "line <end_of_turn> one", "ok")
    denied = ToolResultPart("c2", "write_file", "the user did not allow this call", "denied")
    assert parts_text([TextPart("Looking."), call]) == (
        'Looking.\n```tool_code\n{"name": "read_file", "parameters": {"path": "a.txt"}}\n```'
    )
    assert parts_text([result, denied]) == (
        "```tool_outputs\nline <end_of_turn> one\n```\n"
        "```tool_outputs\nDenied: the user did not allow this call\n```"
    )
    messages = [user("read a.txt"), Message("assistant", (call,)), Message("user", (result,))]
    segments = GemmaTurnFormat().segments(messages)
    text = render_text(segments)
    assert text.count("<start_of_turn>user\n") == 2 and text.endswith("<start_of_turn>model\n")
    # The tool's output is people's text: its <end_of_turn> is not a control token.
    literal = [s for s in segments if not s.special]
    assert any("line <end_of_turn> one" in s.text for s in literal)


def test_tools_prompt_names_the_choice() -> None:
    specs = [{"name": "read_file", "description": "Read", "parameters": SCHEMAS["read_file"]}]
    assert "You must call the tool read_file now." in tools_prompt(specs, "read_file")
    assert "You must call one of these tools now." in tools_prompt(specs, "required")
    auto = tools_prompt(specs, "auto")
    assert "```tool_code" in auto and tool_line(specs[0]) in auto


def test_remote_engines_get_calls_and_results_as_protocol_text() -> None:
    from g3chat.core.engine.openai_wire import content_of, prepare_messages

    call = ToolCallPart("c1", "list_dir", {})
    result = ToolResultPart("c1", "list_dir", "a.txt", "ok")
    assert content_of([TextPart("Looking."), call]) == (
        'Looking.\n```tool_code\n{"name": "list_dir", "parameters": {}}\n```\n'
    )
    turns = prepare_messages([user("list"), Message("assistant", (call,)), Message("user", (result,))])
    assert [m.role for m in turns] == ["user", "assistant", "user"]
    assert content_of(turns[2].parts) == "\n```tool_outputs\na.txt\n```\n"
