"""The HTTP face: ``/v1/chat/completions`` (SSE or one JSON object), ``/v1/models``, ``/health``.

Thin on purpose: it checks the key, parses the body (:mod:`~g3chat.server.wire_request`), queues a
:class:`Completion` on the engine's worker and writes what comes back (:mod:`~g3chat.server.wire_response`).
A client that disconnects cancels its answer at once: while streaming, Starlette cancels the response and
its ``finally`` sets the cancel event; before that, a task that waits for ``http.disconnect`` does.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from g3chat.core.engine.base import Engine
from g3chat.core.errors import ContextOverflowError, EngineError, G3ChatError
from g3chat.core.types import AttachmentPart, GenerationParams, TextDelta, ToolCallPart, Usage
from g3chat.server.completion import Completion, Done
from g3chat.server.wire_request import ChatRequest, MediaReader, WireError, bad, parse_request
from g3chat.server.wire_response import Envelope, models_json, sse
from g3chat.server.worker import END, EngineWorker

MAX_BODY = 64 * 1024 * 1024


@dataclass
class ServerConfig:
    model: str  # the id clients name; requests naming another model get a 404
    aliases: tuple[str, ...] = ()
    api_key: str | None = None
    defaults: GenerationParams = field(default_factory=GenerationParams)
    media: MediaReader | None = None
    max_body: int = MAX_BODY
    created: int = field(default_factory=lambda: int(time.time()))


def error_response(exc: Exception) -> JSONResponse:
    if isinstance(exc, WireError):
        return JSONResponse(exc.body(), status_code=exc.status)
    return JSONResponse(as_wire_error(exc).body(), status_code=as_wire_error(exc).status)


def as_wire_error(exc: Exception) -> WireError:
    if isinstance(exc, WireError):
        return exc
    if isinstance(exc, ContextOverflowError):
        return WireError(400, str(exc), param="messages", code="context_length_exceeded")
    if isinstance(exc, EngineError):
        return WireError(500, str(exc))
    if isinstance(exc, G3ChatError):
        return WireError(400, str(exc))
    return WireError(500, f"internal error: {type(exc).__name__}: {exc}")


def media_check(engine: Engine, request: ChatRequest) -> None:
    """A 400 for an attachment this model cannot take (``ask`` would pass a note; a client wants to know)."""
    for message in request.messages:
        for part in message.parts:
            if isinstance(part, AttachmentPart):
                problem = engine.media_problem(part)
                if problem is not None:
                    fix = f" ({problem.fix})" if problem.fix else ""
                    raise bad(f"{part.kind} input is not available: {problem.reason}{fix}", "messages")


class Server:
    def __init__(self, worker: EngineWorker, config: ServerConfig) -> None:
        self.worker = worker
        self.config = config

    def app(self) -> Starlette:
        routes = [
            Route(f"{prefix}/chat/completions", self.chat, methods=["POST"]) for prefix in ("/v1", "")
        ] + [Route(f"{prefix}/models", self.models, methods=["GET"]) for prefix in ("/v1", "")]
        routes.append(Route("/health", self.health, methods=["GET"]))

        async def http_error(request: Request, exc: Exception) -> Response:
            status = exc.status_code if isinstance(exc, HTTPException) else 500
            return JSONResponse(
                WireError(status, str(getattr(exc, "detail", exc))).body(), status_code=status
            )

        return Starlette(routes=routes, exception_handlers={HTTPException: http_error})

    # ---------------------------------------------------------------------------------------- checks

    def _authorize(self, request: Request) -> None:
        key = self.config.api_key
        if not key:
            return
        given = request.headers.get("authorization", "")
        token = given[7:].strip() if given[:7].lower() == "bearer " else ""
        if not hmac.compare_digest(token.encode(), key.encode()):
            raise WireError(401, "invalid or missing API key", code="invalid_api_key")

    def _ready(self) -> None:
        if self.worker.state == "loading":
            raise WireError(503, "the model is loading; try again shortly", code="model_loading")
        if self.worker.state == "failed":
            raise WireError(503, f"the model failed to load: {self.worker.error}", code="model_not_loaded")

    async def _body(self, request: Request) -> Any:
        size = request.headers.get("content-length")
        if size is not None and size.isdigit() and int(size) > self.config.max_body:
            raise WireError(413, f"the request is larger than {self.config.max_body // 2**20} MiB")
        data = await request.body()
        if len(data) > self.config.max_body:
            raise WireError(413, f"the request is larger than {self.config.max_body // 2**20} MiB")
        try:
            return json.loads(data)
        except (ValueError, UnicodeDecodeError):
            raise bad("the request body is not valid JSON") from None

    # ---------------------------------------------------------------------------------------- routes

    async def health(self, request: Request) -> Response:
        status = {"ready": 200, "loading": 503, "failed": 503}[self.worker.state]
        return JSONResponse({"status": self.worker.state, "error": self.worker.error}, status_code=status)

    async def models(self, request: Request) -> Response:
        try:
            self._authorize(request)
        except WireError as exc:
            return error_response(exc)
        info = self.worker.info
        return JSONResponse(models_json(self.config.model, self.config.created, info.n_ctx if info else 0))

    async def chat(self, request: Request) -> Response:
        try:
            self._authorize(request)
            body = await self._body(request)
            self._ready()
            parsed = await asyncio.to_thread(
                parse_request,
                body,
                self.config.defaults,
                media=self.config.media,
                memory=self.worker.memory,
            )
            if parsed.model and parsed.model not in (self.config.model, *self.config.aliases):
                raise WireError(
                    404, f"the model {parsed.model!r} does not exist; this server has {self.config.model!r}",
                    param="model", code="model_not_found",
                )  # fmt: skip
        except WireError as exc:
            return error_response(exc)
        cancel = threading.Event()
        engine, memory = self.worker.engine, self.worker.memory

        def work(cancel: threading.Event) -> Iterator[Any]:
            media_check(engine, parsed)
            yield from Completion(engine, parsed, cancel=cancel, memory=memory)

        job = self.worker.submit(work, cancel)
        envelope = Envelope(self.config.model)
        watcher = asyncio.create_task(_watch_disconnect(request, cancel))
        try:
            first = await job.next()
        except Exception as exc:
            watcher.cancel()
            return error_response(exc)
        if not parsed.stream:
            try:
                return await self._collect(job, first, envelope)
            except Exception as exc:
                return error_response(exc)
            finally:
                watcher.cancel()
        watcher.cancel()  # from here Starlette's streaming response listens for the disconnect itself
        return StreamingResponse(
            self._events(job, first, envelope, parsed.include_usage, cancel),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    async def _collect(self, job: Any, item: Any, envelope: Envelope) -> Response:
        text: list[str] = []
        calls: list[ToolCallPart] = []
        usage: Usage | None = None
        finish = "stop"
        while item is not END:
            if isinstance(item, TextDelta):
                text.append(item.text)
            elif isinstance(item, ToolCallPart):
                calls.append(item)
            elif isinstance(item, Usage):
                usage = item
            elif isinstance(item, Done):
                finish = item.finish_reason
                if item.reason == "error":
                    raise EngineError(item.error or "the engine failed")
            item = await job.next()
        return JSONResponse(envelope.completion("".join(text), calls, finish, usage))

    async def _events(
        self, job: Any, item: Any, envelope: Envelope, include_usage: bool, cancel: threading.Event
    ) -> AsyncIterator[bytes]:
        usage: Usage | None = None
        calls = 0
        try:
            yield sse(envelope.chunk({"role": "assistant", "content": ""}))
            while item is not END:
                if isinstance(item, TextDelta):
                    yield sse(envelope.chunk({"content": item.text}))
                elif isinstance(item, ToolCallPart):
                    for chunk in envelope.call_chunks(calls, item):
                        yield sse(chunk)
                    calls += 1
                elif isinstance(item, Usage):
                    usage = item
                elif isinstance(item, Done):
                    if item.reason == "error":
                        yield sse(as_wire_error(EngineError(item.error or "the engine failed")).body())
                    yield sse(envelope.chunk({}, item.finish_reason))
                item = await job.next()
            if include_usage:
                yield sse(envelope.usage_chunk(usage))
            yield sse("[DONE]")
        except Exception as exc:  # after the headers: the error travels as an event, as OpenAI's do
            yield sse(as_wire_error(exc).body())
        finally:
            cancel.set()  # a client that left (Starlette cancels this generator) stops the engine now


async def _watch_disconnect(request: Request, cancel: threading.Event) -> None:
    while not cancel.is_set():
        message = await request.receive()
        if message["type"] == "http.disconnect":
            cancel.set()
            return
