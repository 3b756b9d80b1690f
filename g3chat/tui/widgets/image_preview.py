"""An inline image preview drawn with half-block pixels (two pixels per terminal cell)."""

from __future__ import annotations

from pathlib import Path

from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip
from textual.widget import Widget

from g3chat.core.media.preview import Cell, half_block_cells

UPPER_HALF = "▀"


class ImagePreview(Widget):
    """Shows an image file scaled to the widget, aspect kept. Cells are recomputed only on resize."""

    DEFAULT_CSS = """
    ImagePreview { width: 32; height: 12; }
    """

    def __init__(self, path: Path | str, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.path = Path(path)
        self._cells: list[list[Cell]] = []
        self._cells_for: tuple[int, int] = (0, 0)
        self.error: str | None = None

    def cells(self) -> list[list[Cell]]:
        size = (self.size.width, self.size.height)
        if size != self._cells_for:
            self._cells_for = size
            try:
                self._cells = half_block_cells(self.path, *size)
                self.error = None
            except (OSError, ValueError) as exc:
                self._cells, self.error = [], f"cannot preview {self.path.name}: {exc}"
        return self._cells

    def render_line(self, y: int) -> Strip:
        cells = self.cells()
        base = self.rich_style  # every segment has a style: filters such as NO_COLOR's need one
        if y >= len(cells):
            if y == 0 and self.error:
                return Strip([Segment(self.error[: self.size.width], base)])
            return Strip.blank(self.size.width, base)
        segments = [
            Segment(UPPER_HALF, base + Style(color=_hex(upper), bgcolor=_hex(lower)))
            for upper, lower in cells[y]
        ]
        return Strip(segments).extend_cell_length(self.size.width, base)

    def on_resize(self) -> None:
        self.refresh()


def _hex(rgb: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)
