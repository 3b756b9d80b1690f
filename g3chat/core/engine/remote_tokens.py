"""Counting a conversation's tokens on a server, with the server's own tokenizer where it has one.

Each server family exposes tokenization differently, none of them through the OpenAI API: llama-server
renders with ``/apply-template`` then ``/tokenize``; vLLM's ``/tokenize`` takes the chat messages; the
llama-cpp-python server's ``/extras/tokenize/count`` takes text, so g3chat renders Gemma's turn format for
it. The first that answers is remembered; a server with none (Ollama, OpenAI) gets an estimate.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from g3chat.core.engine.openai_wire import content_of, prepare_messages
from g3chat.core.engine.remote_http import HttpSession
from g3chat.core.errors import G3ChatError, ServerFailedError
from g3chat.core.prompt import GemmaTurnFormat, render_text
from g3chat.core.types import Message

NOT_THERE = (404, 405, 422, 501)  # statuses that mean "no such endpoint here"


def estimate_tokens(messages: Sequence[Message]) -> int:
    """About four characters a token, plus a few for each message's framing."""
    return sum(math.ceil(len(m.text) / 4) + 4 for m in messages)


def wire_messages(messages: Sequence[Message]) -> list[dict[str, Any]]:
    return [{"role": m.role, "content": content_of(m.parts)} for m in prepare_messages(messages)]


class ServerTokenCounter:
    def __init__(self, http: HttpSession) -> None:
        self.http = http
        self.method: str | None = None  # the endpoint family that worked, or "estimate"

    @property
    def source(self) -> str | None:
        return None if self.method is None else "estimate" if self.method == "estimate" else "server"

    def count(self, messages: Sequence[Message], model: str | None) -> int:
        methods: dict[str, Callable[[Sequence[Message], str | None], int | None]] = {
            "llama-server": self._llama_server,
            "vllm": self._vllm,
            "llama-cpp-python": self._llama_cpp_python,
        }
        order = [self.method] if self.method in methods else list(methods)
        for name in order:
            try:
                count = methods[name](messages, model)
            except G3ChatError:
                return estimate_tokens(messages)  # the server is unwell: estimate now, ask again next time
            if count is not None:
                self.method = name
                return count
        self.method = "estimate"
        return estimate_tokens(messages)

    def _post(self, path: str, body: Any) -> Any:
        try:
            response = self.http.send(
                "POST", self.http.url(path, root=True), json_body=body, retry_connect=False, retries=0
            )
        except ServerFailedError as exc:
            if exc.status in NOT_THERE:
                return None
            raise
        assert response is not None
        try:
            return response.json()
        except ValueError:
            return None

    def _llama_server(self, messages: Sequence[Message], model: str | None) -> int | None:
        rendered = self._post("apply-template", {"messages": wire_messages(messages)})
        if not isinstance(rendered, Mapping) or not isinstance(rendered.get("prompt"), str):
            return None
        tokens = self._post("tokenize", {"content": rendered["prompt"], "add_special": False})
        return len(tokens["tokens"]) if isinstance(tokens, Mapping) and "tokens" in tokens else None

    def _vllm(self, messages: Sequence[Message], model: str | None) -> int | None:
        body = {"model": model, "messages": wire_messages(messages), "add_generation_prompt": True}
        answer = self._post("tokenize", body)
        return int(answer["count"]) if isinstance(answer, Mapping) and "count" in answer else None

    def _llama_cpp_python(self, messages: Sequence[Message], model: str | None) -> int | None:
        # Its endpoint takes text: render Gemma's turn format (the server adds <bos> when tokenizing).
        text = render_text(GemmaTurnFormat(bos_text="").segments(messages))
        answer = self._post("extras/tokenize/count", {"input": text, "model": model})
        return int(answer["count"]) if isinstance(answer, Mapping) and "count" in answer else None
