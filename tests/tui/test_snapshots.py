"""Snapshot tests (pytest-textual-snapshot) at a fixed terminal size, over fixed history and a fake engine,
so nothing in them depends on time. Update them with ``pytest --snapshot-update`` after a deliberate change
and look at the SVGs (``tests/tui/__snapshots__``) before committing."""

from __future__ import annotations

import pytest

from g3chat.core.engine.fake import FakeEngine
from g3chat.core.errors import ModelFileError
from g3chat.core.store import Store
from g3chat.runtime import Runtime
from tests.tui.conftest import wait_until

SNAPSHOT_SIZE = (110, 34)

ANSWER = """## Sorting in Python

Two ways:

1. `sorted(items)` returns a **new** list.
2. `items.sort()` sorts in place.

```python
words = ["pear", "fig", "apple"]
print(sorted(words, key=len))
```
"""


@pytest.fixture(autouse=True)
def colour(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)  # snapshots show the theme's colours


def history(store: Store) -> int:
    store.create_conversation("Zebra facts")
    other = store.create_conversation("Trip to Lisbon")
    store.add_message(other.id, "user", "Three things to see in Lisbon?")
    store.add_message(other.id, "assistant", "Belém Tower, Alfama, and the LX Factory.")
    c = store.create_conversation("Sorting lists")
    store.add_message(c.id, "user", "How do I sort a list in Python?")
    first = store.add_message(
        c.id, "assistant", ANSWER, model="fake", prompt_tokens=120, completion_tokens=80
    )
    store.add_message(c.id, "user", "And in reverse?")
    answer = store.add_message(
        c.id, "assistant", "Pass `reverse=True`: `sorted(words, reverse=True)`", model="fake"
    )
    store.add_message(
        c.id, "assistant", "Use reversed", model="fake", status="partial", parent_id=answer.parent_id
    )
    assert first.id
    return c.id


def ready(app):
    async def run_before(pilot) -> None:
        await wait_until(pilot, lambda: app.model_state in ("ready", "failed"))
        app.chat_screen.prompt.cursor_blink = False  # a blinking cursor would make the picture random
        await pilot.pause()
        await pilot.pause()

    return run_before


def test_conversation_with_markdown_branches_and_partial(
    snap_compare, runtime: Runtime, store: Store
) -> None:
    conversation_id = history(store)
    app = runtime.chat_app(store, engine=FakeEngine(), conversation_id=conversation_id)
    assert snap_compare(app, terminal_size=SNAPSHOT_SIZE, run_before=ready(app))


def test_new_chat_in_the_light_theme(snap_compare, runtime: Runtime, store: Store) -> None:
    history(store)
    runtime.settings.ui.theme = "g3-light"
    app = runtime.chat_app(store, engine=FakeEngine())
    assert snap_compare(app, terminal_size=SNAPSHOT_SIZE, run_before=ready(app))


def test_search_results(snap_compare, runtime: Runtime, store: Store) -> None:
    history(store)
    app = runtime.chat_app(store, engine=FakeEngine())

    async def run_before(pilot) -> None:
        await ready(app)(pilot)
        await pilot.press("ctrl+f", *"sort")
        await pilot.pause()

    assert snap_compare(app, terminal_size=SNAPSHOT_SIZE, run_before=run_before)


def test_model_that_failed_to_load(snap_compare, runtime: Runtime, store: Store) -> None:
    broken = FakeEngine()
    broken.load_error = ModelFileError("/models/gemma.gguf: not a GGUF file (it starts with b'<htm')")
    runtime.settings.ui.theme = "g3-high-contrast"
    app = runtime.chat_app(store, engine=broken)
    assert snap_compare(app, terminal_size=SNAPSHOT_SIZE, run_before=ready(app))


def test_sidebar_hidden_amber(snap_compare, runtime: Runtime, store: Store) -> None:
    conversation_id = history(store)
    runtime.settings.ui.theme = "amber-crt"
    app = runtime.chat_app(store, engine=FakeEngine(), conversation_id=conversation_id)

    async def run_before(pilot) -> None:
        await ready(app)(pilot)
        await pilot.press("ctrl+b")
        await pilot.pause()

    assert snap_compare(app, terminal_size=SNAPSHOT_SIZE, run_before=run_before)


def test_attachments_sent_and_pending(snap_compare, runtime: Runtime, store: Store, tmp_path) -> None:
    import numpy as np
    from PIL import Image

    from g3chat.core.media.audio import attach_audio
    from g3chat.core.media.images import attach_image
    from g3chat.core.types import user
    from tests.fixtures import media_files as mf

    media = runtime.media_store()
    picture = Image.new("RGB", (64, 48), mf.BLUE)
    picture.paste(mf.RED, (0, 24, 64, 48))
    picture.paste((240, 200, 40), (40, 6, 52, 18))
    picture.save(tmp_path / "sunset.png")
    image = attach_image(media, tmp_path / "sunset.png")
    swell = mf.tone(2.0, 16000, amp=0.9) * np.sin(np.linspace(0, np.pi, 32000))  # a waveform with a shape
    memo = attach_audio(media, mf.wav(tmp_path / "memo.wav", swell, 16000))
    pending = attach_image(media, mf.image(tmp_path / "leaf.png", "PNG", size=(30, 40), color=(40, 160, 60)))
    c = store.create_conversation("Holiday pictures")
    store.add_message(c.id, "user", user("What time of day is this?", [image, memo]).parts)
    store.add_message(c.id, "assistant", "Sunset: the sun sits low over a red horizon.", model="fake")
    app = runtime.chat_app(store, engine=FakeEngine(vision=True, audio=True), conversation_id=c.id)

    async def run_before(pilot) -> None:
        await ready(app)(pilot)
        app.chat_screen.tray.add([pending])
        app.chat_screen.prompt.text = "And this one?"
        await pilot.pause()
        await pilot.pause()

    assert snap_compare(app, terminal_size=SNAPSHOT_SIZE, run_before=run_before)
