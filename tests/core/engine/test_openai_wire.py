"""The OpenAI wire format, without a server: message mapping, request bodies, chunk parsing, errors."""

from __future__ import annotations

import json
from typing import Any

import pytest

from g3chat.core.engine.openai_wire import (
    StreamState,
    content_of,
    context_size,
    error_text,
    match_model,
    prepare_messages,
    request_body,
    sse_data,
)
from g3chat.core.engine.remote_http import normalize_base_url, server_root
from g3chat.core.errors import ServerURLError
from g3chat.core.types import GenerationParams, Message, OpaquePart, TextPart, assistant, system, user


def test_text_parts_become_a_string_and_unknown_parts_are_not_sent() -> None:
    parts = (TextPart("look at "), OpaquePart({"type": "future", "x": 1}), TextPart("this"))
    assert content_of(parts) == "look at this"


def test_messages_are_normalized_for_gemma_alternation() -> None:
    messages = [
        system("Be brief."),
        assistant("Hello! How can I help?"),
        user("first"),
        user("second"),  # the answer to "first" failed and was not kept
        system("Use French."),
    ]
    prepared = prepare_messages(messages)
    assert [(m.role, m.text) for m in prepared] == [
        ("system", "Be brief.\n\nUse French."),
        ("user", ""),
        ("assistant", "Hello! How can I help?"),
        ("user", "first\n\nsecond"),
    ]


def test_request_body_carries_sampling_and_asks_for_usage() -> None:
    params = GenerationParams(temperature=0.2, top_k=40, top_p=0.9, min_p=0.05, seed=7, max_tokens=12)
    body = request_body([user("hi")], params, "gemma3n:e2b", tools=[{"type": "function", "function": {}}])
    assert body["messages"] == [{"role": "user", "content": "hi"}]
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert (body["temperature"], body["top_k"], body["top_p"], body["min_p"]) == (0.2, 40, 0.9, 0.05)
    assert (body["seed"], body["max_tokens"], body["model"]) == (7, 12, "gemma3n:e2b")
    assert body["tools"] == [{"type": "function", "function": {}}]
    assert "repeat_penalty" not in body and "stop" not in body  # defaults are not sent
    plain = request_body([user("hi")], GenerationParams(repeat_penalty=1.1, stop=("END",)), None)
    assert "model" not in plain and "max_tokens" not in plain and "seed" not in plain
    assert plain["repeat_penalty"] == plain["repetition_penalty"] == 1.1 and plain["stop"] == ["END"]


def test_llama_server_stream_with_timings_and_tool_calls() -> None:
    # The shapes llama-server sends (tools/server/server-task.cpp): one content delta per token, a final
    # chunk with finish_reason and timings, then a usage chunk with empty choices.
    chunks: list[dict[str, Any]] = [
        {"choices": [{"index": 0, "delta": {"role": "assistant", "content": None}}]},
        {"choices": [{"index": 0, "delta": {"content": "Par"}}]},
        {"choices": [{"index": 0, "delta": {"content": "is"}}]},
        {
            "choices": [
                {
                    "index": 0,
                    "delta": {
                        "tool_calls": [
                            {"index": 0, "id": "c1", "type": "function", "function": {"name": "get_"}}
                        ]
                    },
                }
            ]
        },
        {
            "choices": [
                {
                    "index": 0,
                    "delta": {
                        "tool_calls": [{"index": 0, "function": {"name": "time", "arguments": '{"tz":'}}]
                    },
                }
            ]
        },
        {
            "choices": [
                {"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": ' "UTC"}'}}]}}
            ]
        },
        {
            "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}],
            "timings": {"prompt_n": 5, "prompt_ms": 40.0, "predicted_n": 2, "predicted_per_second": 31.5},
        },
        {"choices": [], "usage": {"prompt_tokens": 25, "completion_tokens": 2, "total_tokens": 27}},
    ]
    state = StreamState()
    text = "".join(state.feed(c) for c in chunks)
    assert text == "Paris" and state.content_chunks == 2
    assert state.finish_reason == "stop"
    assert state.usage == {"prompt_tokens": 25, "completion_tokens": 2, "total_tokens": 27}
    assert state.timings is not None and state.timings["predicted_per_second"] == 31.5
    [call] = state.tools.calls()
    assert (call.id, call.name, call.parsed_arguments()) == ("c1", "get_time", {"tz": "UTC"})


