"""Prompt rendering: the GGUF's own chat template when it has one, else Gemma's turn format.

Rendering produces *segments*: text written by the template (tokenized with special tokens enabled, so
``<start_of_turn>`` becomes its control token) and text written by people (tokenized as plain text, so a
user who pastes ``<end_of_turn>`` cannot end their own turn). Message contents pass through the template
as placeholders and are substituted afterwards; a template that mangles the placeholders falls back to
rendering the real text as one special-enabled segment, as llama.cpp itself would (the substituted result
is checked against a direct render every time).

Attachments travel the same way: each becomes a marker (private-use characters and a per-render nonce, so
no text a person typed can forge one) inside its message's content, and every marker in the rendered
prompt becomes a *media segment* carrying the attachment; the engine turns media segments into the
projector's chunks, or into a short text note when the model cannot take them. A message's attachments
come before its text, as in Gemma's own prompts (a text file is no media segment: its text is written in
as a fenced block); a video frame is introduced by its time
(``clip.mp4 @ 0:03:``). Each media segment has a blank line on either side, written into the text
around it, as Gemma3nProcessor (and Gemma3Processor) expands the chat template's one image or audio token
into ``"\n\n<start_of_image>" + soft tokens + "<end_of_image>\n\n"``: the text before an image ends in
``"\n\n"`` and the text after it starts with ``"\n\n"``, so each is tokenized as the processor's whole
prompt is (``"user\n\n\n"`` is one token in Gemma's vocabulary, not ``"\n"`` and ``"\n\n"``).

Tool calls and results (typed parts) are written out as Gemma's tool protocol text (``tool_code`` and
``tool_outputs`` fences, see :mod:`g3chat.core.tools.protocol`) inside the message's own text, so they
are people's text too: a file that a tool read cannot inject control tokens.

Before rendering, history is normalized for Gemma's strict user/model alternation: system messages are
merged into one leading system message (the template folds it into the first user turn) and consecutive
messages of the same role are merged (e.g. a user message whose answer failed, followed by another).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from g3chat.core.media import textfile
from g3chat.core.tools.protocol import message_text
from g3chat.core.types import AttachmentPart, Message

BOS_TEXT = "<bos>"
START_OF_TURN = "<start_of_turn>"
END_OF_TURN = "<end_of_turn>"

_PLACEHOLDER = "\ue000{}\ue001"
_PLACEHOLDER_RE = re.compile("\ue000(\\d+)\ue001")


@dataclass(frozen=True)
class Segment:
    text: str
    special: bool  # True: template text (control tokens parsed); False: people's text (literal)
    media: AttachmentPart | None = None  # a media segment (``text`` is then its marker)


class MediaMarks:
    """Markers for the attachments of one render, and the split of rendered segments at them."""

    def __init__(self) -> None:
        self.nonce = secrets.token_hex(6)
        self.parts: list[AttachmentPart] = []
        self._re = re.compile(f"\ue002{self.nonce}:(\\d+)\ue003")

    def mark(self, part: AttachmentPart) -> str:
        self.parts.append(part)
        return f"\ue002{self.nonce}:{len(self.parts) - 1}\ue003"

    def split(self, segments: list[Segment]) -> list[Segment]:
        if not self.parts:
            return segments
        out: list[Segment] = []
        for seg in segments:
            position = 0
            for match in self._re.finditer(seg.text):
                if match.start() > position:
                    out.append(Segment(seg.text[position : match.start()], seg.special))
                out.append(Segment(match.group(0), False, self.parts[int(match.group(1))]))
                position = match.end()
            if position < len(seg.text):
                out.append(Segment(seg.text[position:], seg.special))
        return _blank_lines_around_media(out)


BLANK_LINE = "\n\n"


def _blank_lines_around_media(segments: list[Segment]) -> list[Segment]:
    """A blank line before and after every media segment, joined to the text next to it."""
    out: list[Segment] = []
    owed = False  # the blank line after the previous media segment is still to be written
    for seg in segments:
        if seg.media is None:
            out.append(Segment(BLANK_LINE + seg.text, seg.special) if owed else seg)
            owed = False
            continue
        if owed:  # two media segments in a row: the blank lines after one and before the next
            out.append(Segment(BLANK_LINE * 2, True))
        elif out and out[-1].media is None:
            out[-1] = Segment(out[-1].text + BLANK_LINE, out[-1].special)
        else:
            out.append(Segment(BLANK_LINE, True))
        out.append(seg)
        owed = True
    if owed:
        out.append(Segment(BLANK_LINE, True))
    return out


def content(message: Message, marks: MediaMarks | None = None) -> str:
    """A message's text with its attachments' markers first (media are left out without marks), then its
    text files as fenced blocks (see g3chat.core.media.textfile); the blank lines between media are added
    with the media segments (see _blank_lines_around_media)."""
    text = message_text(message)
    if message.role == "system":
        return text
    files = [textfile.block(p) for p in message.attachments if textfile.is_text(p)]
    if files:
        text = "\n\n".join([*files, text.strip()] if text.strip() else files)
    if marks is None:
        return text
    media = []
    for part in message.attachments:
        if textfile.is_text(part):
            continue
        label = f"{part.label}:" if part.timestamp is not None else ""
        media.append(label + marks.mark(part))  # the blank lines around each come with its segment
    return "".join(media) + text.strip() if media else text


def normalize(messages: Sequence[Message], marks: MediaMarks | None = None) -> list[tuple[str, str]]:
    """(role, text) pairs: one leading system message at most, then alternating user/assistant."""
    system_texts = [m.text for m in messages if m.role == "system" and m.text.strip()]
    turns: list[list[str]] = []
    roles: list[str] = []
    for m in messages:
        if m.role == "system":
            continue
        if roles and roles[-1] == m.role:
            turns[-1].append(content(m, marks))
        else:
            roles.append(m.role)
            turns.append([content(m, marks)])
    if roles and roles[0] == "assistant":
        roles.insert(0, "user")
        turns.insert(0, [""])
    out: list[tuple[str, str]] = []
    if system_texts:
        out.append(("system", "\n\n".join(system_texts)))
    out.extend((role, "\n\n".join(t for t in texts if t)) for role, texts in zip(roles, turns))
    return out


class GemmaTurnFormat:
    """The built-in format, identical to Gemma 3n's chat template for text messages."""

    name = "builtin-gemma"

    def __init__(self, bos_text: str = BOS_TEXT) -> None:
        self.bos_text = bos_text

    def segments(self, messages: Sequence[Message], add_generation_prompt: bool = True) -> list[Segment]:
        marks = MediaMarks()
        pairs = normalize(messages, marks)
        prefix = ""
        if pairs and pairs[0][0] == "system":
            prefix = pairs[0][1]
            pairs = pairs[1:]
        out: list[Segment] = [Segment(self.bos_text, True)]
        for index, (role, text) in enumerate(pairs):
            turn_role = "model" if role == "assistant" else role
            out.append(Segment(f"{START_OF_TURN}{turn_role}\n", True))
            if index == 0 and prefix:
                # Gemma's template does not trim the system text: its outer whitespace is kept, as template
                # text (the same split the Jinja path makes, so both tokenize identically).
                body = prefix.strip()
                out.append(Segment(prefix[: len(prefix) - len(prefix.lstrip())], True))
                out.append(Segment(body, False))
                out.append(
                    Segment(prefix[len(prefix.rstrip()) :] + "\n\n" if body else prefix + "\n\n", True)
                )
            body = text.strip()
            if body:
                out.append(Segment(body, False))
            out.append(Segment(f"{END_OF_TURN}\n", True))
        if add_generation_prompt:
            out.append(Segment(f"{START_OF_TURN}model\n", True))
        return marks.split(_merge(out))


