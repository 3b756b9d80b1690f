"""Pick a file to attach: a tree of folders and image/audio/video files."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DirectoryTree, Static

from g3chat.tui.widgets.media_file_tree import MediaFileTree


class AttachScreen(ModalScreen[Path | None]):
    DEFAULT_CSS = """
    AttachScreen { align: center middle; }
    AttachScreen > Vertical {
        width: 80%; max-width: 100; height: 80%; padding: 1 2; background: $panel; border: thick $primary;
    }
    AttachScreen MediaFileTree { height: 1fr; border: none; background: $panel; }
    AttachScreen .hint { color: $text-muted; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel"),
        Binding("backspace", "parent", "Parent folder"),
    ]

    def __init__(self, folder: Path) -> None:
        super().__init__()
        self.folder = folder

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(f"Attach a file from {self.folder}", id="where", markup=False)
            yield MediaFileTree(self.folder)
            yield Static(
                "Enter attaches the file (images, audio, video) · Backspace: parent folder · Esc cancels",
                classes="hint",
                markup=False,
            )

    def on_mount(self) -> None:
        self.query_one(MediaFileTree).focus()

    def on_directory_tree_file_selected(self, event: DirectoryTree.FileSelected) -> None:
        event.stop()
        self.dismiss(Path(event.path))

    def action_parent(self) -> None:
        tree = self.query_one(MediaFileTree)
        current = Path(tree.path)
        if current.parent != current:
            tree.path = current.parent
            self.query_one("#where", Static).update(f"Attach a file from {current.parent}")

    def action_cancel(self) -> None:
        self.dismiss(None)
