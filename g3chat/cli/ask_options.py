"""The options of ``g3chat ask``, shared by ask and its tool loop (ask_tools) without importing either."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class AskOptions:
    prompt: str | None = None
    model: str | None = None
    server: str | None = None
    system: str | None = None
    role: str | None = None
    editor: bool = False
    temperature: float | None = None
    top_k: int | None = None
    top_p: float | None = None
    min_p: float | None = None
    seed: int | None = None
    max_tokens: int | None = None
    ctx: int | None = None
    threads: int | None = None
    continue_last: bool = False
    chat_id: int | None = None
    save: bool = True
    json_output: bool = False
    plain: bool = False
    verbose: bool = False
    tools: str | None = None  # "all" or NAME,NAME
    tool_choice: str = "auto"
    yes: bool = False
    images: list[str] = field(default_factory=list)
    audio: list[str] = field(default_factory=list)
    videos: list[str] = field(default_factory=list)
    mic: bool = False
    seconds: float | None = None
    mmproj: str | None = None

    @property
    def has_attachments(self) -> bool:
        return bool(self.images or self.audio or self.videos or self.mic)

    allow: str | None = None
    max_steps: int | None = None
