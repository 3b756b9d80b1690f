"""The commands on the open conversation: rename, delete, its settings, tools on or off, regenerate, edit a
message, flip between branches, search (which opens the conversation of the hit), and a new chat with a
role. The chat screen binds
them to keys (see :mod:`g3chat.tui.keys`); they work on the store and tell the screen what to show."""

from __future__ import annotations

from typing import TYPE_CHECKING

from g3chat.core.roles import ROLE_KEY
from g3chat.core.types import user

# The dialogs are imported when first opened: the window should be up before they are loaded.
if TYPE_CHECKING:
    from g3chat.core.search import SearchHit
    from g3chat.tui.app import G3ChatApp
    from g3chat.tui.screens.chat_screen import ChatScreen
    from g3chat.tui.screens.chat_settings_screen import ChatSettings


class ChatCommands:
    def __init__(self, screen: ChatScreen) -> None:
        self.screen = screen

    @property
    def g3(self) -> G3ChatApp:
        return self.screen.g3

    def rename(self) -> None:
        from g3chat.tui.screens.rename_screen import RenameScreen

        screen = self.screen
        conversation_id = screen.conversation_id
        if conversation_id is None:
            screen.notify("Nothing to rename yet: this chat is empty.")
            return
        title = self.g3.store.get_conversation(conversation_id).title

        def done(new_title: str | None) -> None:
            if new_title:
                self.g3.store.rename_conversation(conversation_id, new_title)
                screen.refresh_sidebar()

        self.g3.push_screen(RenameScreen(title), done)

    def delete(self) -> None:
        from g3chat.tui.screens.confirm_screen import ConfirmScreen

        screen = self.screen
        if screen.conversation_id is None or screen.busy_here():
            return
        conversation = self.g3.store.get_conversation(screen.conversation_id)

        async def done(yes: bool | None) -> None:
            if yes:
                self.g3.forget(conversation.id)
                self.g3.store.delete_conversation(conversation.id)
                await screen.open_conversation(None)
                screen.refresh_sidebar()
                screen.notify(f"Deleted “{conversation.title or 'New chat'}”.")

        question = (
            f"Delete “{conversation.title or 'New chat'}” and its {conversation.message_count} messages?"
        )
        self.g3.push_screen(ConfirmScreen(question), done)

    def _ensure_conversation(self, system_prompt: str) -> int:
        """The open conversation's id, creating it (empty) when the chat is new."""
        screen = self.screen
        if screen.conversation_id is None:
            screen.conversation_id = self.g3.store.create_conversation(system_prompt=system_prompt).id
            screen.refresh_sidebar()
        return screen.conversation_id

    def settings(self) -> None:
        from g3chat.tui.screens.chat_settings_screen import ChatSettingsScreen

        store = self.g3.store
        cid = self.screen.conversation_id
        current = store.get_conversation(cid) if cid is not None else None
        system_prompt = current.system_prompt if current else self.g3.settings.generation.system_prompt

        async def done(result: ChatSettings | None) -> None:
            if result is None:
                return
            conversation_id = self._ensure_conversation(result.system_prompt)
            own = store.get_conversation(conversation_id).params
            # The F9 toggle and the role's name are no sampling settings: the dialog leaves them alone.
            kept = {key: own[key] for key in ("tools", ROLE_KEY) if key in own}
            store.update_conversation(
                conversation_id, system_prompt=result.system_prompt, params={**kept, **result.params}
            )
            self.screen.refresh_sidebar()
            self.screen.notify("Chat settings saved; they apply from the next answer.")

        defaults = self.g3.settings.generation.params()
        self.g3.push_screen(
            ChatSettingsScreen(system_prompt, current.params if current else {}, defaults), done
        )

    def new_with_role(self) -> None:
        """Pick a role; a new conversation starts with its system prompt and settings (kept in its params)."""
        from g3chat.core.roles import conversation_params, load_roles, role_folders
        from g3chat.tui.screens.role_picker_screen import RolePickerScreen

        folders = role_folders(self.g3.paths)
        loaded, failed = load_roles(folders)
        for problem in failed:
            self.screen.notify(f"Role file skipped: {problem.error}", severity="warning", markup=False)
        if not loaded:
            self.screen.notify(f"No roles: add TOML files to {folders.user}.", markup=False)
            return

        async def done(name: str | None) -> None:
            if name is None or name not in loaded:
                return
            role = loaded[name]
            conversation = self.g3.store.create_conversation(
                system_prompt=role.role.system_prompt, params=conversation_params(role)
            )
            await self.screen.open_conversation(conversation.id)
            self.screen.refresh_sidebar()
            self.screen.prompt.focus()
            self.screen.notify(f"New chat as “{name}”: {role.role.description or 'role set'}.", markup=False)

        self.g3.push_screen(RolePickerScreen(loaded, str(folders.user)), done)

    def toggle_tools(self) -> None:
        from g3chat.tui.chat_tools import PARAM_KEY

        tools = self.g3.tools
        if not tools.available:
            self.screen.notify("Tools are not available in this window.")
            return
        store = self.g3.store
        conversation = store.get_conversation(
            self._ensure_conversation(self.g3.settings.generation.system_prompt)
        )
        on = not tools.enabled(conversation)
        store.update_conversation(conversation.id, params={**conversation.params, PARAM_KEY: on})
        then = " from the next answer" if self.g3.is_generating(conversation.id) else ""
        if on:
            self.screen.notify(
                f"Tools on for this chat{then}: reading runs at once; changes wait for your yes."
            )
        else:
            self.screen.notify(f"Tools off for this chat{then}.")

    async def regenerate(self) -> None:
        """Answer the last message again: a new branch."""
        screen = self.screen
        if screen.conversation_id is None or screen.busy_here():
            return
        path = self.g3.store.messages(screen.conversation_id)
        if not path:
            return
        leaf = path[-1]
        if leaf.role == "assistant":
            if leaf.parent_id is None:
                return
            self.g3.store.set_current_leaf(screen.conversation_id, leaf.parent_id)
        await screen.reload()
        await screen.ask_for_answer()

    def edit_message(self) -> None:
        """Edit the selected (or last) message of the person's, as a new branch, and answer it."""
        from g3chat.tui.screens.edit_message_screen import EditMessageScreen

        screen = self.screen
        if screen.conversation_id is None or screen.busy_here():
            return
        target = screen.chat.selected()
        if target is None or target.role != "user":
            target = screen.chat.last("user")
        if target is None or target.message_id is None:
            screen.notify("No message of yours to edit here.")
            return
        original = self.g3.store.get_message(target.message_id)

        async def done(text: str | None) -> None:
            if text is None or screen.conversation_id != original.conversation_id:
                return
            parts = user(text, original.to_message().attachments).parts  # the attachments stay
            self.g3.store.add_message(original.conversation_id, "user", parts, parent_id=original.parent_id)
            await screen.reload()
            await screen.ask_for_answer()

        self.g3.push_screen(EditMessageScreen(original.text), done)

    async def flip(self, step: int) -> None:
        """Show the previous or next branch of the selected (or latest branched) message."""
        screen = self.screen
        if screen.conversation_id is None or screen.busy_here():
            return
        target = screen.chat.branch_target()
        if target is None or target.message_id is None:
            screen.notify("No other branches here. Regenerate or edit a message to make one.")
            return
        store = self.g3.store
        siblings = store.siblings(target.message_id)
        index = [m.id for m in siblings].index(target.message_id)
        chosen = siblings[(index + step) % len(siblings)]
        store.set_current_leaf(screen.conversation_id, store.latest_leaf(chosen.id))
        await screen.reload(focus=chosen.id)

    def search(self) -> None:
        from g3chat.tui.screens.search_screen import SearchScreen

        self.g3.push_screen(SearchScreen(self.g3.store), self.jump_to)

    async def jump_to(self, hit: SearchHit | None) -> None:
        """Open the hit's conversation on the hit's branch, the hit selected."""
        if hit is None:
            return
        store = self.g3.store
        on_path = {m.id for m in store.messages(hit.conversation_id)}
        if hit.message_id not in on_path:
            if self.g3.is_generating(hit.conversation_id):
                self.screen.notify("That message is on another branch of a chat that is answering now.")
                return
            store.set_current_leaf(hit.conversation_id, store.latest_leaf(hit.message_id))
        await self.screen.open_conversation(hit.conversation_id, focus=hit.message_id)
