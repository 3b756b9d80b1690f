"""The work of the engine thread: load the model, and answer one conversation turn.

Nothing here touches widgets. Results reach the UI as the small messages of :mod:`g3chat.tui.messages`,
posted through a ``post`` callable (``App.post_message``, which is safe from any thread). Answer text is
handed over through a :class:`DeltaBuffer` so that at most one "the answer grew" message is ever waiting
in the UI's queue, however fast tokens arrive.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from g3chat.core.answer import Answer, HistoryTrimmed
from g3chat.core.engine.base import Engine, EngineFactory
from g3chat.core.errors import G3ChatError
from g3chat.core.store import Store
from g3chat.core.types import GenerationParams, PromptProgress, TextDelta
from g3chat.tui import messages as msg

if TYPE_CHECKING:
    from g3chat.tui.chat_tools import ChatTools
    from g3chat.tui.screens.approval_screen import ApprovalScreen
    from g3chat.tui.widgets.message_view import MessageView

Post = Callable[[Any], object]  # App.post_message: takes the Textual messages of g3chat.tui.messages


class DeltaBuffer:
    """Answer text waiting for the UI, shared by the engine thread (push) and the UI (drain)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._chunks: list[str] = []
        self._wake_pending = False
        self.pieces = 0
        self.first_at: float | None = None
        self.last_at: float | None = None

    def push(self, text: str) -> bool:
        """Add text; True when the caller should wake the UI (no wake-up is already waiting)."""
        now = time.perf_counter()
        with self._lock:
            self._chunks.append(text)
            self.pieces += 1
            if self.first_at is None:
                self.first_at = now
            self.last_at = now
            if self._wake_pending:
                return False
            self._wake_pending = True
            return True

    def drain(self) -> str:
        with self._lock:
            text = "".join(self._chunks)
            self._chunks.clear()
            self._wake_pending = False
            return text

    def rate(self) -> float | None:
        """Pieces (about one per token) per second so far."""
        with self._lock:
            if self.first_at is None or self.last_at is None or self.pieces < 2:
                return None
            elapsed = self.last_at - self.first_at
            return (self.pieces - 1) / elapsed if elapsed > 0 else None


@dataclass
class GenerationJob:
    """One answer to produce: which conversation, with what settings, and how to stop it."""

    conversation_id: int
    params: GenerationParams
    model_name: str
    cancel: threading.Event = field(default_factory=threading.Event)
    buffer: DeltaBuffer = field(default_factory=DeltaBuffer)
    tools: ChatTools | None = None  # set when this answer may call tools
    ui: AnswerOnScreen = field(default_factory=lambda: AnswerOnScreen())  # the UI thread's, see below


@dataclass
class AnswerOnScreen:
    """What the UI thread keeps about a job's answer: the text shown so far, the widgets showing it, and the
    pacing of its frames. The engine thread never reads or writes it."""

    text: str = ""
    view: MessageView | None = None
    tool_view: MessageView | None = None  # the message holding this step's tool calls
    approval: ApprovalScreen | None = None  # the approval dialog on screen, if any
    done: bool = False
    shown_at: float = 0.0
    drain_scheduled: bool = False
    frame_s: float = 0.0  # the UI's current time between frames (see G3ChatApp.on_answer_grew)
    cpu_mark: float = 0.0


def load_engine(factory: EngineFactory | None, engine: Engine | None, post: Post) -> None:
    """Build (when needed) and load the engine, then report ModelLoaded or ModelLoadFailed."""
    notice = None
    try:
        if engine is None:
            assert factory is not None
            engine, notice = factory()
        info = engine.load()
    except G3ChatError as exc:
        post(msg.ModelLoadFailed(str(exc), engine))
        return
    except Exception as exc:  # an unexpected failure still becomes a message, never a crash
        post(msg.ModelLoadFailed(f"{type(exc).__name__}: {exc}", engine))
        return
    post(msg.ModelLoaded(engine, info, notice))


def run_generation(engine: Engine, store: Store, job: GenerationJob, post: Post) -> None:
    """Answer ``job``'s conversation (its current branch), saving the answer however the stream ends.

    With ``job.tools`` the answer runs the tool loop: each call and result is reported as it happens, and
    each step is saved as its own message."""
    from g3chat.core.tools.loop import ToolCallFinished, ToolCallStarted

    error: str | None = None
    answer: Answer | None = None
    try:
        tools = job.tools.for_answer(engine, post) if job.tools is not None else []
        plan = job.tools.plan(job, tools, post) if job.tools is not None and tools else None
        extra = job.tools.section_tokens(engine, tools) if job.tools is not None and tools else None
        answer = Answer(
            engine,
            store.history(job.conversation_id),
            job.params,
            cancel=job.cancel,
            store=store,
            conversation_id=job.conversation_id,
            model_name=job.model_name,
            tools=plan,
            tools_tokens=extra,
        )
        for event in answer:
            if isinstance(event, TextDelta):
                if job.buffer.push(event.text):
                    post(msg.AnswerGrew(job))
            elif isinstance(event, PromptProgress):
                post(msg.PromptEvaluated(job, event.done, event.total, event.stage))
            elif isinstance(event, HistoryTrimmed):
                post(msg.ContextTrimmed(job, event.dropped, event.tokens))
            elif isinstance(event, ToolCallStarted):
                post(msg.ToolCallBegan(job, event.call, event.mutating))
            elif isinstance(event, ToolCallFinished):
                post(msg.ToolCallEnded(job, event.call, event.result, event.approval))
    except G3ChatError as exc:
        error = str(exc)
    except Exception as exc:  # reported in the chat; the partial answer is saved by Turn
        error = f"{type(exc).__name__}: {exc}"
    finally:
        result = answer.result if answer is not None else None
        saved = answer.saved if answer is not None else None
        calls = len(answer.trace) if answer is not None else 0
        if error is None and result is not None and result.finish_reason == "error":
            error = result.error
        post(msg.AnswerFinished(job, result, saved, error, calls))
