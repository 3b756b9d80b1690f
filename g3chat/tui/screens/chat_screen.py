"""The main screen: the conversation list, the chat, the message box, and every chat action.

The screen shows; the app owns the engine and the queue of answers to produce (see :mod:`g3chat.tui.app`).
Everything the user writes is committed to the store before anything else happens.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, OptionList

from g3chat.core.chat import title_for
from g3chat.core.store import StoredMessage
from g3chat.core.types import AttachmentPart, user
from g3chat.tui import keys
from g3chat.tui.screens.attach_actions import AttachActions, attachments_title
from g3chat.tui.screens.chat_actions import ChatActions
from g3chat.tui.screens.tool_views import ToolViews
from g3chat.tui.widgets.attachment_tray import AttachmentTray
from g3chat.tui.widgets.chat_header import ChatHeader
from g3chat.tui.widgets.chat_view import ChatView
from g3chat.tui.widgets.conversation_list import ConversationList
from g3chat.tui.widgets.message_view import MessageView
from g3chat.tui.widgets.prompt_input import PromptInput

if TYPE_CHECKING:
    # mypy loses G3ChatApp in the mixin cycle (ToolEvents' base is G3ChatApp); issue 15 item 2 ends it
    from g3chat.tui.app import G3ChatApp  # type: ignore[attr-defined]
    from g3chat.tui.generation import GenerationJob
    from g3chat.tui.messages import AnswerFinished


class ChatScreen(ChatActions, AttachActions, ToolViews, Screen[None]):
    BINDINGS = keys.bindings()
    AUTO_FOCUS = "PromptInput"

    def __init__(self) -> None:
        super().__init__()
        self.conversation_id: int | None = None
        self.used_tokens: int | None = None

    @property
    def g3(self) -> G3ChatApp:
        return self.app

    def compose(self) -> ComposeResult:
        yield ChatHeader()
        with Horizontal(id="body"):
            yield ConversationList(id="sidebar")
            with Vertical(id="main"):
                yield ChatView(id="chat")
                yield AttachmentTray(id="tray")
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

    async def on_mount(self) -> None:
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
            views = self.history_views(path, positions)
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
        text = await self.take_attach_commands(event.text)  # /image PATH and the like
        if text is None:
            return
        if self.g3.is_generating(self.conversation_id):
            self.notify("Wait for the answer to finish, or press Esc to stop it.", severity="warning")
            return
        attachments = self.tray.take()
        if not text.strip() and not attachments:
            return
        title = title_for(text) if text.strip() else attachments_title(attachments)
        store = self.g3.store
        if self.conversation_id is None:
            conversation = store.create_conversation(
                title,
                model=self.g3.model_info.name if self.g3.model_info else None,
                system_prompt=self.g3.settings.generation.system_prompt,
            )
            self.conversation_id = conversation.id
        elif not store.get_conversation(self.conversation_id).title:
            store.rename_conversation(self.conversation_id, title)
        message = store.add_message(self.conversation_id, "user", user(text, attachments).parts)  # first
        if attachments:
            self.sent_with_attachments(message.id)
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
        notes = self.media_notes(job.conversation_id)  # what the model cannot take, what frames cost
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
        if await self.tools_finished(event):
            return
        job = event.job
        saved = event.saved
        self.refresh_sidebar()
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
