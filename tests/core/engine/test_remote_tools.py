"""Tools through a server's ``tools`` API: a real llama_cpp.server whose chatml-function-calling handler
constrains the model with a grammar, so even the tiny test model emits a well-formed, streamed tool call."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from g3chat.core.engine.openai_wire import ToolCallRequest
from g3chat.core.engine.remote import RemoteEngine
from g3chat.core.tools.grammar import validate_arguments
from g3chat.core.types import Finished, GenerationParams, Usage, user
from tests.fixtures.llama_server import llama_cpp_server

pytestmark = pytest.mark.model

WEATHER: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "maxLength": 12}},
            "required": ["city"],
        },
    },
}


@pytest.fixture(scope="module")
def tool_server(test_model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RemoteEngine]:
    workdir = tmp_path_factory.mktemp("tool-server")
    extra = ("--chat_format", "chatml-function-calling")
    with llama_cpp_server(test_model_path, workdir, threads=1, extra=extra) as server:
        engine = RemoteEngine(server.url, api_key=server.api_key)
        engine.load()
        yield engine
        engine.close()


def test_a_forced_tool_call_streams_back_as_one_request(tool_server: RemoteEngine) -> None:
    events = list(
        tool_server.stream_chat(
            [user("What is the weather in Paris?")],
            GenerationParams(temperature=0.0, max_tokens=40),
            tools=[WEATHER],
            tool_choice={"type": "function", "function": {"name": "get_weather"}},
        )
    )
    calls = [e for e in events if isinstance(e, ToolCallRequest)]
    assert len(calls) == 1
    call = calls[0]
    assert call.name == "get_weather" and call.id  # the name arrives in every fragment: kept once
    arguments = call.parsed_arguments()  # the fragments join into valid JSON (the grammar saw to it)
    assert isinstance(arguments, dict) and isinstance(arguments.get("city"), str)
    assert validate_arguments(WEATHER["function"]["parameters"], arguments) == []  # as g3chat checks calls
    assert isinstance(events[-2], Usage) and events[-1] == Finished("stop")
