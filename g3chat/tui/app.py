"""The g3chat chat app. Everything is injected: settings, the history store, paths, and the engine (or a
factory that builds it, called in the loading thread).

One thread at a time owns the engine: the loading worker, then one generation worker per answer. Answers
are produced in order from a queue, so a message sent while the model loads (or while another chat is
answering) waits its turn instead of being lost.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterable
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.screen import Screen
from textual.theme import Theme

from g3chat.config import Settings, write_setting
from g3chat.core.chat import with_overrides
from g3chat.core.engine.base import Engine, EngineFactory, ModelInfo
from g3chat.core.errors import G3ChatError
from g3chat.core.store import Store
from g3chat.paths import Paths
from g3chat.resources import themes_dir
from g3chat.tui import keys
from g3chat.tui import messages as msg
from g3chat.tui.approvals import ask_approval
from g3chat.tui.chat_tools import DENY, ChatTools, ToolsFactory
from g3chat.tui.generation import GenerationJob, load_engine, run_generation
from g3chat.tui.live_hearing import LiveHearing
from g3chat.tui.media_advisor import MediaAdvisor
from g3chat.tui.screens.chat_screen import ChatScreen
from g3chat.tui.themes import DEFAULT_THEME, load_themes

FRAME_RATE = 15  # most chat updates per second while an answer streams
UI_CPU_FACTOR = 30  # the next frame waits at least this many times the UI's CPU time since the last
LOAD_DELAY_S = 0.05  # after the first frame, before the model starts loading
GIL_SWITCH_S = 0.0002  # sys.setswitchinterval while an answer streams (Python's default is 0.005)
TEST_MODEL_NOTICE = (
    "Using the offline test model (Gemma 3 270M base): its answers are not meaningful. "
    "Set `model` in the config file or pass --model with a Gemma 3n GGUF."
)


class G3ChatApp(App[None]):
    CSS_PATH = Path(__file__).with_name("app.tcss")  # absolute: subclasses elsewhere find it too
    TITLE = "g3chat"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+q", "quit", "Quit", show=False, priority=True, id="quit"),
        Binding("ctrl+p", "command_palette", "Palette", show=False, priority=True, id="command_palette"),
    ]

    def __init__(
        self,
        *,
        settings: Settings,
        store: Store,
        paths: Paths,
        engine: Engine | None = None,
        engine_factory: EngineFactory | None = None,
        conversation_id: int | None = None,
        tools_factory: ToolsFactory | None = None,
    ) -> None:
        if engine is None and engine_factory is None:
            raise ValueError("G3ChatApp needs an engine or an engine factory")
        super().__init__()
        self.settings = settings
        self.store = store
        self.paths = paths
        self.engine: Engine | None = engine
        self._engine_factory = engine_factory
        self._owns_engine = engine is None  # an injected engine belongs to whoever made it
        self.initial_conversation = conversation_id
        self.model_state = "loading"  # loading | ready | failed
        self.model_info: ModelInfo | None = None
        self.load_error: str | None = None
        self.queue: list[int] = []
        self.job: GenerationJob | None = None
        self.engine_idle = threading.Event()  # set while no thread is using the engine
        self.engine_idle.set()
        self._saved_theme = settings.ui.theme
        self._chat_screen: ChatScreen | None = None
        self._switch_interval: float | None = None
        self.tools = ChatTools.from_settings(settings, tools_factory)  # loaded when an answer needs them
        self.media = MediaAdvisor(store, self._ready_engine, self._engine_free)
        self.live_hearing = LiveHearing(self)  # a recording read while it is made holds the engine

    # ------------------------------------------------------------------------------------- set-up

    def get_default_screen(self) -> Screen[Any]:
        self._chat_screen = ChatScreen()
        return self._chat_screen

    @property
    def chat_screen(self) -> ChatScreen:
        assert self._chat_screen is not None
        return self._chat_screen

    def on_mount(self) -> None:
        self.setup_themes()
        keymap, unknown = keys.keymap(self.settings.keys)
        if unknown:
            self.notify(
                f"[keys] in the config names unknown actions: {', '.join(unknown)}. "
                f"Known: {', '.join(sorted(keys.ACTION_NAMES))}",
                severity="warning",
                markup=False,
            )
        self.set_keymap(keymap)

    def on_ready(self) -> None:
        # The first frame is on screen: now load the model (importing llama.cpp holds the GIL for a while,
        # so starting earlier would delay the first paint). A short pause lets the frame reach the terminal.
        self.set_timer(LOAD_DELAY_S, self.start_loading)

    def start_loading(self) -> None:
        """Load the model in the background (called once the chat screen has painted)."""
        if self.model_state == "loading" and self.engine_idle.is_set():
            self.engine_idle.clear()
            self._load_worker()

    def setup_themes(self) -> None:
        folders = [themes_dir(), self.paths.themes_dir()]
        loaded, failed = load_themes(folders)
        for theme in loaded:
            self.register_theme(theme)
        for problem in failed:
            self.notify(f"Theme file skipped: {problem}", severity="warning", markup=False, timeout=10)
        wanted = self.settings.ui.theme
        if wanted not in self.available_themes:
            self.notify(f"Unknown theme {wanted!r}; using {DEFAULT_THEME}.", severity="warning", markup=False)
            wanted = DEFAULT_THEME if DEFAULT_THEME in self.available_themes else "textual-dark"
        self.theme = wanted
        self.theme_changed_signal.subscribe(self, self._theme_changed)

    def _theme_changed(self, theme: Theme) -> None:
        if theme.name == self._saved_theme:
            return
        try:
            write_setting(self.paths.config_file, "ui.theme", theme.name)
        except (G3ChatError, OSError) as exc:
            self.notify(f"Theme not saved: {exc}", severity="error", markup=False)
            return
        self._saved_theme = theme.name

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        if isinstance(screen, ChatScreen):
            shown = {b.binding.action: b.binding for b in screen.active_bindings.values()}
            for action in keys.ACTIONS:
                binding = shown.get(action.name)
                title = f"{action.title} ({self.get_key_display(binding)})" if binding else action.title
                yield SystemCommand(title, action.help, partial(screen.run_action, action.name))
            for action in keys.INPUT_ACTIONS:  # the message box's own, run on it
                if action.palette:
                    key = self.settings.keys.get(action.name, action.key).split(",")[0].strip()
                    title = f"{action.title} ({self.get_key_display(Binding(key, action.name))})"
                    yield SystemCommand(title, action.help, partial(screen.prompt.run_action, action.name))
        yield SystemCommand("Keys", "Show every key binding", self.action_show_help_panel)
        yield SystemCommand("Quit", "Quit g3chat (everything is saved)", self.action_quit)

    # ---------------------------------------------------------------------------------- the model

    @property
    def model_label(self) -> str:
        return self.model_info.name if self.model_info else "Assistant"

    def show_model_state(self) -> None:
        if not self.ui_alive():
            return
        header = self.chat_screen.header
        if self.model_state == "loading":
            header.set_status("loading the model…", "busy")
        elif self.model_state == "failed":
            header.set_status(f"model failed to load: {self.load_error}", "error")
        elif self.job is not None:
            header.set_status("answering… (Esc stops)", "busy")
        else:
            queued = f" · {len(self.queue)} queued" if self.queue else ""
            header.set_status(f"ready{queued}")
        info = self.model_info
        if info is not None:
            header.set_model(f"{info.name} · {info.engine_label}" if info.base_url else info.name)

    def _ready_engine(self) -> Engine | None:
        return self.engine if self.model_state == "ready" else None

    def _engine_free(self) -> bool:
        """No worker is using the engine (and none can start: they are started from this thread)."""
        return self.job is None and self.engine_idle.is_set()

    @work(thread=True, group="engine", exit_on_error=False, name="load model")
    def _load_worker(self) -> None:
        try:
            load_engine(self._engine_factory, self.engine, self._post_from_engine)
        finally:
            self.engine_idle.set()

    def _post_from_engine(self, message: Message) -> None:
        if isinstance(message, (msg.ModelLoaded, msg.ModelLoadFailed)) and message.engine is not None:
            self.engine = message.engine  # known at once, so shutdown can close it even mid-message
        self.post_message(message)

    def ui_alive(self) -> bool:
        """False while the app is closing: engine results may still arrive, with no widgets to show them."""
        screen = self._chat_screen
        return self.is_running and screen is not None and screen.is_attached and not self._exit

    async def on_model_loaded(self, event: msg.ModelLoaded) -> None:
        self.engine = event.engine
        self.model_info = event.info
        self.model_state = "ready"
        if not self.ui_alive():
            return
        notice = event.notice or (TEST_MODEL_NOTICE if event.info.is_test_model else None)
        if notice:
            self.notify(notice, severity="warning", timeout=12, markup=False)
        self.show_model_state()
        self.chat_screen.update_meter()
        await self._pump()

    async def on_model_load_failed(self, event: msg.ModelLoadFailed) -> None:
        self.model_state = "failed"
        self.load_error = event.error
        if not self.ui_alive():
            return
        self.show_model_state()
        await self.chat_screen.chat.remove_children(".-waiting")
        await self.chat_screen.chat.notice(
            f"✖ The model could not be loaded: {event.error}\n"
            "Your messages are saved. Fix the model (--model, or `model` in the config file) and restart."
        )
        self.notify(event.error, title="Model failed to load", severity="error", timeout=15, markup=False)

    # ---------------------------------------------------------------------------------- answering

    def is_generating(self, conversation_id: int | None) -> bool:
        return (
            self.job is not None
            and conversation_id is not None
            and self.job.conversation_id == conversation_id
        )

    async def request_answer(self, conversation_id: int) -> bool:
        """Queue an answer for the conversation's current branch; True if it started right away."""
        if conversation_id not in self.queue and not self.is_generating(conversation_id):
            self.queue.append(conversation_id)
        await self._pump()
        self.show_model_state()
        return self.is_generating(conversation_id)

    def unqueue(self, conversation_id: int) -> bool:
        if conversation_id in self.queue:
            self.queue.remove(conversation_id)
            self.show_model_state()
            return True
        return False

    def forget(self, conversation_id: int) -> None:
        """A conversation is being deleted: never answer it."""
        self.unqueue(conversation_id)

    def cancel_generation(self) -> None:
        if self.job is not None:
            self.job.cancel.set()

    async def _pump(self) -> None:
        """Start the next queued answer when the model is ready and idle."""
        while (
            self.model_state == "ready"
            and self.job is None
            and not self.live_hearing.active  # a recording being read holds the engine
            and self.queue
            and self.ui_alive()
        ):
            conversation_id = self.queue.pop(0)
            path = self.store.messages(conversation_id)
            if not path or path[-1].role != "user":
                continue  # already answered (two queued messages are answered together)
            conversation = self.store.get_conversation(conversation_id)
            params = with_overrides(self.settings.generation.params(), conversation.params)
            job = GenerationJob(conversation_id, params, self.model_label)
            job.tools = self.tools if self.tools.enabled(conversation) else None
            self.job = job
            self.engine_idle.clear()
            self.show_model_state()
            await self.chat_screen.answer_started(job)
            self._fast_gil_handoff(True)
            self._generate(job)

    def engine_released(self) -> None:
        """A recording read while it was made handed the engine back: start what waited."""
        self.call_later(self._pump)

    def _fast_gil_handoff(self, on: bool) -> None:
        """While an answer streams, make this (UI) thread hand the GIL to the engine thread quickly.

        The engine thread crosses into C (llama.cpp, through ctypes) many times per token and needs the GIL
        back after each call; with Python's default 5 ms switch interval a busy UI thread can make it wait
        that long every time. A short interval keeps decoding at the engine's own speed.
        """
        if on and self._switch_interval is None:
            self._switch_interval = sys.getswitchinterval()
            sys.setswitchinterval(GIL_SWITCH_S)
        elif not on and self._switch_interval is not None:
            sys.setswitchinterval(self._switch_interval)
            self._switch_interval = None

    @work(thread=True, group="engine", exit_on_error=False, name="generate")
    def _generate(self, job: GenerationJob) -> None:
        try:
            assert self.engine is not None
            run_generation(self.engine, self.store, job, self.post_message)
        finally:
            self.engine_idle.set()

    async def on_answer_grew(self, event: msg.AnswerGrew) -> None:
        """Show new text in frames: at most FRAME_RATE a second, and less often when showing costs more.

        Each frame re-lays out and repaints the chat, which costs this thread CPU time that the engine's
        threads could use. The next frame waits at least UI_CPU_FACTOR times the CPU time this thread spent
        since the last one, so the UI's share of a core stays near 1 / UI_CPU_FACTOR however slow the
        machine or long the conversation.
        """
        job = event.job
        wait = job.ui.shown_at + job.ui.frame_s - time.perf_counter()
        if wait > 0:
            if not job.ui.drain_scheduled:
                job.ui.drain_scheduled = True
                self.set_timer(wait, partial(self._show_new_text, job))
            return
        await self._show_new_text(job)

    async def _show_new_text(self, job: GenerationJob) -> None:
        job.ui.drain_scheduled = False
        job.ui.shown_at = time.perf_counter()
        cpu = time.thread_time()
        if job.ui.cpu_mark:
            job.ui.frame_s = max(1 / FRAME_RATE, (cpu - job.ui.cpu_mark) * UI_CPU_FACTOR)
        job.ui.cpu_mark = cpu
        text = job.buffer.drain()
        if job is not self.job or not self.ui_alive():
            return
        if text:
            job.ui.text += text
            await self.chat_screen.answer_grew(job, text)
        self.chat_screen.header.set_speed(job.buffer.rate())

    def on_prompt_evaluated(self, event: msg.PromptEvaluated) -> None:
        if event.total and self.ui_alive():
            if event.stage == "preamble":  # once per model and settings; restored from then on
                what = "preparing tools…" if event.job.tools is not None else "preparing the system prompt…"
            else:
                what = "reading the conversation"
            self.chat_screen.header.set_status(f"{what} {100 * event.done // event.total}%", "busy")

    async def on_context_trimmed(self, event: msg.ContextTrimmed) -> None:
        if self.ui_alive():
            await self.chat_screen.context_trimmed(event.job, event.dropped)

    async def on_answer_finished(self, event: msg.AnswerFinished) -> None:
        job = event.job
        try:
            rest = job.buffer.drain()
            if not self.ui_alive():
                return
            if rest:
                job.ui.text += rest
                await self.chat_screen.answer_grew(job, rest)
            if event.error:
                self.notify(event.error, title="Generation failed", severity="error", markup=False)
            usage = event.result.usage if event.result else None
            self.chat_screen.header.set_speed(usage.decode_tokens_per_s if usage else job.buffer.rate())
            await self.chat_screen.answer_finished(event)
        finally:
            self.job = None
            self._fast_gil_handoff(False)
        self.show_model_state()
        await self._pump()

    # --------------------------------------------------------------------------------- tool calls

    async def on_tool_call_began(self, event: msg.ToolCallBegan) -> None:
        job = event.job
        if job is not self.job or not self.ui_alive():
            return
        await self._show_new_text(job)  # the words before the call come first
        await self.chat_screen.tool_call_began(job, event.call)
        self.chat_screen.header.set_status(f"running {event.call.name or 'a tool'}… (Esc stops)", "busy")

    def on_tool_call_ended(self, event: msg.ToolCallEnded) -> None:
        if event.job is not self.job or not self.ui_alive():
            return
        self.chat_screen.tool_call_ended(event.call, event.result)
        self.show_model_state()

    def on_approval_needed(self, event: msg.ApprovalNeeded) -> None:
        job = event.job
        if job is not self.job or job.cancel.is_set() or not self.ui_alive():
            event.reply.answer(DENY)
            return
        elsewhere = job.conversation_id != self.chat_screen.conversation_id  # say which chat asks
        title = self.store.get_conversation(job.conversation_id).title if elsewhere else None
        chat = title or ("another chat" if elsewhere else None)
        ask_approval(self, job, event.request, event.reply, chat=chat, answered=self.show_model_state)
        self.chat_screen.tool_waiting(job)
        self.chat_screen.header.set_status(f"{event.request.tool} waits for your approval", "busy")

    def on_tools_notice(self, event: msg.ToolsNotice) -> None:
        if self.ui_alive():
            self.notify(event.text, title="Tools", severity=event.severity, timeout=12, markup=False)

    # ----------------------------------------------------------------------------------- shutdown

    async def action_quit(self) -> None:
        self.cancel_generation()
        self.exit()

    def on_unmount(self) -> None:
        self.cancel_generation()

    def shutdown(self, timeout: float = 60.0) -> None:
        """Stop any answer (it is saved as partial), wait for the engine thread, close an engine we own."""
        self.cancel_generation()
        self.live_hearing.stop(None)
        self.engine_idle.wait(timeout)
        self._fast_gil_handoff(False)
        self.tools.close()
        if self._owns_engine and self.engine is not None:
            self.engine.close()
            self.engine = None
