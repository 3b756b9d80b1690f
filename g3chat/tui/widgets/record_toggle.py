"""A record toggle: press to record from the microphone, press again to stop; live level and time.

The recording runs in a thread worker (the core's :class:`~g3chat.core.media.mic.Recorder` blocks); its
level readings come back through ``call_from_thread``. The widget ends with one message: ``Recorded``
(the clip) or ``Failed`` (the MicrophoneError's one line, e.g. how to install PortAudio).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, ClassVar

from textual import work
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget

from g3chat.core.errors import G3ChatError
from g3chat.core.media.mic import Level, Recorder, Recording
from g3chat.core.media.preview import level_bar

RecorderFactory = Callable[[Callable[[Level], None]], Any]  # on_level -> an object with record(stop)


def default_recorder(on_level: Callable[[Level], None]) -> Recorder:
    return Recorder(max_seconds=120, silence_s=None, on_level=on_level)  # the user stops it


class RecordToggle(Widget, can_focus=True):
    DEFAULT_CSS = """
    RecordToggle { width: auto; min-width: 12; height: 1; padding: 0 1; background: $boost; }
    RecordToggle.-recording { background: $error 30%; }
    RecordToggle:focus { text-style: bold; }
    """
    BINDINGS: ClassVar = [("enter,space", "toggle", "Record")]

    recording: reactive[bool] = reactive(False)
    elapsed: reactive[float] = reactive(0.0)
    levels: reactive[tuple[float, ...]] = reactive(())

    class Recorded(Message):
        def __init__(self, recording: Recording) -> None:
            super().__init__()
            self.recording = recording

    class Failed(Message):
        def __init__(self, error: str) -> None:
            super().__init__()
            self.error = error

    def __init__(self, recorder_factory: RecorderFactory | None = None, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.recorder_factory = recorder_factory or default_recorder
        self._stop = threading.Event()

    def render(self) -> str:
        if not self.recording:
            return "● Rec"
        minutes, seconds = divmod(int(self.elapsed), 60)
        return f"■ {minutes}:{seconds:02d} {level_bar(list(self.levels[-8:])):<8}"

    def watch_recording(self, recording: bool) -> None:
        self.set_class(recording, "-recording")

    # The widget's own toggle action (its key binding), not DOMNode's action_toggle(attribute_name).
    def action_toggle(self) -> None:  # type: ignore[override]
        if self.recording:
            self._stop.set()
        else:
            self._stop = threading.Event()
            self.elapsed, self.levels, self.recording = 0.0, (), True
            self._record(self._stop)

    def stop(self) -> None:
        """Stop a recording in progress (its clip still arrives as ``Recorded``)."""
        self._stop.set()

    def on_unmount(self) -> None:
        self._stop.set()  # never leave the microphone open behind a closed window

    def on_click(self) -> None:
        self.action_toggle()

    def _level(self, level: Level) -> None:
        self.elapsed = level.elapsed_s
        self.levels = (*self.levels[-31:], level.level)

    @work(thread=True, exclusive=True, exit_on_error=False, group="record")
    def _record(self, stop: threading.Event) -> None:
        def on_level(level: Level) -> None:
            self.app.call_from_thread(self._level, level)

        try:
            result = self.recorder_factory(on_level).record(stop)
        except G3ChatError as exc:
            self.app.call_from_thread(self._finish, self.Failed(str(exc)))
        else:
            self.app.call_from_thread(self._finish, self.Recorded(result))

    def _finish(self, message: Message) -> None:
        self.recording = False
        self.post_message(message)
