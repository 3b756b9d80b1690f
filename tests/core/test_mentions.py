"""``@path`` mentions: which tokens count, confinement to the allowed folders, and text files as parts."""

from __future__ import annotations

from pathlib import Path

import pytest

from g3chat.core.engine.fake import FakeEngine
from g3chat.core.engine.openai_wire import content_of
from g3chat.core.errors import MediaError
from g3chat.core.media import support, textfile
from g3chat.core.media.attach import describe
from g3chat.core.media.store import MediaStore
from g3chat.core.mentions import (
    MentionRefused,
    attach_mentions,
    complete,
    find_mentions,
    roots_for,
    suggestion,
)
from g3chat.core.prompt import GemmaTurnFormat, JinjaChatTemplate, render_text
from g3chat.core.types import AttachmentPart, part_from_json, user
from tests.conftest import FIXTURES
from tests.fixtures import media_files as mf


@pytest.fixture
def work(tmp_path: Path) -> Path:
    folder = tmp_path / "work"
    (folder / "src").mkdir(parents=True)
    (folder / "notes.md").write_text("# Notes\nthe otter sleeps at noon\n")
    (folder / "src" / "app.py").write_text("print('hi')\n")
    (folder / "my file.txt").write_text("spaced out\n")
    return folder


def _typed(text: str, root: Path) -> list[str]:
    return [m.typed for m in find_mentions(text, roots_for(cwd=root))]


def test_only_existing_files_count(work: Path) -> None:
    text = "see @notes.md, @src/app.py. mail me@example.com, ping @someone; @decorator and @src stay"
    assert _typed(text, work) == ["notes.md", "src/app.py"]
    assert _typed("(@notes.md) '@notes.md'", work) == ["notes.md", "notes.md"]
    assert _typed('read @"my file.txt" and @my\\ file.txt', work) == ["my file.txt", "my file.txt"]
    assert _typed(f"@{work / 'notes.md'}", work) == [str(work / "notes.md")]
    assert _typed("x@notes.md @nothere.md @", work) == []


def test_the_span_covers_the_mention_without_trailing_punctuation(work: Path) -> None:
    text = "see @notes.md!"
    (mention,) = find_mentions(text, roots_for(cwd=work))
    assert text[mention.start : mention.end] == "@notes.md" and mention.path == work / "notes.md"


def test_outside_the_roots_is_refused_and_nothing_is_attached(work: Path, tmp_path: Path) -> None:
    outside = tmp_path / "secret.txt"
    outside.write_text("top secret\n")
    (work / "link.txt").symlink_to(outside)
    store = MediaStore(tmp_path / "media")
    for text in (f"@notes.md then @{outside}", "@../secret.txt", "@link.txt"):
        with pytest.raises(MentionRefused, match="outside the folders g3chat may read"):
            attach_mentions(store, text, roots_for(cwd=work))
    assert store.files() == []  # the inside file before the refused one was not attached either
    # tools.roots lets it in
    attached = attach_mentions(store, f"@{outside}", roots_for(str(tmp_path), cwd=work))
    assert [p.name for p in attached.parts] == ["secret.txt"]


def test_text_files_are_stored_and_read_into_the_prompt(work: Path, tmp_path: Path) -> None:
    store = MediaStore(tmp_path / "media")
    attached = attach_mentions(store, "sum up @notes.md and @notes.md", roots_for(cwd=work))
    (part,) = attached.parts  # once, however often it is mentioned
    assert part.kind == "text_file" and part.name == "notes.md" and part.mime == "text/markdown"
    assert part_from_json(part.to_json()) == part and attached.notices == []
    assert describe(part) == "notes.md 33 chars"
    (work / "notes.md").unlink()  # the conversation keeps its own copy
    textfile._CACHE.clear()
    message = user("sum up @notes.md", attached.parts)
    segments = GemmaTurnFormat().segments([message])
    prompt = render_text(segments)
    assert "notes.md:\n```md\n# Notes\nthe otter sleeps at noon\n```\n\nsum up @notes.md" in prompt
    assert all(s.media is None for s in segments)  # text, not a media segment
    jinja = JinjaChatTemplate((FIXTURES / "gemma3n_template.jinja").read_text())
    assert render_text(jinja.segments([message])) == prompt  # the GGUF's own template: the same prompt
    people = "".join(s.text for s in segments if not s.special)
    assert "the otter sleeps" in people  # tokenized as people's text: a file cannot forge control tokens
    assert "the otter sleeps" in str(content_of(message.parts))  # remote engines send it as text
    assert support.problems(FakeEngine(), message.attachments) == []
    fake = FakeEngine()
    assert fake.count_tokens([message]) > fake.count_tokens([user("sum up @notes.md")])


