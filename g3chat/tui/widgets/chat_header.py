"""The top bar: the model, the conversation's role (when it has one), what it is doing, the context meter
(tokens used / n_ctx) and live tokens/s."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Static

WARN_AT = 0.75
FULL_AT = 0.9


def meter_text(used: int | None, n_ctx: int | None, width: int = 10) -> str:
    if not n_ctx:
        return "ctx –"
    used = used or 0
    filled = min(width, round(width * used / n_ctx))
    return f"ctx {'█' * filled}{'░' * (width - filled)} {used}/{n_ctx}"


class ChatHeader(Horizontal):
    DEFAULT_CSS = """
    ChatHeader { height: 1; background: $panel; color: $foreground; }
    ChatHeader > Static { width: auto; padding: 0 1; }
    ChatHeader > #app-name { color: $primary; text-style: bold; }
    ChatHeader > #model { color: $foreground; }
    ChatHeader > #role { color: $secondary; display: none; }
    ChatHeader > #role.-shown { display: block; }
    ChatHeader > #status { width: 1fr; color: $text-muted; }
    ChatHeader > #status.-busy { color: $accent; }
    ChatHeader > #status.-error { color: $error; }
    ChatHeader > #meter.-warn { color: $warning; }
    ChatHeader > #meter.-full { color: $error; }
    ChatHeader > #speed { color: $text-muted; min-width: 12; }
    """

    def compose(self) -> ComposeResult:
        yield Static("g3chat", id="app-name", markup=False)
        yield Static("", id="model", markup=False)
        yield Static("", id="role", markup=False)
        yield Static("", id="status", markup=False)
        yield Static(meter_text(None, None), id="meter", markup=False)
        yield Static("", id="speed", markup=False)

    def _part(self, name: str) -> Static:
        """One of the header's fields; a detached stand-in while the app is closing (updates are dropped)."""
        for part in self.query_children(f"#{name}").results(Static):
            return part
        return Static()

    def set_model(self, name: str) -> None:
        self._part("model").update(name)

    def set_role(self, name: str | None) -> None:
        """The open conversation's role (hidden when it has none)."""
        role = self._part("role")
        role.update(f"role: {name}" if name else "")
        role.set_class(bool(name), "-shown")

    def set_status(self, text: str, kind: str = "") -> None:
        status = self._part("status")
        status.update(text)
        status.set_class(kind == "busy", "-busy")
        status.set_class(kind == "error", "-error")

    def set_context(self, used: int | None, n_ctx: int | None) -> None:
        meter = self._part("meter")
        meter.update(meter_text(used, n_ctx))
        share = (used or 0) / n_ctx if n_ctx else 0.0
        meter.set_class(WARN_AT <= share < FULL_AT, "-warn")
        meter.set_class(share >= FULL_AT, "-full")

    def set_speed(self, tokens_per_s: float | None) -> None:
        self._part("speed").update(f"{tokens_per_s:.1f} tok/s" if tokens_per_s else "")
