"""A file picker for attachments: a directory tree showing only folders and media files."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from textual.widgets import DirectoryTree

from g3chat.core.media.attach import kind_of


class MediaFileTree(DirectoryTree):
    """Folders and image/audio/video files; hidden entries are left out. Selecting a file posts
    ``DirectoryTree.FileSelected`` (its ``path`` goes to ``g3chat.core.media.attach``)."""

    def filter_paths(self, paths: Iterable[Path]) -> Iterable[Path]:
        return [
            path
            for path in paths
            if not path.name.startswith(".") and (_is_dir(path) or kind_of(path) is not None)
        ]


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except OSError:
        return False