class JinjaChatTemplate:
    """A chat template from GGUF metadata (``tokenizer.chat_template``), rendered in Jinja's sandbox."""

    name = "gguf-template"

    def __init__(self, source: str, bos_text: str = BOS_TEXT, eos_text: str = "<eos>") -> None:
        from jinja2.exceptions import TemplateError
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        def raise_exception(message: str) -> None:
            raise TemplateError(message)

        env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
        env.globals["raise_exception"] = raise_exception
        env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
        self._template = env.from_string(source)
        self.source = source
        self.bos_text = bos_text
        self.eos_text = eos_text

    def render(self, pairs: Sequence[tuple[str, str]], add_generation_prompt: bool) -> str:
        payload: list[dict[str, Any]] = [{"role": role, "content": text} for role, text in pairs]
        return self._template.render(
            messages=payload,
            add_generation_prompt=add_generation_prompt,
            bos_token=self.bos_text,
            eos_token=self.eos_text,
        )

    def segments(self, messages: Sequence[Message], add_generation_prompt: bool = True) -> list[Segment]:
        marks = MediaMarks()
        pairs = normalize(messages, marks)
        # Whitespace around each content stays outside its placeholder, so a template that trims content
        # trims it and one that keeps it keeps it (as template text: whitespace tokenizes the same way).
        masked: list[tuple[str, str]] = []
        bodies: list[str] = []
        for role, text in pairs:
            body = text.strip()
            lead = text[: len(text) - len(text.lstrip())]
            trail = text[len(text.rstrip()) :] if body else ""
            masked.append((role, f"{lead}{_PLACEHOLDER.format(len(bodies))}{trail}" if body else text))
            if body:
                bodies.append(body)
        rendered = self.render(masked, add_generation_prompt)
        out: list[Segment] = []
        position = 0
        for match in _PLACEHOLDER_RE.finditer(rendered):
            if match.start() > position:
                out.append(Segment(rendered[position : match.start()], True))
            out.append(Segment(bodies[int(match.group(1))], False))
            position = match.end()
        if position < len(rendered):
            out.append(Segment(rendered[position:], True))
        # A template that transforms content (upper-cases it, drops it, repeats it) breaks the substitution:
        # then render the real text as one special-enabled segment, as llama.cpp itself would.
        direct = self.render(pairs, add_generation_prompt)
        if render_text(out) != direct:
            return marks.split([Segment(direct, True)])
        return marks.split(_merge(out))


ChatFormat = GemmaTurnFormat | JinjaChatTemplate


def chat_format_for(template: str | None, bos_text: str = BOS_TEXT, eos_text: str = "<eos>") -> ChatFormat:
    """The GGUF's template when present and valid Jinja, else the built-in Gemma turn format."""
    if template and template.strip():
        return JinjaChatTemplate(template, bos_text, eos_text)
    return GemmaTurnFormat(bos_text)


def render_text(segments: Sequence[Segment]) -> str:
    return "".join(s.text for s in segments)


def _merge(segments: list[Segment]) -> list[Segment]:
    out: list[Segment] = []
    for seg in segments:
        if not seg.text:
            continue
        if out and out[-1].special == seg.special:
            out[-1] = Segment(out[-1].text + seg.text, seg.special)
        else:
            out.append(seg)
    return out
