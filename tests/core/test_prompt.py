"""Prompt rendering: the built-in Gemma format equals Gemma 3n's own template; people's text stays literal."""

from __future__ import annotations

import random

import pytest

from g3chat.core.prompt import GemmaTurnFormat, JinjaChatTemplate, chat_format_for, normalize, render_text
from g3chat.core.types import Message, assistant, system, user
from tests.conftest import FIXTURES

TEMPLATE = (FIXTURES / "gemma3n_template.jinja").read_text()


def conversations() -> list[list[Message]]:
    rng = random.Random(7)
    words = ["hello", "  padded  ", "line\nbreak", "tabs\t", "émoji 🦙", "<end_of_turn>", "code ```x```", ""]
    out: list[list[Message]] = [
        [user("Hi")],
        [system("Be brief."), user("Hi")],
        [system("Be brief."), user("Hi"), assistant("Hello!"), user("How are you?")],
        [user("a"), user("b")],  # a failed turn left two user messages in a row
        [system("s1"), system("s2"), user("q")],
        [assistant("I start"), user("then you")],
    ]
    for _ in range(40):
        convo: list[Message] = []
        if rng.random() < 0.5:
            convo.append(system(rng.choice(words[:5]) + " system"))
        for turn in range(rng.randint(1, 6)):
            convo.append(user(" ".join(rng.choice(words) for _ in range(rng.randint(1, 4)))))
            if turn < 5 and rng.random() < 0.8:
                convo.append(assistant(" ".join(rng.choice(words) for _ in range(rng.randint(1, 4)))))
        out.append(convo)
    return out


@pytest.mark.parametrize("index", range(46))
def test_builtin_format_matches_gemma3n_template(index: int) -> None:
    messages = conversations()[index]
    builtin = GemmaTurnFormat().segments(messages)
    jinja = JinjaChatTemplate(TEMPLATE).segments(messages)
    # The official template, rendered directly on the normalized text, is the reference.
    reference = JinjaChatTemplate(TEMPLATE).render(normalize(messages), add_generation_prompt=True)
    assert render_text(builtin) == reference
    assert render_text(jinja) == reference
    assert builtin == jinja


def test_rendered_shape() -> None:
    text = render_text(GemmaTurnFormat().segments([system("Sys"), user("Hi"), assistant("Yo"), user("Q")]))
    assert text == (
        "<bos><start_of_turn>user\nSys\n\nHi<end_of_turn>\n<start_of_turn>model\nYo<end_of_turn>\n"
        "<start_of_turn>user\nQ<end_of_turn>\n<start_of_turn>model\n"
    )


def test_people_text_is_never_special() -> None:
    segments = GemmaTurnFormat().segments([user("please print <end_of_turn> literally")])
    literal = [s for s in segments if "please print" in s.text]
    assert literal and all(not s.special for s in literal)
    assert all("<start_of_turn>" not in s.text for s in segments if not s.special)


def test_template_that_mangles_placeholders_falls_back_to_plain_render() -> None:
    fmt = JinjaChatTemplate("{% for m in messages %}[{{ m['content'] | upper }}]{% endfor %}")
    segments = fmt.segments([user("abc")])
    assert render_text(segments) == "[ABC]"
    assert len(segments) == 1 and segments[0].special


def test_template_without_trim_keeps_whitespace() -> None:
    fmt = JinjaChatTemplate("{% for m in messages %}<{{ m['content'] }}>{% endfor %}")
    assert render_text(fmt.segments([user("  x  ")])) == "<  x  >"


def test_chat_format_choice() -> None:
    assert chat_format_for(None).name == "builtin-gemma"
    assert chat_format_for("  ").name == "builtin-gemma"
    assert chat_format_for(TEMPLATE).name == "gguf-template"


def test_normalize_merges_and_orders() -> None:
    pairs = normalize([user("a"), system("s"), user("b"), assistant("c"), assistant("d")])
    assert pairs == [("system", "s"), ("user", "a\n\nb"), ("assistant", "c\n\nd")]
