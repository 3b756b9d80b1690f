"""The remote engine: any OpenAI-compatible chat-completions server (llama-server, the llama-cpp-python
server, vLLM, Ollama) behind the same :class:`~g3chat.core.engine.base.Engine` protocol as llama.cpp.

Answers stream over server-sent events. Failures before the answer starts raise one-line errors
(:mod:`g3chat.core.errors`); once text has arrived nothing is retried: a dropped connection or a stalled
server ends the turn with ``Finished("error")`` after the text so far, so the turn is saved, marked error.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import PurePosixPath
from typing import Any

import httpx2 as httpx

from g3chat.core.engine.base import MediaProblem, ModelInfo
from g3chat.core.engine.openai_wire import (
    NotEventStream,
    StreamState,
    context_size,
    error_text,
    match_model,
    model_entry,
    model_ids,
    request_body,
    sse_data,
)
from g3chat.core.engine.remote_http import CancelWatch, HttpSession, normalize_base_url
from g3chat.core.engine.remote_tokens import NOT_THERE, ServerTokenCounter, estimate_tokens
from g3chat.core.errors import EngineError, ServerFailedError, UnknownModelError
from g3chat.core.types import (
    AttachmentPart,
    EngineEvent,
    Finished,
    FinishReason,
    GenerationParams,
    Message,
    TextDelta,
    Usage,
)


class RemoteEngine:
    """Streams chat turns from an OpenAI-compatible server at ``base_url`` (e.g. http://host:8080/v1)."""

    def __init__(
        self,
        base_url: str,
        *,
        model: str | None = None,
        api_key: str | None = None,
        read_timeout: float = 120.0,
        retries: int = 3,
        backoff_s: float = 0.5,
    ) -> None:
        self.base_url = normalize_base_url(base_url)
        self.requested_model = model or None
        self.model: str | None = None
        self._http = HttpSession(
            self.base_url, api_key=api_key, read_timeout=read_timeout, retries=retries, backoff_s=backoff_s
        )
        self._info: ModelInfo | None = None
        self._listing: Any = None
        self._tokens = ServerTokenCounter(self._http)

    # ------------------------------------------------------------------------------------------ load

    @property
    def info(self) -> ModelInfo | None:
        return self._info

    @property
    def token_count_source(self) -> str | None:
        """How :meth:`count_tokens` counts: ``"server"`` (its tokenizer), ``"estimate"``, None (not yet)."""
        return self._tokens.source

    def list_models(self) -> list[dict[str, Any]]:
        """The server's ``GET /models`` entries (raises a one-line error when it cannot be asked)."""
        listing = self._models(required=True)
        entries = listing.get("data") if isinstance(listing, Mapping) else None
        if isinstance(entries, list) and entries:
            return [dict(e) for e in entries if isinstance(e, Mapping)]
        return [{"id": ident} for ident in model_ids(listing)]

    def _models(self, *, required: bool = False) -> Any:
        try:
            response = self._http.send("GET", self._http.url("models"), retry_connect=False)
        except ServerFailedError as exc:
            if exc.status in NOT_THERE and not required:
                return None
            raise
        assert response is not None
        try:
            return response.json()
        except ValueError:
            raise ServerFailedError(
                f"{self.base_url} does not look like an OpenAI-compatible server "
                f"(GET /models answered {response.headers.get('content-type', 'something')}, not JSON)"
            ) from None

    def _unknown(self, wanted: str) -> UnknownModelError:
        ids = model_ids(self._listing) if self._listing is not None else []
        has = f"it has: {', '.join(ids)}" if ids else "it lists none"
        return UnknownModelError(f"the server at {self.base_url} has no model {wanted!r} ({has})")

    def load(self) -> ModelInfo:
        if self._info is not None:
            return self._info
        started = time.perf_counter()
        self._listing = self._models()
        ids = model_ids(self._listing)
        if self.requested_model is not None:
            found = match_model(self.requested_model, self._listing) if self._listing is not None else None
            if self._listing is not None and found is None:
                raise self._unknown(self.requested_model)
            self.model = found or self.requested_model
        elif len(ids) == 1:
            self.model = ids[0]
        elif len(ids) > 1:
            raise UnknownModelError(
                f"the server at {self.base_url} has {len(ids)} models ({', '.join(ids)}): "
                "choose one with --model NAME or engine.model"
            )
        name = PurePosixPath(self.model).name if self.model else "(server default)"
        self._info = ModelInfo(
            name=name,
            path=None,
            n_ctx=context_size(model_entry(self._listing, self.model or "")),
            chat_format="server",
            load_s=time.perf_counter() - started,
            engine="remote",
            base_url=self.base_url,
        )
        return self._info

    def close(self) -> None:
        self._http.close()
        self._info = None

    # ------------------------------------------------------------------------------------ tokens

    def count_tokens(self, messages: Sequence[Message]) -> int:
        """The server's own count where it can tokenize (llama-server, vLLM, llama-cpp-python), else an
        estimate (about four characters a token); :attr:`token_count_source` says which."""
        return self._tokens.count(messages, self.model)

    def media_problem(self, part: AttachmentPart) -> MediaProblem | None:
        """Media are not sent to servers yet (text parts and text files travel)."""
        if part.kind == "text_file":
            return None
        return MediaProblem(
            "g3chat does not send attachments to a server yet", "use the local model with --mmproj for images"
        )

    # -------------------------------------------------------------------------------- generation

    def stream_chat(
        self,
        messages: Sequence[Message],
        params: GenerationParams,
        cancel: threading.Event | None = None,
        *,
        tools: Sequence[Mapping[str, Any]] | None = None,
        tool_choice: str | Mapping[str, Any] | None = None,
    ) -> Iterator[EngineEvent]:
        """Stream one answer. ``tools`` (OpenAI function specs) and ``tool_choice`` go to the server's
        ``tools`` API; the calls the model makes come back as
        :class:`~g3chat.core.engine.openai_wire.ToolCallRequest` events before the :class:`Usage`."""
        if self._info is None:
            raise EngineError("the model is not loaded")
        started = time.perf_counter()
        state = StreamState()
        reason: FinishReason | None = None
        error: str | None = None
        first_text: float | None = None
        last_text = 0.0
        body = request_body(messages, params, self.model, tools=tools, tool_choice=tool_choice)
        with CancelWatch(cancel) as watch:
            try:
                response = self._http.send(
                    "POST", self._http.url("chat/completions"), json_body=body, stream=True, watch=watch
                )
            except ServerFailedError as exc:
                if exc.status == 404 and self.model and "model" in str(exc).lower():
                    raise self._unknown(self.model) from None
                raise
            if response is None:
                reason = "cancelled"
            else:
                try:
                    for chunk in _chunks(response):
                        if cancel is not None and cancel.is_set():
                            reason = "cancelled"
                            break
                        if chunk is None:  # [DONE]
                            reason = state.finish_reason or "stop"
                            break
                        if "error" in chunk and not chunk.get("choices"):
                            reason, error = "error", f"the server failed mid-answer: {error_text(chunk)}"
                            break
                        text = state.feed(chunk)
                        if text:
                            last_text = time.perf_counter()
                            first_text = first_text or last_text
                            yield TextDelta(text)
                except (httpx.TransportError, NotEventStream, ValueError) as exc:
                    if cancel is not None and cancel.is_set():
                        reason = "cancelled"
                    else:
                        reason, error = "error", self._stream_failure(exc, first_text is not None)
                finally:
                    response.close()
        if reason is None:  # the stream ended without [DONE]
            if state.finish_reason is not None:
                reason = state.finish_reason
            else:
                reason, error = "error", self._stream_failure(None, first_text is not None)
        # The OpenAI tool calls, as ToolCallRequest events: EngineEvent does not list them (they are defined
        # in openai_wire, which core.types cannot import); callers that asked for tools look for them.
        yield from state.tools.calls()  # type: ignore[misc]
        yield self._usage(state, messages, started, first_text, last_text, clean=reason in ("stop", "length"))
        yield Finished(reason, error)

    def _stream_failure(self, exc: Exception | None, had_text: bool) -> str:
        if isinstance(exc, httpx.TimeoutException):
            return (
                f"the server at {self.base_url} sent nothing for {self._http.read_timeout:g} s (read timeout)"
            )
        if isinstance(exc, NotEventStream):
            return f"the server at {self.base_url} did not stream server-sent events ({exc})"
        if isinstance(exc, ValueError):
            return f"the server at {self.base_url} sent a malformed event ({exc})"
        when = "mid-answer" if had_text else "before answering"
        return f"the connection to the server at {self.base_url} dropped {when}"

    def _usage(
        self,
        state: StreamState,
        messages: Sequence[Message],
        started: float,
        first_text: float | None,
        last_text: float,
        *,
        clean: bool,
    ) -> Usage:
        now = time.perf_counter()
        usage, timings = state.usage or {}, state.timings or {}
        if usage:
            prompt = int(usage.get("prompt_tokens") or 0)
            completion = int(usage.get("completion_tokens") or 0)
        else:  # llama.cpp servers send one chunk per token; the prompt is counted by the server if it can
            completion = state.content_chunks
            prompt = self.count_tokens(messages) if clean else estimate_tokens(messages)
        cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
        prompt_eval = int(timings.get("prompt_n", prompt - cached))
        rate = timings.get("predicted_per_second")
        if rate is None and first_text is not None and completion > 1 and last_text > first_text:
            rate = (completion - 1) / (last_text - first_text)
        prompt_ms = timings.get("prompt_ms")
        return Usage(
            prompt_tokens=prompt,
            completion_tokens=completion,
            prompt_eval_tokens=prompt_eval,
            ttft_s=None if first_text is None else first_text - started,
            decode_tokens_per_s=float(rate) if rate else None,
            prompt_eval_s=prompt_ms / 1000 if prompt_ms is not None else (first_text or now) - started,
            total_s=now - started,
            estimated=not usage,
        )


def _chunks(response: httpx.Response) -> Iterator[dict[str, Any] | None]:
    """Parsed ``data:`` payloads of the event stream; None for ``[DONE]``."""
    content_type = response.headers.get("content-type", "").partition(";")[0].strip()
    if content_type != "text/event-stream":
        raise NotEventStream(f"content-type {content_type or 'missing'}")
    for data in sse_data(response.iter_lines()):
        data = data.strip()
        if not data:
            continue
        if data == "[DONE]":
            yield None
            return
        chunk = json.loads(data)
        if not isinstance(chunk, dict):
            raise ValueError(f"expected a JSON object, got {data[:60]!r}")
        yield chunk
