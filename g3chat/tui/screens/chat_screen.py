"""The main screen: the conversation list, the chat, the attachment tray, the message box, and every chat
action (bound to keys by :mod:`g3chat.tui.keys`).

The screen shows; the app owns the engine and the queue of answers to produce (see :mod:`g3chat.tui.app`).
Its parts do their own work and post messages up: the tray attaches files (commands, picker, microphone),
the chat view shows and selects messages and tool calls, :class:`ChatCommands` runs the dialogs on the open
conversation. Everything the user writes is committed to the store before anything else happens.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, cast

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, OptionList

from g3chat.core.chat import post_question
from g3chat.core.media.store import MediaStore
from g3chat.core.mentions import roots_for
from g3chat.core.roles import ROLE_KEY
from g3chat.core.store import StoredMessage
from g3chat.core.types import AttachmentPart, ToolCallPart, ToolResultPart, user
from g3chat.tui import keys
from g3chat.tui.approvals import close_approval
from g3chat.tui.history_views import history_views
from g3chat.tui.screens.chat_commands import ChatCommands
from g3chat.tui.widgets.attachment_tray import (
    MIC_MAX_S,
    MIC_SILENCE_S,
    AttachmentTray,
    ListenStart,
    ListenStop,
)
from g3chat.tui.widgets.chat_header import ChatHeader
from g3chat.tui.widgets.chat_view import ChatView
from g3chat.tui.widgets.conversation_list import ConversationList
from g3chat.tui.widgets.message_view import MessageView
from g3chat.tui.widgets.prompt_input import PromptInput
from g3chat.tui.widgets.tool_call_block import ToolCallBlock

if TYPE_CHECKING:
    from textual.notifications import SeverityLevel

    from g3chat.tui.app import G3ChatApp
    from g3chat.tui.generation import GenerationJob
    from g3chat.tui.messages import AnswerFinished


class ChatScreen(Screen[None]):
    BINDINGS = keys.bindings()
    AUTO_FOCUS = "PromptInput"

    def __init__(self) -> None:
        super().__init__()
        self.conversation_id: int | None = None
        self.used_tokens: int | None = None
        self.commands = ChatCommands(self)

    @property
    def g3(self) -> G3ChatApp:
        return cast("G3ChatApp", self.app)  # the screen of G3ChatApp only

    def compose(self) -> ComposeResult:
        yield ChatHeader()
        with Horizontal(id="body"):
            yield ConversationList(id="sidebar")
            with Vertical(id="main"):
                yield ChatView(id="chat")
                tools = self.g3.settings.tools
                yield AttachmentTray(
                    MediaStore(self.g3.paths.media_dir()),
                    self._advise,
                    roots=roots_for(tools.roots),
                    at_file_chars=tools.at_file_chars,
                    listen=self._listening(),
                    id="tray",
                )
                yield PromptInput(id="prompt")
        yield Footer()

    @property
    def header(self) -> ChatHeader:
        return self.query_one(ChatHeader)

    @property
    def chat(self) -> ChatView:
        return self.query_one(ChatView)

    @property
    def prompt(self) -> PromptInput:
        return self.query_one(PromptInput)

    @property
    def tray(self) -> AttachmentTray:
        return self.query_one(AttachmentTray)

    async def on_mount(self) -> None:
        self.prompt.complete_path = self.tray.suggest  # @path completion: the tray knows where it may read
        self.refresh_sidebar()
        self.g3.show_model_state()
        await self.open_conversation(self.g3.initial_conversation)

    # -------------------------------------------------------------------------------- conversations

    def refresh_sidebar(self) -> None:
        self.query_one(ConversationList).set_conversations(
            self.g3.store.list_conversations(), self.conversation_id
        )

    @on(OptionList.OptionSelected, "#sidebar")
    async def sidebar_selected(self, event: OptionList.OptionSelected) -> None:
        if event.option.id is not None:
            await self.open_conversation(int(event.option.id))
            self.prompt.focus()

    def _label(self, message: StoredMessage) -> str | None:
        if message.role == "assistant":
            return message.model or "Assistant"
        return None

    def view_for(self, message: StoredMessage, branch: tuple[int, int] | None) -> MessageView:
        return MessageView(
            message.role,
            message.text,
            message_id=message.id,
            status=message.shown_status,
            label=self._label(message),
            branch=branch,
            error=message.error,
            attachments=[p for p in message.parts if isinstance(p, AttachmentPart)],
        )

    async def open_conversation(self, conversation_id: int | None, *, focus: int | None = None) -> None:
        """Show a conversation's current branch (or an empty new chat when ``conversation_id`` is None)."""
        sidebar_had_focus = self.query_one(ConversationList).has_focus
        self.conversation_id = conversation_id
        views: list[MessageView] = []
        self.used_tokens = None
        if conversation_id is not None:
            path = self.g3.store.messages(conversation_id)
            positions = self.g3.store.branch_positions(conversation_id)
            running = self.g3.is_generating(conversation_id)
            views = history_views(path, positions, self.view_for, running=running)
            for m in reversed(path):
                if m.role == "assistant" and m.prompt_tokens is not None:
                    self.used_tokens = m.prompt_tokens + (m.completion_tokens or 0)
                    break
        job = self.g3.job
        if job is not None and job.ui.view is not None:
            await job.ui.view.stop_stream()  # the chat is about to be replaced
            job.ui.view = None
        if job is not None and job.conversation_id == conversation_id and not job.ui.done:
            job.ui.view = self._streaming_view(job)
            views.append(job.ui.view)
        elif conversation_id is not None and conversation_id in self.g3.queue:
            views.append(self._waiting_view())
        await self.chat.show(views)
        own = self.g3.store.get_conversation(conversation_id).params if conversation_id is not None else {}
        self.header.set_role(own.get(ROLE_KEY))
        self.query_one(ConversationList).mark(conversation_id)
        self.update_meter()
        target = await self.chat.reveal(focus) if focus is not None else None
        if target is not None:
            target.add_class("-hit")
            self.chat.scroll_to_widget(target, top=True, animate=False)
            target.focus()
        elif not sidebar_had_focus:
            self.prompt.focus()

    async def reload(self, *, focus: int | None = None) -> None:
        await self.open_conversation(self.conversation_id, focus=focus)

    def update_meter(self) -> None:
        info = self.g3.model_info
        self.header.set_context(self.used_tokens, info.n_ctx if info else None)

    # ------------------------------------------------------------------------------------ sending

    @on(PromptInput.Submitted)
    async def send(self, event: PromptInput.Submitted) -> None:
        taken = await self.tray.take_commands(event.text)  # /image PATH and the like
        if taken.failed and not self.prompt.text:
            self.prompt.text = event.text  # keep what was typed, to fix the path
        if taken.text is None:
            return
        text = taken.text
        if self.g3.is_generating(self.conversation_id):
            self.notify("Wait for the answer to finish, or press Esc to stop it.", severity="warning")
            if not self.prompt.text:
                self.prompt.text = event.text  # not sent: kept to send when the answer is done
            return
        if not await self.tray.take_mentions(text):  # @path: attached now, or refused with nothing sent
            if not self.prompt.text:
                self.prompt.text = event.text
            return
        attachments = self.tray.take()
        if not text.strip() and not attachments:
            return
        message = post_question(  # first
            self.g3.store,
            self.conversation_id,
            user(text, attachments),
            model=self.g3.model_info.name if self.g3.model_info else None,
            system_prompt=self.g3.settings.generation.system_prompt,
        )
        self.conversation_id = message.conversation_id
        if attachments:
            self.g3.media.sent(message.id)
        self.prompt.clear()
        await self.chat.add(self.view_for(message, None))
        self.refresh_sidebar()
        await self.ask_for_answer()

    async def ask_for_answer(self) -> None:
        """Queue an answer for the open conversation; show a placeholder until it starts."""
        assert self.conversation_id is not None
        if not await self.g3.request_answer(self.conversation_id):
            await self.chat.remove_children(".-waiting")
            await self.chat.add(self._waiting_view())

    def _waiting_view(self) -> MessageView:
        note = "waiting for the model to load" if self.g3.model_state == "loading" else "queued"
        if self.g3.model_state == "failed":
            note = "not answered: the model did not load"
        view = MessageView("assistant", label=self.g3.model_label, pending=note)
        view.add_class("-waiting")
        return view

    def _streaming_view(self, job: GenerationJob) -> MessageView:
        return MessageView(
            "assistant", job.ui.text, label=job.model_name, pending=None if job.ui.text else "thinking…"
        )

    # ----------------------------------------------------------------------------- engine results

    async def answer_started(self, job: GenerationJob) -> None:
        notes = self.g3.media.notes(job.conversation_id)  # what the model cannot take, what frames cost
        if job.conversation_id != self.conversation_id:
            return
        await self.chat.remove_children(".-waiting")
        for note in notes:
            await self.chat.notice(note)
        job.ui.view = self._streaming_view(job)
        await self.chat.add(job.ui.view)

    async def answer_grew(self, job: GenerationJob, text: str) -> None:
        view = job.ui.view
        if job.conversation_id != self.conversation_id:
            return
        if view is None:  # the text after tool calls: a new message
            job.ui.view = self._streaming_view(job)
            await self.chat.add(job.ui.view)
        elif view.is_attached:
            await view.write(text)

    async def answer_finished(self, event: AnswerFinished) -> None:
        job = event.job
        job.ui.done = True
        close_approval(job)
        self.refresh_sidebar()
        if event.tool_calls:  # show it as the history has it: each step its own message
            if job.conversation_id == self.conversation_id:
                await self.reload()
            return
        saved = event.saved
        if job.conversation_id != self.conversation_id:
            return
        view = job.ui.view
        if view is not None and view.is_attached:
            await view.end_stream(saved.text if saved is not None else job.ui.text)
            if saved is not None:
                view.message_id = saved.id
            view.set_status(saved.status if saved is not None else "error", event.error)
            if saved is not None and saved.prompt_tokens is not None:
                self.used_tokens = saved.prompt_tokens + (saved.completion_tokens or 0)
        self.update_meter()
        self.refresh_branches()

    def refresh_branches(self) -> None:
        if self.conversation_id is None:
            return
        positions = self.g3.store.branch_positions(self.conversation_id)
        for view in self.chat.messages():
            if view.message_id is not None and view.branch != positions.get(view.message_id):
                view.branch = positions.get(view.message_id)
                view.refresh_meta()

    async def context_trimmed(self, job: GenerationJob, dropped: int) -> None:
        if job.conversation_id == self.conversation_id:
            await self.chat.notice(
                before=job.ui.view,
                text=f"⚠ This conversation no longer fits the context window: the {dropped} oldest "
                f"message{'s' if dropped != 1 else ''} were left out of this answer "
                "(they stay in the history).",
            )

    # ------------------------------------------------------------------------------ tool calls

    async def tool_call_began(self, job: GenerationJob, call: ToolCallPart) -> None:
        """Close the answer's text so far and show the call under it; later text starts a new message."""
        streaming = job.ui.view if job.ui.view is not None and job.ui.view.is_attached else None
        job.ui.view, job.ui.text = None, ""  # the text so far is saved with the call; what follows: a new one
        if job.conversation_id != self.conversation_id:
            return
        view = streaming or job.ui.tool_view
        if view is None or not view.is_attached:
            return
        if streaming is not None and view is streaming:
            await streaming.end_stream(streaming.text)
        job.ui.tool_view = view
        await view.mount(ToolCallBlock(call.id, call.name, call.arguments))
        self.chat.scroll_end(animate=False)

    def tool_waiting(self, job: GenerationJob) -> None:
        if job.conversation_id == self.conversation_id:
            self.chat.show_call_waiting()

    def tool_call_ended(self, call: ToolCallPart, result: ToolResultPart) -> None:
        self.chat.show_call_result(call.id, result.status, result.content)

    # ---------------------------------------------------------------------------------- attaching

    def _listening(self) -> tuple[ListenStart, ListenStop]:
        """The tray's hooks for hearing a recording while it is made, as the open conversation's next turn."""
        hearing = self.g3.live_hearing
        return (lambda parts: hearing.start(self.conversation_id, parts)), hearing.stop

    def _advise(self, parts: Sequence[AttachmentPart]) -> tuple[str, SeverityLevel] | None:
        """What the loaded model can do with files just attached (see MediaAdvisor.on_attach)."""
        return self.g3.media.on_attach(parts, self.conversation_id)

    def on_attachment_tray_picker_closed(self) -> None:
        self.prompt.focus()

    async def on_prompt_input_file_pasted(self, event: PromptInput.FilePasted) -> None:
        await self.tray.attach(event.request)

    def on_attachment_tray_changed(self, event: AttachmentTray.Changed) -> None:
        self.prompt.allow_empty = bool(event.tray.attachments)

    # ------------------------------------------------------------------------------------ actions

    def busy_here(self) -> bool:
        """True (and a notification) while the open conversation is answering."""
        if self.g3.is_generating(self.conversation_id):
            self.notify(
                "An answer is being generated here: wait, or press Esc to stop it.", severity="warning"
            )
            return True
        return False

    async def action_new_chat(self) -> None:
        await self.open_conversation(None)
        self.prompt.focus()

    def action_new_chat_role(self) -> None:
        self.commands.new_with_role()

    def action_toggle_sidebar(self) -> None:
        sidebar = self.query_one(ConversationList)
        sidebar.toggle_class("-hidden")
        if sidebar.has_class("-hidden") and sidebar.has_focus:
            self.prompt.focus()

    def action_rename_chat(self) -> None:
        self.commands.rename()

    def action_delete_chat(self) -> None:
        self.commands.delete()

    def action_chat_settings(self) -> None:
        self.commands.settings()

    def action_toggle_tools(self) -> None:
        self.commands.toggle_tools()

    def action_search(self) -> None:
        self.commands.search()

    def action_change_theme(self) -> None:
        self.app.action_change_theme()

    def action_attach_file(self) -> None:
        self.tray.open_picker()

    def action_record(self) -> None:
        key = next(
            (
                self.app.get_key_display(b.binding)
                for b in self.active_bindings.values()
                if b.binding.action == "record"
            ),
            "record",
        )
        stops = f"{MIC_SILENCE_S:.0f} s of silence after you speak, or {MIC_MAX_S:.0f} s"
        self.tray.toggle_recording(f"recording · {key} stops (or {stops})")

    async def action_cancel(self) -> None:
        if self.g3.job is not None:
            self.g3.cancel_generation()
        elif self.conversation_id is not None and self.g3.unqueue(self.conversation_id):
            await self.chat.remove_children(".-waiting")
            self.notify("Not sent to the model; your message is saved.")
        elif not self.prompt.has_focus:
            self.prompt.focus()

    async def action_regenerate(self) -> None:
        await self.commands.regenerate()

    def action_edit_message(self) -> None:
        self.commands.edit_message()

    async def action_branch_prev(self) -> None:
        await self.commands.flip(-1)

    async def action_branch_next(self) -> None:
        await self.commands.flip(1)

    def action_copy_message(self) -> None:
        self.chat.copy_message()

    def action_copy_code(self) -> None:
        self.chat.copy_code()

    def action_focus_messages(self) -> None:
        self.chat.focus_last()

    async def action_select_message(self, step: int) -> None:
        if not await self.chat.step(step):
            self.prompt.focus()
