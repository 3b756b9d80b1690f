"""Attachment parts, prompt rendering with media, attach commands, previews and the support check."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from g3chat.core.engine.fake import FakeEngine
from g3chat.core.errors import MediaError, MediaUnsupportedError
from g3chat.core.media import support
from g3chat.core.media.attach import AttachRequest, attach, clean_path, describe, parse_command, pasted_path
from g3chat.core.media.preview import fit, half_block_cells
from g3chat.core.media.store import MediaStore
from g3chat.core.prompt import GemmaTurnFormat, JinjaChatTemplate, render_text
from g3chat.core.store import Store
from g3chat.core.types import AttachmentPart, OpaquePart, TextPart, assistant, part_from_json, user
from tests.conftest import FIXTURES
from tests.fixtures import media_files as mf


def _part(name: str = "cat.png", sha: str = "ab" * 32, **extra) -> AttachmentPart:
    return AttachmentPart("image", name, "image/png", f"/m/{sha}.png", sha, 10, width=4, height=3, **extra)


def test_attachment_json_round_trip_and_malformed_parts() -> None:
    part = _part()
    assert part_from_json(part.to_json()) == part
    frame = _part(source="clip.mp4", timestamp=63.0)
    assert part_from_json(frame.to_json()) == frame and frame.label == "clip.mp4 @ 1:03"
    broken = {"type": "image", "name": "x.png"}  # no path/sha: kept verbatim, never sent
    assert part_from_json(broken) == OpaquePart(broken)


def test_user_message_puts_attachments_first() -> None:
    message = user("What is it?", [_part()])
    assert isinstance(message.parts[0], AttachmentPart) and message.parts[1] == TextPart("What is it?")
    assert message.text == "What is it?" and message.attachments == (_part(),)
    assert user("", [_part()]).parts == (_part(),)


def test_store_keeps_attachment_parts(tmp_path: Path) -> None:
    with Store(tmp_path / "h.db") as store:
        chat = store.create_conversation("c")
        store.add_message(chat.id, "user", user("look", [_part()]).parts)
        [message] = store.messages(chat.id)
        assert message.parts == (_part(), TextPart("look"))
        assert store.history(chat.id)[0].attachments == (_part(),)


@pytest.mark.parametrize("fmt", ["builtin", "jinja"])
def test_prompt_media_segments(fmt: str) -> None:
    chat = (
        GemmaTurnFormat()
        if fmt == "builtin"
        else JinjaChatTemplate((FIXTURES / "gemma3n_template.jinja").read_text())
    )
    messages = [
        user("What is it?", [_part("a.png", "aa" * 32), _part("b.png", "bb" * 32)]),
        assistant("A cat."),
    ]
    segments = chat.segments([*messages, user("And now?")])
    media = [s for s in segments if s.media is not None]
    assert [s.media.name for s in media] == ["a.png", "b.png"]
    text = "".join("<M>" if s.media else s.text for s in segments)
    # as Gemma3nProcessor lays out two images: "\n\n<start_of_image>…<end_of_image>\n\n" each
    assert "<start_of_turn>user\n\n\n<M>\n\n\n\n<M>\n\nWhat is it?<end_of_turn>" in text
    assert all(not s.special for s in media)
    # the blank lines are joined to the text around the images, which is tokenized with them
    first = segments.index(media[0])
    assert segments[first - 1].text.endswith("user\n\n\n") and segments[first - 1].special
    last = segments.index(media[-1])
    assert segments[last + 1].text.startswith("\n\nWhat is it?") and not segments[last + 1].special
    # the text around media is unchanged from a text-only render
    plain = chat.segments([user("What is it?"), assistant("A cat."), user("And now?")])
    assert render_text(plain) == text.replace("\n\n<M>\n\n\n\n<M>\n\n", "")


def test_video_frames_are_labelled() -> None:
    frames = [_part(f"f{i}.jpg", f"{i}{i}" * 32, source="clip.mp4", timestamp=float(i)) for i in range(2)]
    segments = GemmaTurnFormat().segments([user("What happens?", frames)])
    text = "".join("<M>" if s.media else s.text for s in segments)
    assert "user\nclip.mp4 @ 0:00:\n\n<M>\n\nclip.mp4 @ 0:01:\n\n<M>\n\nWhat happens?" in text


def test_typed_text_cannot_forge_a_media_marker() -> None:
    forged = "\ue002deadbeef:0\ue003 hello"
    segments = GemmaTurnFormat().segments([user(forged, [_part()])])
    assert sum(s.media is not None for s in segments) == 1
    assert any(forged in s.text for s in segments if s.media is None)


def test_attach_commands_and_pasted_paths(tmp_path: Path) -> None:
    picture = mf.image(tmp_path / "My Photo.png", "PNG")
    assert parse_command(f'/image "{picture}"') == AttachRequest("image", picture)
    assert parse_command(f"/audio {tmp_path}/a.wav") == AttachRequest("audio", tmp_path / "a.wav")
    assert parse_command("/attach ~/x.mp4") == AttachRequest(None, Path("~/x.mp4").expanduser())
    assert parse_command("hello /image") is None
    with pytest.raises(MediaError, match="needs a file"):
        parse_command("/video")
    escaped = str(picture).replace(" ", "\\ ")
    assert pasted_path(escaped) == AttachRequest("image", picture)
    assert pasted_path(f"file://{str(picture).replace(' ', '%20')}") == AttachRequest("image", picture)
    assert pasted_path(f"'{picture}'\n") == AttachRequest("image", picture)
    assert pasted_path("just some text") is None and pasted_path(f"{picture}\n{picture}") is None
    assert pasted_path("word " * 100) is None and pasted_path("a\0b.png") is None  # not paths: no error
    assert clean_path("~/a b.png") == Path("~/a b.png").expanduser()


def test_attach_dispatch_and_describe(tmp_path: Path) -> None:
    store = MediaStore(tmp_path / "media")
    [image] = attach(store, AttachRequest(None, mf.image(tmp_path / "p.webp", "WEBP", size=(64, 48))))
    assert describe(image) == "p.webp 64×48"
    [audio] = attach(store, AttachRequest(None, mf.wav(tmp_path / "s.wav", mf.tone(2.0, 16000), 16000)))
    assert describe(audio) == "s.wav 0:02"
    with pytest.raises(MediaError, match="cannot tell what kind"):
        attach(store, AttachRequest(None, tmp_path / "data.bin"))


def test_half_block_cells_are_plain_colour_data() -> None:
    img = Image.new("RGB", (4, 4), mf.RED)
    img.paste(mf.BLUE, (0, 2, 4, 4))  # bottom half blue
    cells = half_block_cells(img, columns=4, rows=2)
    assert len(cells) == 2 and len(cells[0]) == 4
    assert cells[0][0] == (mf.RED, mf.RED) and cells[1][3] == (mf.BLUE, mf.BLUE)
    assert fit(1600, 400, 40, 10) == (40, 10)  # wide image: limited by columns, aspect kept
    assert fit(100, 400, 40, 10) == (5, 20)


def test_support_explains_per_reason() -> None:
    engine = FakeEngine(vision=False, audio=False)
    engine.load()
    audio = AttachmentPart("audio", "rec.wav", "audio/wav", "/m/r.wav", "cd" * 32, 10, sample_rate=16000)
    with pytest.raises(MediaUnsupportedError) as caught:
        support.check_sendable(engine, user("hi", [_part(), audio]))
    message = str(caught.value)
    assert message.startswith("this model has no vision projector: cat.png is kept in the conversation")
    assert "this model has no audio projector: rec.wav is kept" in message and "--mmproj" in message
    seeing = FakeEngine(vision=True, tokens_per_media=256)
    seeing.load()
    support.check_sendable(seeing, user("hi", [_part()]))
    assert support.token_cost(seeing, [], user("hi", [_part(), _part("b.png")])) == 512
