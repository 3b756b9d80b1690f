"""Every chat action, its default key and what it does: the one table behind the key bindings, the
command palette, the footer and the README. ``[keys]`` in the config file rebinds them (action = "key")."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from textual.binding import Binding, BindingType


@dataclass(frozen=True)
class Action:
    name: str  # the action method (``action_<name>``) and the binding id used by ``[keys]``
    key: str
    title: str  # short, for the footer and the palette
    help: str
    footer: bool = False
    palette: bool = True  # listed in the command palette (the message box's keys: only where it says)


ACTIONS: tuple[Action, ...] = (
    Action("new_chat", "ctrl+n", "New chat", "Start a new conversation", footer=True),
    Action(
        "new_chat_role",
        "alt+n",
        "New chat with role…",
        "Start a new conversation with a role's system prompt and settings (g3chat roles list)",
    ),
    Action("toggle_sidebar", "ctrl+b", "Chats", "Show or hide the conversation list", footer=True),
    Action("search", "ctrl+f", "Search", "Search every conversation and jump to a hit", footer=True),
    Action("cancel", "escape", "Stop", "Stop the answer being generated (it is kept, marked partial)", True),
    Action("regenerate", "ctrl+r", "Regenerate", "Answer the last message again (a new branch)", True),
    Action("edit_message", "f4", "Edit", "Edit the selected (or last) message of yours and re-run", True),
    Action("branch_prev", "alt+left", "Prev branch", "Show the previous branch of the selected message"),
    Action("branch_next", "alt+right", "Next branch", "Show the next branch of the selected message"),
    Action("copy_message", "f5", "Copy", "Copy the selected (or last) answer to the clipboard (OSC 52)"),
    Action("copy_code", "f3", "Copy code", "Copy a code block of the selected (or last) answer"),
    Action("focus_messages", "ctrl+up", "Select messages", "Move into the messages (↑/↓ to move, Esc back)"),
    Action("rename_chat", "f2", "Rename", "Rename this conversation"),
    Action("delete_chat", "f8", "Delete", "Delete this conversation (asks first)"),
    Action("chat_settings", "ctrl+o", "Chat settings", "System prompt and sampling for this conversation"),
    Action("toggle_tools", "f9", "Tools on/off", "Let the model call tools in this conversation, or not"),
    Action("change_theme", "ctrl+t", "Theme", "Pick a theme (the choice is saved)"),
    Action("attach_file", "ctrl+l", "Attach", "Attach an image, audio or video file to the next message"),
    Action("record", "ctrl+s", "Record", "Record from the microphone (again to stop); the clip is attached"),
)

# Keys of the message input; rebindable with the same [keys] table.
INPUT_ACTIONS: tuple[Action, ...] = (
    Action(
        "newline",
        "ctrl+j,shift+enter",
        "Newline",
        "Insert a line break in the message (Enter sends)",
        palette=False,
    ),
    Action(
        "edit_in_editor",
        "ctrl+e",
        "Edit in $EDITOR",
        "Write the message in your editor ($VISUAL or $EDITOR); saving puts it back here",
    ),
)

# Keys of the tool approval dialog, fixed (y/a/n as `g3chat ask` asks on a terminal): key, answer, title.
APPROVAL_KEYS: tuple[tuple[str, str, str], ...] = (
    ("y", "once", "Approve once"),
    ("a", "always", "Always for this chat"),
    ("n", "deny", "Deny (the model is told)"),
    ("escape", "stop", "Deny and stop the answer"),
)

ACTION_NAMES = frozenset(a.name for a in (*ACTIONS, *INPUT_ACTIONS)) | {"quit", "command_palette"}


def bindings(actions: tuple[Action, ...] = ACTIONS) -> list[BindingType]:
    return [Binding(a.key, a.name, a.title, show=a.footer, id=a.name, tooltip=a.help) for a in actions]


def keymap(configured: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """The ``[keys]`` table as a Textual keymap, and the names in it that are not actions."""
    known = {name: key for name, key in configured.items() if name in ACTION_NAMES}
    unknown = sorted(name for name in configured if name not in ACTION_NAMES)
    return known, unknown
