"""The chat screen's actions: new, search, stop, regenerate, edit and branch, copy, rename, delete,
per-chat settings. Each is bound to a key (see :mod:`g3chat.tui.keys`) and listed in the command palette."""

from __future__ import annotations

from typing import TYPE_CHECKING

from g3chat.core.types import user
from g3chat.tui.widgets.conversation_list import ConversationList
from g3chat.tui.widgets.message_view import MessageView

# The dialogs are imported when first opened: the window should be up before they are loaded.
if TYPE_CHECKING:
    from g3chat.core.search import SearchHit
    from g3chat.tui.screens.chat_screen import ChatScreen
    from g3chat.tui.screens.chat_settings_screen import ChatSettings

    _Base = ChatScreen
else:
    _Base = object


class ChatActions(_Base):
    # ------------------------------------------------------------------------------------- helpers

    def selected(self) -> MessageView | None:
        focused = self.focused
        return focused if isinstance(focused, MessageView) and focused.message_id is not None else None

    def _last(self, role: str) -> MessageView | None:
        for view in reversed(self.chat.messages()):
            if view.role == role and view.message_id is not None:
                return view
        return None

    def _busy_here(self) -> bool:
        if self.g3.is_generating(self.conversation_id):
            self.notify(
                "An answer is being generated here: wait, or press Esc to stop it.", severity="warning"
            )
            return True
        return False

    # -------------------------------------------------------------------------------- conversations

    async def action_new_chat(self) -> None:
        await self.open_conversation(None)
        self.prompt.focus()

    def action_toggle_sidebar(self) -> None:
        sidebar = self.query_one(ConversationList)
        sidebar.toggle_class("-hidden")
        if sidebar.has_class("-hidden") and sidebar.has_focus:
            self.prompt.focus()

    def action_rename_chat(self) -> None:
        from g3chat.tui.screens.rename_screen import RenameScreen

        if self.conversation_id is None:
            self.notify("Nothing to rename yet: this chat is empty.")
            return
        conversation_id = self.conversation_id
        title = self.g3.store.get_conversation(conversation_id).title

        def done(new_title: str | None) -> None:
            if new_title:
                self.g3.store.rename_conversation(conversation_id, new_title)
                self.refresh_sidebar()

        self.app.push_screen(RenameScreen(title), done)

    def action_delete_chat(self) -> None:
        from g3chat.tui.screens.confirm_screen import ConfirmScreen

        if self.conversation_id is None or self._busy_here():
            return
        conversation = self.g3.store.get_conversation(self.conversation_id)

        async def done(yes: bool | None) -> None:
            if yes:
                self.g3.forget(conversation.id)
                self.g3.store.delete_conversation(conversation.id)
                await self.open_conversation(None)
                self.refresh_sidebar()
                self.notify(f"Deleted “{conversation.title or 'New chat'}”.")

        question = (
            f"Delete “{conversation.title or 'New chat'}” and its {conversation.message_count} messages?"
        )
        self.app.push_screen(ConfirmScreen(question), done)

    def action_chat_settings(self) -> None:
        from g3chat.tui.screens.chat_settings_screen import ChatSettingsScreen

        store = self.g3.store
        current = store.get_conversation(self.conversation_id) if self.conversation_id is not None else None
        system_prompt = current.system_prompt if current else self.g3.settings.generation.system_prompt

        async def done(result: ChatSettings | None) -> None:
            if result is None:
                return
            if self.conversation_id is None:
                self.conversation_id = store.create_conversation(system_prompt=result.system_prompt).id
            own = store.get_conversation(self.conversation_id).params
            kept = {"tools": own["tools"]} if "tools" in own else {}  # the F9 toggle is no sampling setting
            store.update_conversation(
                self.conversation_id, system_prompt=result.system_prompt, params={**kept, **result.params}
            )
            self.refresh_sidebar()
            self.notify("Chat settings saved; they apply from the next answer.")

        defaults = self.g3.settings.generation.params()
        self.app.push_screen(
            ChatSettingsScreen(system_prompt, current.params if current else {}, defaults), done
        )

    def action_toggle_tools(self) -> None:
        from g3chat.tui.chat_tools import PARAM_KEY

        tools = self.g3.tools
        if not tools.available:
            self.notify("Tools are not available in this window.")
            return
        store = self.g3.store
        if self.conversation_id is None:
            system_prompt = self.g3.settings.generation.system_prompt
            self.conversation_id = store.create_conversation(system_prompt=system_prompt).id
            self.refresh_sidebar()
        conversation = store.get_conversation(self.conversation_id)
        on = not tools.enabled(conversation)
        store.update_conversation(conversation.id, params={**conversation.params, PARAM_KEY: on})
        then = " from the next answer" if self.g3.is_generating(conversation.id) else ""
        if on:
            self.notify(f"Tools on for this chat{then}: reading runs at once; changes wait for your yes.")
        else:
            self.notify(f"Tools off for this chat{then}.")

    def action_change_theme(self) -> None:
        self.app.action_change_theme()

    # ------------------------------------------------------------------------------------- search

    def action_search(self) -> None:
        from g3chat.tui.screens.search_screen import SearchScreen

        self.app.push_screen(SearchScreen(self.g3.store), self.jump_to)

    async def jump_to(self, hit: SearchHit | None) -> None:
        if hit is None:
            return
        store = self.g3.store
        on_path = {m.id for m in store.messages(hit.conversation_id)}
        if hit.message_id not in on_path:
            if self.g3.is_generating(hit.conversation_id):
                self.notify("That message is on another branch of a chat that is answering now.")
                return
            store.set_current_leaf(hit.conversation_id, store.latest_leaf(hit.message_id))
        await self.open_conversation(hit.conversation_id, focus=hit.message_id)

    # -------------------------------------------------------------------------------- generation

    async def action_cancel(self) -> None:
        if self.g3.job is not None:
            self.g3.cancel_generation()
        elif self.conversation_id is not None and self.g3.unqueue(self.conversation_id):
            await self.chat.remove_children(".-waiting")
            self.notify("Not sent to the model; your message is saved.")
        elif not self.prompt.has_focus:
            self.prompt.focus()

    async def action_regenerate(self) -> None:
        if self.conversation_id is None or self._busy_here():
            return
        path = self.g3.store.messages(self.conversation_id)
        if not path:
            return
        leaf = path[-1]
        if leaf.role == "assistant":
            if leaf.parent_id is None:
                return
            self.g3.store.set_current_leaf(self.conversation_id, leaf.parent_id)
        await self.reload()
        await self.ask_for_answer()

    def action_edit_message(self) -> None:
        if self.conversation_id is None or self._busy_here():
            return
        target = self.selected()
        if target is None or target.role != "user":
            target = self._last("user")
        if target is None or target.message_id is None:
            self.notify("No message of yours to edit here.")
            return
        original = self.g3.store.get_message(target.message_id)
        from g3chat.tui.screens.edit_message_screen import EditMessageScreen

        async def done(text: str | None) -> None:
            if text is None or self.conversation_id != original.conversation_id:
                return
            parts = user(text, original.to_message().attachments).parts  # the attachments stay
            self.g3.store.add_message(self.conversation_id, "user", parts, parent_id=original.parent_id)
            await self.reload()
            await self.ask_for_answer()

        self.app.push_screen(EditMessageScreen(original.text), done)

    # ------------------------------------------------------------------------------------ branches

    def _branch_target(self) -> MessageView | None:
        selected = self.selected()
        if selected is not None and selected.branch is not None:
            return selected
        for view in reversed(self.chat.messages()):
            if view.branch is not None and view.message_id is not None:
                return view
        return None

    async def _flip(self, step: int) -> None:
        if self.conversation_id is None or self._busy_here():
            return
        target = self._branch_target()
        if target is None or target.message_id is None:
            self.notify("No other branches here. Regenerate or edit a message to make one.")
            return
        store = self.g3.store
        siblings = store.siblings(target.message_id)
        index = [m.id for m in siblings].index(target.message_id)
        chosen = siblings[(index + step) % len(siblings)]
        store.set_current_leaf(self.conversation_id, store.latest_leaf(chosen.id))
        await self.reload(focus=chosen.id)

    async def action_branch_prev(self) -> None:
        await self._flip(-1)

    async def action_branch_next(self) -> None:
        await self._flip(1)

    # ------------------------------------------------------------------------------ copy, select

    def _copy_target(self) -> MessageView | None:
        return self.selected() or self._last("assistant")

    def action_copy_message(self) -> None:
        target = self._copy_target()
        if target is None:
            self.notify("Nothing to copy yet.")
            return
        self.app.copy_to_clipboard(target.text)
        self.notify("Copied the message.")

    def action_copy_code(self) -> None:
        from g3chat.tui.screens.code_picker_screen import CodePickerScreen, code_blocks

        target = self._copy_target()
        blocks = code_blocks(target.text) if target is not None else []
        if not blocks:
            self.notify("No code block in that message.")
            return

        def copy(index: int | None) -> None:
            if index is not None:
                self.app.copy_to_clipboard(blocks[index][1])
                self.notify(f"Copied code block {index + 1}.")

        if len(blocks) == 1:
            copy(0)
        else:
            self.app.push_screen(CodePickerScreen(blocks), copy)

    def action_focus_messages(self) -> None:
        views = self.chat.messages()
        if views:
            views[-1].focus()

    async def action_select_message(self, step: int) -> None:
        views = self.chat.messages()
        focused = self.focused
        if not views or not isinstance(focused, MessageView) or focused not in views:
            return
        if focused is views[0] and step < 0 and self.chat.earlier:
            await self.chat.show_earlier()
            views = self.chat.messages()
        index = views.index(focused) + step
        if index >= len(views):
            self.prompt.focus()
        elif index >= 0:
            views[index].focus()
            self.chat.scroll_to_widget(views[index], animate=False)
