"""The wire mapping on its own: request bodies as g3chat's types, answers as OpenAI's objects and chunks."""

from __future__ import annotations

import json
from typing import Any

import pytest

from g3chat.core.tools.protocol import message_text
from g3chat.core.types import GenerationParams, Message, TextPart, ToolCallPart, ToolResultPart, Usage
from g3chat.server.memory import AnswerMemory
from g3chat.server.wire_request import WireError, parse_request
from g3chat.server.wire_response import Envelope, usage_json

DEFAULTS = GenerationParams(temperature=1.0, top_k=64)
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def wire_call(call_id: str, arguments: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": "get_weather", "arguments": arguments}}


def parse(**body: Any) -> Any:
    body.setdefault("messages", [{"role": "user", "content": "hi"}])
    return parse_request(body, DEFAULTS)


def error(**body: Any) -> WireError:
    with pytest.raises(WireError) as caught:
        parse(**body)
    return caught.value


def test_roles_and_tool_messages_become_gemmas_turns() -> None:
    request = parse(
        messages=[
            {"role": "developer", "content": [{"type": "text", "text": "Be brief."}]},
            {"role": "user", "content": "Weather in Paris and Rome?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [wire_call("c1", '{"city": "Paris"}'), wire_call("c2", '{"city": "Rome"}')],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
            {"role": "tool", "tool_call_id": "c2", "content": "rain"},
        ],
        tools=[WEATHER],
    )  # fmt: skip
    system, _, calls, results = request.messages
    assert (system.role, system.text) == ("system", "Be brief.")
    assert calls.parts == (
        ToolCallPart("c1", "get_weather", {"city": "Paris"}),
        ToolCallPart("c2", "get_weather", {"city": "Rome"}),
    )
    # both results in one user turn, named after their calls, as Gemma's tool_outputs fences
    assert results.role == "user"
    assert results.parts == (
        ToolResultPart("c1", "get_weather", "sunny"),
        ToolResultPart("c2", "get_weather", "rain"),
    )
    assert message_text(results) == "```tool_outputs\nsunny\n```\n```tool_outputs\nrain\n```"
    assert request.tool_choice == "auto"


def test_sampling_parameters_override_the_defaults() -> None:
    request = parse(temperature=0, top_p=0.5, seed=-1, max_completion_tokens=7, max_tokens=99, stop="END")
    params = request.params
    assert (params.temperature, params.top_p, params.top_k) == (0, 0.5, 64)
    assert params.seed == 2**32 - 1 and params.max_tokens == 7 and params.stop == ("END",)
    assert parse(max_tokens=5).params.max_tokens == 5
    assert parse().params == DEFAULTS


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"temperature": 3}, "temperature"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"top_k": 1.5}, "top_k"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"n": 2}, "n"),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "wizard", "content": "x"}]}, "messages[0].role"),
        (
            {"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "nope"}}},
            "tool_choice",
        ),
        ({"tool_choice": "required"}, "tool_choice"),
        ({"response_format": {"type": "xml"}}, "response_format"),
        ({"tools": [{"type": "function", "function": {"name": "9 lives"}}]}, "tools[0].function.name"),
    ],
)
def test_bad_requests_name_the_parameter(body: dict[str, Any], param: str) -> None:
    problem = error(**body)
    assert problem.status == 400 and problem.param == param
    assert problem.body()["error"]["type"] == "invalid_request_error"


def test_tool_choice_forms() -> None:
    named = {"type": "function", "function": {"name": "get_weather"}}
    assert parse(tools=[WEATHER], tool_choice=named).tool_choice == "get_weather"
    assert parse(tools=[WEATHER], tool_choice="required").tool_choice == "required"
    assert parse(tools=[WEATHER], tool_choice="none").tool_choice == "none"
    assert parse().tool_choice == "none"


def test_response_format_json_schema() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    body = {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}
    assert parse(response_format=body).json_schema == schema
    assert parse(response_format={"type": "json_object"}).json_schema == {"type": "object"}


def test_streamed_tool_calls_carry_the_name_once() -> None:
    call = ToolCallPart("call_1", "get_weather", {"city": "Paris, the capital of France"})
    chunks = list(Envelope("m").call_chunks(0, call))
    deltas = [c["choices"][0]["delta"]["tool_calls"][0] for c in chunks]
    assert deltas[0] == {
        "index": 0,
        "id": "call_1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": ""},
    }
    assert len(deltas) > 2 and all("name" not in d["function"] and "id" not in d for d in deltas[1:])
    assert json.loads("".join(d["function"]["arguments"] for d in deltas)) == call.arguments


def test_usage_reports_cached_prompt_tokens() -> None:
    usage = Usage(100, 5, 12, 0.1, 10.0, 0.1, 0.5)
    assert usage_json(usage) == {
        "prompt_tokens": 100,
        "completion_tokens": 5,
        "total_tokens": 105,
        "prompt_tokens_details": {"cached_tokens": 88},
    }


def test_a_remembered_answer_renders_as_it_was_generated() -> None:
    memory = AnswerMemory()
    call = ToolCallPart("call_9", "get_weather", {"city": "Paris"})
    raw = '```tool_code\n{"name":"get_weather","parameters":{"city":"Paris"}}\n```'
    memory.remember("", [call], raw, [5, 6, 7])
    memory.remember("Hello there", [], "Hello there", [1, 2])
    paris = wire_call("call_9", '{"city": "Paris"}')
    sent_back: dict[str, Any] = {"role": "assistant", "tool_calls": [paris]}
    earlier = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "Hello there"}, sent_back]
    request = parse_request({"messages": earlier}, DEFAULTS, memory=memory)
    text, calls = request.messages[1], request.messages[2]
    assert text == Message("assistant", (TextPart("Hello there"),)) and text.tokens == (1, 2)
    assert message_text(calls) == raw and calls.tokens == (5, 6, 7)
    # changed arguments are the client's own call: rendered from what it sent
    sent_back["tool_calls"][0]["function"]["arguments"] = '{"city": "Rome"}'
    changed = parse_request({"messages": [sent_back]}, DEFAULTS, memory=memory).messages[0]
    assert changed.tokens is None and changed.parts == (
        ToolCallPart("call_9", "get_weather", {"city": "Rome"}),
    )


def test_the_wire_mapping_is_headless() -> None:
    """The mapping and the completion import neither the web stack nor a UI: they are tested on their own."""
    import subprocess
    import sys

    modules = ["wire_request", "wire_response", "memory", "media", "completion", "worker"]
    stacks = ("starlette", "uvicorn", "fastapi", "textual", "rich")
    code = (
        "import sys\n"
        + "".join(f"import g3chat.server.{m}\n" for m in modules)
        + f"print(sorted(m for m in {stacks!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
