"""The one thread that owns the engine: it loads the model, then runs requests one at a time, in order.

llama.cpp's model is not thread-safe and the machine runs one answer at a time anyway, so requests queue
here instead of cutting off each other's answers. Each request is a :class:`Job` whose events cross to
the server's event loop through an :class:`asyncio.Queue`; cancelling it is its ``cancel`` event, which
the engine checks after every token (and which a job still waiting in the queue checks before it starts).
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

from g3chat.core.engine.base import Engine, ModelInfo
from g3chat.server.memory import AnswerMemory

State = Literal["loading", "ready", "failed"]
Work = Callable[[threading.Event], Iterable[Any]]


class _End:
    pass


END = _End()


@dataclass
class Job:
    work: Work
    cancel: threading.Event
    loop: asyncio.AbstractEventLoop
    events: asyncio.Queue[Any]

    def put(self, item: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the server's loop closed: nobody is listening
            self.loop.call_soon_threadsafe(self.events.put_nowait, item)

    async def next(self) -> Any:
        """The next event; END when the job is over. An exception the work raised is raised here."""
        item = await self.events.get()
        if isinstance(item, BaseException):
            raise item
        return item


class EngineWorker:
    def __init__(self, engine: Engine, *, load: Callable[[], ModelInfo] | None = None) -> None:
        self.engine = engine
        self._load = load if load is not None else engine.load
        self.memory = AnswerMemory()
        self.state: State = "loading"
        self.error: str | None = None
        self.info: ModelInfo | None = engine.info
        self.done: deque[Any] = deque(maxlen=32)  # each finished job's last event (diagnostics)
        self._jobs: queue.Queue[Job | None] = queue.Queue()
        self._current: Job | None = None
        self._thread = threading.Thread(target=self._run, name="g3chat-engine", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Cancel what runs and waits, then end the thread."""
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                break
            if job is not None:
                job.cancel.set()
                job.put(END)
        if self._current is not None:
            self._current.cancel.set()
        self._jobs.put(None)
        if self._thread.is_alive():
            self._thread.join(timeout=60)

    def submit(self, work: Work, cancel: threading.Event) -> Job:
        job = Job(work, cancel, asyncio.get_running_loop(), asyncio.Queue())
        self._jobs.put(job)
        return job

    @property
    def pending(self) -> int:
        return self._jobs.qsize()

    def _run(self) -> None:
        try:
            self.info = self.info if self.engine.info is not None else self._load()
            self.state = "ready"
        except Exception as exc:  # a model that does not load: every request is told why
            self.state, self.error = "failed", str(exc) or type(exc).__name__
        while True:
            job = self._jobs.get()
            if job is None:
                return
            if job.cancel.is_set():  # the client left while it waited
                job.put(END)
                continue
            self._current = job
            last = None
            try:
                for item in job.work(job.cancel):
                    job.put(item)
                    last = item
                self.done.append(last)
            except Exception as exc:
                job.put(exc)
            finally:
                self._current = None
                job.put(END)
