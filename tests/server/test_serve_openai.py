"""``g3chat serve`` with the official ``openai`` client, on the real test model (answers of a few tokens)."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import httpx2 as httpx
import pytest

from g3chat.server.completion import Done
from tests.server.conftest import API_KEY, MODEL, Served

pytestmark = pytest.mark.model

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "maxLength": 8},
                "days": {"type": "integer", "minimum": 1, "maximum": 3},
            },
            "required": ["city", "days"],
        },
    },
}
TIME = {
    "type": "function",
    "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}},
}
QUESTION = [{"role": "user", "content": "What is the weather in Paris?"}]
FORCED = {"type": "function", "function": {"name": "get_weather"}}
FORCED_TIME = {"type": "function", "function": {"name": "get_time"}}


def assembled(stream: Any) -> tuple[str, dict[int, dict[str, str]], str | None, Any]:
    """What a client assembles from a stream, as the openai client's own helpers do: text, calls by index
    (id, name and arguments concatenated over the deltas), the finish reason and the usage."""
    calls: dict[int, dict[str, str]] = {}
    text, finish, usage = "", None, None
    for chunk in stream:
        usage = chunk.usage or usage
        for choice in chunk.choices:
            delta = choice.delta
            text += delta.content or ""
            for call in delta.tool_calls or ():
                entry = calls.setdefault(call.index, {"id": "", "name": "", "arguments": ""})
                entry["id"] += call.id or ""
                if call.function is not None:
                    entry["name"] += call.function.name or ""
                    entry["arguments"] += call.function.arguments or ""
            finish = choice.finish_reason or finish
    return text, calls, finish, usage


def test_models_lists_the_served_model(client: Any) -> None:
    assert [m.id for m in client.models.list()] == [MODEL]


def test_plain_chat_streamed_and_not(client: Any) -> None:
    answer = client.chat.completions.create(model=MODEL, messages=QUESTION, max_tokens=3, temperature=0)
    choice = answer.choices[0]
    assert choice.message.role == "assistant" and choice.message.content
    assert choice.finish_reason in ("stop", "length") and answer.usage.completion_tokens <= 3
    stream = client.chat.completions.create(
        model=MODEL, messages=QUESTION, max_tokens=3, temperature=0, stream=True,
        stream_options={"include_usage": True},
    )  # fmt: skip
    text, calls, finish, usage = assembled(stream)
    assert text == choice.message.content and not calls and finish == choice.finish_reason
    assert usage.prompt_tokens == answer.usage.prompt_tokens
    # the same prompt again: all but the last prompt token came from the KV cache
    assert usage.prompt_tokens_details.cached_tokens >= usage.prompt_tokens - 1


def test_stop_and_seed(client: Any) -> None:
    def ask(**extra: Any) -> str:
        answer = client.chat.completions.create(model=MODEL, messages=QUESTION, max_tokens=4, **extra)
        return answer.choices[0].message.content

    assert ask(seed=7, temperature=1.0) == ask(seed=7, temperature=1.0)
    full = ask(temperature=0)
    cut = ask(temperature=0, stop=[full[2:4]])
    assert full.startswith(cut) and len(cut) < len(full)


@pytest.mark.parametrize(("choice", "stream"), [(FORCED, False), (FORCED_TIME, True), ("required", True)])
def test_forced_tool_calls(client: Any, served: Served, choice: Any, stream: bool) -> None:
    tools = [WEATHER, TIME] if choice != "required" else [TIME]  # required: the short call, to be quick
    request: dict[str, Any] = dict(
        model=MODEL, messages=QUESTION, tools=tools, tool_choice=choice, max_tokens=32, temperature=0
    )
    if stream:
        text, calls, finish, _ = assembled(client.chat.completions.create(stream=True, **request))
    else:
        answer = client.chat.completions.create(**request)
        message = answer.choices[0].message
        text, finish = message.content or "", answer.choices[0].finish_reason
        calls = {
            i: {"id": c.id, "name": c.function.name, "arguments": c.function.arguments}
            for i, c in enumerate(message.tool_calls or ())
        }
    assert finish == "tool_calls" and text == ""
    assert len(calls) == 1
    call = calls[0]
    assert call["name"] == ("get_weather" if choice == FORCED else "get_time")  # once, never repeated
    assert call["id"].startswith("call_")
    arguments = json.loads(call["arguments"])
    if choice == FORCED:  # valid against the schema, bounds included
        assert set(arguments) == {"city", "days"} and 1 <= arguments["days"] <= 3
        assert isinstance(arguments["city"], str) and len(arguments["city"]) <= 8
    else:
        assert arguments == {}


def _called(i: int, answer: str) -> list[dict[str, Any]]:
    call = {"id": f"call_{i}", "type": "function", "function": {"name": "get_time", "arguments": "{}"}}
    return [
        {"role": "user", "content": "What time is it?"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": f"call_{i}", "content": answer},
        {"role": "assistant", "content": f"It is {answer}."},
    ]


FEW_SHOT = [*_called(1, "9:00"), *_called(2, "10:30"), {"role": "user", "content": "What time is it?"}]


def test_an_auto_tool_call_and_the_round_trip(client: Any) -> None:
    """With ``auto`` the model decides (the base test model follows the conversation's earlier calls; the
    lazy grammar makes the call it starts well-formed); the client sends the result back as a ``tool``
    message and gets the answer, the call coming back from the KV cache as the model wrote it."""
    request: dict[str, Any] = dict(model=MODEL, tools=[TIME], tool_choice="auto", temperature=0)
    first = client.chat.completions.create(messages=FEW_SHOT, max_tokens=24, **request)
    assert first.choices[0].finish_reason == "tool_calls"
    call = first.choices[0].message.tool_calls[0]
    assert (call.function.name, json.loads(call.function.arguments)) == ("get_time", {})
    history = [
        *FEW_SHOT,
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": "11:15"},
    ]
    second = client.chat.completions.create(messages=history, max_tokens=4, **request)
    assert second.choices[0].finish_reason in ("stop", "length")
    assert second.choices[0].message.content and not second.choices[0].message.tool_calls
    # only the tool's output and the turn markers around it were evaluated
    evaluated = second.usage.prompt_tokens - second.usage.prompt_tokens_details.cached_tokens
    new = second.usage.prompt_tokens - first.usage.prompt_tokens - first.usage.completion_tokens
    assert evaluated <= new + 1, (evaluated, new)


def test_response_format_json_schema(client: Any) -> None:
    schema = {
        "type": "object",
        "properties": {"answer": {"type": "integer", "minimum": 0, "maximum": 9}},
        "required": ["answer"],
        "additionalProperties": False,
    }
    answer = client.chat.completions.create(
        model=MODEL, messages=QUESTION, max_tokens=12, temperature=0,
        response_format={"type": "json_schema", "json_schema": {"name": "digit", "schema": schema}},
    )  # fmt: skip
    assert 0 <= json.loads(answer.choices[0].message.content)["answer"] <= 9


def test_a_resent_conversation_evaluates_only_its_new_tokens(client: Any) -> None:
    """A chat client re-sends the whole conversation every turn; the third turn evaluates only its new
    message (and the turn markers around it), not the history."""
    messages: list[dict[str, Any]] = [{"role": "system", "content": "You are brief."}]
    usages = []
    for question in ("Name a colour.", "Name a fruit.", "Name an animal."):
        messages.append({"role": "user", "content": question})
        answer = client.chat.completions.create(model=MODEL, messages=messages, max_tokens=3, temperature=0)
        messages.append({"role": "assistant", "content": answer.choices[0].message.content})
        usages.append(answer.usage)
    second, third = usages[1], usages[2]
    evaluated = third.prompt_tokens - third.prompt_tokens_details.cached_tokens
    new = third.prompt_tokens - second.prompt_tokens - second.completion_tokens
    assert 0 < evaluated <= new + 1, (evaluated, new)
    assert evaluated < third.prompt_tokens // 3


def test_the_shared_preamble_is_restored_not_evaluated(client: Any) -> None:
    """A new conversation with the system prompt and tools of an earlier one, after another conversation
    took the KV cache: the preamble (system prompt and the tools' description) comes back from the state
    cache."""
    system = {"role": "system", "content": "You are terse. Answer in one word."}
    request: dict[str, Any] = dict(model=MODEL, tools=[TIME], max_tokens=1, temperature=0)
    first = client.chat.completions.create(messages=[system, {"role": "user", "content": "Hi?"}], **request)
    other = [{"role": "user", "content": "Something else entirely."}]
    client.chat.completions.create(model=MODEL, messages=other, max_tokens=1, temperature=0)
    again = [system, {"role": "user", "content": "Where is Oslo?"}]
    usage = client.chat.completions.create(messages=again, **request).usage
    assert usage.prompt_tokens_details.cached_tokens >= first.usage.prompt_tokens - 8
    assert usage.prompt_tokens - usage.prompt_tokens_details.cached_tokens < 16


def test_two_clients_at_once_queue_on_the_one_engine(served: Served, client: Any) -> None:
    prompts = ["Name a colour.", "Name a city."]
    expected = [
        client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": p}], max_tokens=2, temperature=0
        )
        .choices[0]
        .message.content
        for p in prompts
    ]
    got: dict[int, str] = {}

    def run(i: int) -> None:
        stream = client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": prompts[i]}], max_tokens=2, temperature=0,
            stream=True,
        )  # fmt: skip
        got[i] = assembled(stream)[0]

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert [got.get(0), got.get(1)] == expected


def test_a_client_that_disconnects_stops_the_generation(served: Served) -> None:
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "Count: 1, 2, 3, 4,"}],
        "max_tokens": 400,
        "temperature": 0,
        "stream": True,
    }
    before = len(served.worker.done)
    headers = {"Authorization": f"Bearer {API_KEY}"}
    with httpx.stream("POST", f"{served.url}/chat/completions", json=body, headers=headers, timeout=60) as r:
        assert r.status_code == 200
        for line in r.iter_lines():
            if '"content":"' in line and '"content":""' not in line:
                break  # the first token arrived: hang up
    deadline = time.monotonic() + 10
    while len(served.worker.done) == before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(served.worker.done) > before, "the generation went on after the client had left"
    done = served.worker.done[-1]
    assert isinstance(done, Done) and done.reason == "cancelled"
    assert done.completion_tokens < 100
