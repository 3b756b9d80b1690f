"""Call grammars: what they allow, budgets, odd schemas; each one compiled by llama.cpp itself."""

from __future__ import annotations

from pathlib import Path

import pytest

from g3chat.core.tools.builtins import builtin_tools
from g3chat.core.tools.confine import Roots
from g3chat.core.tools.grammar import LAZY_TRIGGERS, call_grammar
from g3chat.core.types import GenerationParams, collect, user

ODD_SCHEMAS = {
    "refs": {
        "type": "object",
        "$defs": {
            "Point": {"type": "object", "properties": {"x": {"type": "number"}, "y": {"type": "number"}}}
        },
        "properties": {"points": {"type": "array", "items": {"$ref": "#/$defs/Point"}}},
        "required": ["points"],
        "title": "pydantic-style",
    },
    "unions": {
        "type": "object",
        "properties": {
            "mode": {"enum": ["fast", "slow"]},
            "limit": {"anyOf": [{"type": "integer"}, {"type": "null"}], "default": None},
            "level": {"type": "integer", "minimum": 1, "maximum": 5},
            "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 3},
        },
    },
    "unknown-type": {"type": "object", "properties": {"x": {"type": "weird"}}},
    "empty": {"type": "object"},
}


def compiles(engine: object, text: str) -> bool:
    """llama.cpp accepts the grammar (an invalid one raises EngineError before anything is generated)."""
    params = GenerationParams(max_tokens=1, grammar=text, seed=0)
    return collect(engine.stream_chat([user("x")], params)).finish_reason in ("length", "stop")  # type: ignore[attr-defined]


@pytest.mark.model
def test_every_grammar_g3chat_makes_compiles(engine: object, tmp_path: Path) -> None:
    tools = builtin_tools(Roots([tmp_path]))
    pairs = [(t.name, t.parameters) for t in tools] + list(ODD_SCHEMAS.items())
    assert compiles(engine, call_grammar(pairs, lazy=True, max_calls=4).text)
    for budget in (None, 96, 4096):
        for pair in pairs:
            assert compiles(engine, call_grammar([pair], budget=budget).text), pair[0]


def test_budget_caps_free_strings_so_a_call_fits() -> None:
    search = next(t for t in builtin_tools(Roots([Path.cwd()])) if t.name == "search_files").parameters
    capped = call_grammar([("search_files", search)], budget=256).text
    assert capped.count("char{0,32}") == 3  # pattern, path, glob share (256 - 64) / 2 tokens
    free = call_grammar([("search_files", search)]).text
    assert "char{" not in free and 'string ::= "\\"" char* "\\"" space' in free
    huge = call_grammar([("search_files", search)], budget=100_000).text
    assert capped.replace("{0,32}", "{0,2000}") == huge  # capped at llama.cpp's repetition limit


def test_grammar_shape() -> None:
    params = {"type": "object", "properties": {"n": {"type": "integer", "minimum": 0}}, "required": ["n"]}
    forced = call_grammar([("count", params)])
    assert forced.triggers == ()
    assert forced.text.startswith('root ::= "```tool_code" [ \\t]* "\\n" call "\\n```"\n')
    assert '"\\"count\\""' in forced.text and "([0-9] | [1-9] [0-9]{0,15}) space" in forced.text
    lazy = call_grammar([("count", params)], lazy=True, max_calls=3)
    assert lazy.triggers == LAZY_TRIGGERS and 'call ("\\n" call){0,2} "\\n```"' in lazy.text
    text = call_grammar([("echo", {"type": "object", "properties": {"s": {"type": "string"}}})]).text
    # No raw control characters, and no \u escapes:
    assert 'char ::= [^"\\\\\\x7F\\x00-\\x1F] | "\\\\" ["\\\\/bfnrt]' in text
    with pytest.raises(ValueError):
        call_grammar([])