def test_a_long_file_is_cut_with_a_notice(work: Path, tmp_path: Path) -> None:
    (work / "long.log").write_text("é" * 500 + "`" * 5 + "z" * 500)
    attached = attach_mentions(MediaStore(tmp_path / "m"), "@long.log", roots_for(cwd=work), max_chars=600)
    (part,) = attached.parts
    assert part.chars == 600 and part.original_size == 1000 + 500 + 5
    assert describe(part) == "long.log 600 chars (cut)"
    assert attached.notices == ["long.log: cut to its first 600 characters (the file has 1,505 bytes)"]
    block = textfile.block(part)
    assert block.startswith("long.log (its first 600 characters; the file has 1,505 bytes):\n``````log\n")
    assert block.endswith("z" * 95 + "\n``````")  # the fence is longer than the file's backtick run


def test_binary_and_non_utf8_files_are_refused(work: Path, tmp_path: Path) -> None:
    (work / "blob.bin").write_bytes(b"\x7fELF\x00\x01")
    (work / "latin.txt").write_bytes("café".encode("latin-1"))
    store = MediaStore(tmp_path / "m")
    with pytest.raises(MediaError, match=r"blob\.bin: a binary file"):
        attach_mentions(store, "@blob.bin", roots_for(cwd=work))
    with pytest.raises(MediaError, match=r"latin\.txt: not UTF-8 text"):
        attach_mentions(store, "@latin.txt", roots_for(cwd=work))


def test_media_are_attached_by_type(work: Path, tmp_path: Path) -> None:
    mf.image(work / "cat.png", "PNG", (8, 6))
    mf.wav(work / "note.wav", mf.tone(0.5, 16000), 16000)
    attached = attach_mentions(MediaStore(tmp_path / "m"), "@cat.png @note.wav", roots_for(cwd=work))
    assert [(p.kind, p.name) for p in attached.parts] == [("image", "cat.png"), ("audio", "note.wav")]
    assert all(isinstance(p, AttachmentPart) for p in attached.parts)


def test_completion_stays_inside_the_roots(work: Path, tmp_path: Path) -> None:
    (work / ".hidden").write_text("x")
    roots = roots_for(cwd=work)
    assert complete("", roots) == ["my file.txt", "notes.md", "src/"]
    assert complete("no", roots) == ["notes.md"]
    assert complete("src/", roots) == ["src/app.py"]
    assert complete(".h", roots) == [".hidden"]
    assert complete("../", roots) == [] and complete(f"{tmp_path}/", roots) == []


def test_the_suggestion_completes_the_mention_before_the_cursor(work: Path) -> None:
    (work / "notebook").mkdir()
    roots = roots_for(cwd=work)
    assert suggestion("look at @no", roots) == "te"  # notes.md and notebook/ share "note"
    assert suggestion("look at @note", roots) == "book/"  # no progress to share: the first, in order
    assert suggestion("@notes", roots) == ".md"
    assert suggestion("@src/a", roots) == "pp.py"
    assert suggestion("@my", roots) == "\\ file.txt" and suggestion('@"my f', roots) == 'ile.txt"'
    assert suggestion("@my\\ f", roots) == "ile.txt"
    assert suggestion("me@no", roots) == "" and suggestion("@notes.md ", roots) == ""
    assert suggestion("@zzz", roots) == "" and suggestion("@../", roots) == ""
