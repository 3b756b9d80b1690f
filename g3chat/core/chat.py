"""One chat turn against a stored conversation: the part `ask` and the TUI share.

The user's message is committed before generation starts. The answer is saved while it streams (its first
token inserts it, then a checkpoint at most every 32 tokens or second: g3chat.core.checkpoint), so even a
killed process keeps what the user read, and finally when the stream ends for any reason (finished,
cancelled, failed, or abandoned by the consumer), marked complete, partial or error.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import fields, replace
from typing import Any

from g3chat.core.checkpoint import EVERY_SECONDS, EVERY_TOKENS, Checkpointer
from g3chat.core.engine.base import Engine
from g3chat.core.errors import G3ChatError
from g3chat.core.store import Store, StoredMessage
from g3chat.core.types import (
    AttachmentPart,
    EngineEvent,
    GenerationParams,
    Message,
    Part,
    TextDelta,
    TurnResult,
)

TITLE_LENGTH = 60
PARAM_NAMES = ("temperature", "top_k", "top_p", "min_p", "repeat_penalty", "seed", "max_tokens")


def title_for(text: str, attachments: Sequence[AttachmentPart] = ()) -> str:
    """A conversation title from its first message: the first words on one line, or the names of its
    attachments when it has no words."""
    words = " ".join(text.split())
    if not words:
        words = ", ".join(dict.fromkeys(p.source or p.name for p in attachments))
    return words[:TITLE_LENGTH]


def post_question(
    store: Store,
    conversation_id: int | None,
    question: Message,
    *,
    model: str | None = None,
    system_prompt: str = "",
    params: dict[str, Any] | None = None,
) -> StoredMessage:
    """Commit the user's message before anything else happens: into a new conversation (titled from the
    message) when ``conversation_id`` is None, else under its current leaf (an untitled conversation, e.g.
    one made by changing its settings first, takes its title from this message). ``params``: a new
    conversation's own settings (a role's, for instance)."""
    title = title_for(question.text, question.attachments)
    if conversation_id is None:
        conversation_id = store.create_conversation(
            title, model=model, system_prompt=system_prompt, params=params
        ).id
    elif not store.get_conversation(conversation_id).title:
        store.rename_conversation(conversation_id, title)
    return store.add_message(conversation_id, "user", question.parts)


def with_overrides(params: GenerationParams, overrides: Mapping[str, Any]) -> GenerationParams:
    """``params`` with a conversation's own sampling settings (unknown names and None are ignored)."""
    known = {f.name for f in fields(GenerationParams)} & set(PARAM_NAMES)
    changes = {k: v for k, v in overrides.items() if k in known and v is not None}
    return replace(params, **changes)


def answer_status(result: TurnResult) -> str:
    if result.finish_reason in ("stop", "length"):
        return "complete"
    if result.finish_reason == "error":
        return "error"
    return "partial"  # cancelled, or the stream never finished


class Turn:
    """Iterate to stream the engine's events; afterwards ``result`` and ``saved`` describe the answer.

    ``parts`` turns the finished result into the saved message's parts (the tool loop saves text and
    tool calls); by default the answer is saved as its text. ``meta`` is merged into the saved meta.
    """

    def __init__(
        self,
        engine: Engine,
        messages: Sequence[Message],
        params: GenerationParams,
        *,
        cancel: threading.Event | None = None,
        store: Store | None = None,
        conversation_id: int | None = None,
        model_name: str | None = None,
        parts: Callable[[TurnResult], Sequence[Part]] | None = None,
        meta: dict[str, Any] | None = None,
        checkpoint_every: tuple[int, float] = (EVERY_TOKENS, EVERY_SECONDS),
    ) -> None:
        self.engine = engine
        self.messages = list(messages)
        self.params = params
        self.cancel = cancel or threading.Event()
        self.store = store
        self.conversation_id = conversation_id
        self.model_name = model_name
        self.parts = parts
        self.meta = meta or {}
        self.result = TurnResult()
        self.saved: StoredMessage | None = None
        self.checkpoint_every = checkpoint_every  # (tokens, seconds): a checkpoint after either
        self._checkpoints: Checkpointer | None = None

    def __iter__(self) -> Iterator[EngineEvent]:
        try:
            for event in self.engine.stream_chat(self.messages, self.params, self.cancel):
                self.result.feed(event)
                if isinstance(event, TextDelta):
                    self._checkpoint()
                yield event
        except G3ChatError as exc:
            self.result.finish_reason = "error"
            self.result.error = str(exc)
            raise
        finally:
            self._save()

    def _checkpoint(self) -> None:
        """Save the answer so far when a checkpoint is due (the first token inserts its row)."""
        if self.store is None or self.conversation_id is None:
            return
        if self._checkpoints is None:
            tokens, seconds = self.checkpoint_every
            self._checkpoints = Checkpointer(
                self.store,
                self.conversation_id,
                model=self.model_name,
                meta=self.meta,
                every_tokens=tokens,
                every_seconds=seconds,
            )
            self._checkpoints.begin(self.result.text)
        else:
            self._checkpoints.tick(lambda: self.result.text)

    def _save(self) -> None:
        if self.store is None or self.conversation_id is None or self.saved is not None:
            return
        result = self.result
        meta: dict[str, Any] = {"finish_reason": result.finish_reason, **self.meta}
        if result.usage is not None:
            meta["timings"] = {
                "ttft_s": result.usage.ttft_s,
                "decode_tokens_per_s": result.usage.decode_tokens_per_s,
            }
            if result.usage.completion_ids:
                meta["token_ids"] = list(result.usage.completion_ids)  # see Message.tokens
        parts = list(self.parts(result)) if self.parts is not None else result.text
        fields: dict[str, Any] = {
            "status": answer_status(result),
            "prompt_tokens": result.usage.prompt_tokens if result.usage else None,
            "completion_tokens": result.usage.completion_tokens if result.usage else None,
            "error": result.error,
            "meta": meta,
        }
        if self._checkpoints is not None and self._checkpoints.message_id is not None:
            self.saved = self.store.update_message(self._checkpoints.message_id, parts=parts, **fields)
        else:
            self.saved = self.store.add_message(
                self.conversation_id, "assistant", parts, model=self.model_name, **fields
            )