def test_length_finish_and_other_choices_ignored() -> None:
    state = StreamState()
    assert state.feed({"choices": [{"index": 1, "delta": {"content": "no"}}]}) == ""
    assert (
        state.feed({"choices": [{"index": 0, "delta": {"content": "yes"}, "finish_reason": "length"}]})
        == "yes"
    )
    assert state.finish_reason == "length"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            {"error": {"message": "Invalid API key", "type": "auth"}},
            "Invalid API key",
        ),  # OpenAI, llama-server
        ({"detail": "Invalid API key"}, "Invalid API key"),  # FastAPI (llama-cpp-python server)
        (
            {"object": "error", "message": "The model `x` does not exist.", "code": 404},
            "The model `x` does not exist.",
        ),
        ({"error": "model 'x' not found"}, "model 'x' not found"),  # Ollama native
        ({"detail": [{"loc": ["body"], "msg": "field required"}]}, "field required"),
        (b"<html>\n<body>Bad   Gateway</body></html>", "<html> <body>Bad Gateway</body></html>"),
    ],
)
def test_error_text_finds_the_message_in_any_shape(body: object, expected: str) -> None:
    raw = json.dumps(body).encode() if isinstance(body, dict) else body
    assert error_text(raw) == expected


def test_model_matching_and_context_size() -> None:
    listing: dict[str, Any] = {
        "data": [
            {"id": "/models/gemma-3n-E2B-it-Q4_K_M.gguf", "meta": {"n_ctx": 4096}, "aliases": ["e2b"]},
            {"id": "gemma3n:latest"},
            {"id": "google/gemma-3n-E4B-it", "max_model_len": 32768},
        ]
    }
    assert match_model("gemma-3n-E2B-it-Q4_K_M.gguf", listing) == "/models/gemma-3n-E2B-it-Q4_K_M.gguf"
    assert match_model("e2b", listing) == "/models/gemma-3n-E2B-it-Q4_K_M.gguf"
    assert match_model("gemma3n", listing) == "gemma3n:latest"
    assert match_model("google/gemma-3n-E4B-it", listing) == "google/gemma-3n-E4B-it"
    assert match_model("gemma-2", listing) is None
    assert [context_size(e) for e in listing["data"]] == [4096, 0, 32768]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080/v1"),
        ("http://127.0.0.1:8080/", "http://127.0.0.1:8080/v1"),
        ("https://gpu.example.com/v1/", "https://gpu.example.com/v1"),
        (" http://localhost:11434/v1 ", "http://localhost:11434/v1"),
        ("http://proxy/openai/v1", "http://proxy/openai/v1"),
    ],
)
def test_base_urls_are_normalized(url: str, expected: str) -> None:
    assert normalize_base_url(url) == expected


@pytest.mark.parametrize(
    "url", ["127.0.0.1:8080", "ftp://host/v1", "http://", "http://host:99999/v1", "gpu-box"]
)
def test_bad_base_urls_are_input_errors(url: str) -> None:
    with pytest.raises(ServerURLError, match=r"URL|port"):
        normalize_base_url(url)


def test_server_root_strips_v1() -> None:
    assert server_root("http://h:8080/v1") == "http://h:8080"
    assert server_root("http://h/openai") == "http://h/openai"


def test_message_parts_are_kept_when_merging() -> None:
    merged = prepare_messages([Message("user", (TextPart("a"),)), Message("user", (TextPart("b"),))])
    assert merged[0].parts == (TextPart("a"), TextPart("\n\n"), TextPart("b"))


def test_server_sent_events_are_parsed_per_the_spec() -> None:
    lines = [
        ": ping - 2026-11-27",  # a comment (sse-starlette's keep-alive)
        'data: {"a": 1}',
        "",
        "event: message",
        "id: 7",
        "data:first",  # no space after the colon
        "data:  second",  # only one leading space is removed
        "",
        "",
        "data: [DONE]",
        "",
        'data: {"cut": ',  # the stream dropped before this event's blank line: not dispatched
    ]
    assert list(sse_data(lines)) == ['{"a": 1}', "first\n second", "[DONE]"]
