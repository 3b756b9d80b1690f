"""Call grammars: what they allow, budgets, odd schemas; each one compiled by llama.cpp itself."""

from __future__ import annotations

import ctypes
import math
import re
from pathlib import Path
from typing import Any

import pytest

from g3chat.core.engine.base import Engine
from g3chat.core.tools.builtins import builtin_tools
from g3chat.core.tools.confine import Roots
from g3chat.core.tools.grammar import LAZY_TRIGGERS, call_grammar
from g3chat.core.types import GenerationParams, collect, user

ODD_SCHEMAS: dict[str, dict[str, Any]] = {
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
    "relaxed": {  # parts the converter cannot write become any value, or a string without its pattern
        "type": "object",
        "properties": {
            "x": {"not": {"type": "string"}},
            "code": {"type": "string", "pattern": r"\bx", "maxLength": 4},
            "off": False,
        },
    },
    "bounds": {
        "type": "object",
        "properties": {
            "wide": {"type": "integer", "minimum": -123456, "maximum": 98765432},
            "below": {"type": "integer", "exclusiveMaximum": -10},
            "maybe": {"type": ["integer", "null"], "minimum": 3},
        },
    },
    "empty": {"type": "object"},
}


def compiles(engine: Engine, text: str) -> bool:
    """llama.cpp accepts the grammar (an invalid one raises EngineError before anything is generated)."""
    params = GenerationParams(max_tokens=1, grammar=text, seed=0)
    return collect(engine.stream_chat([user("x")], params)).finish_reason in {"length", "stop"}


@pytest.mark.model
def test_every_grammar_g3chat_makes_compiles(engine: Engine, tmp_path: Path) -> None:
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
    assert '"\\"count\\""' in forced.text and "([0-9] | [1-9] [0-9]{1,15}) space" in forced.text
    lazy = call_grammar([("count", params)], lazy=True, max_calls=3)
    assert lazy.triggers == LAZY_TRIGGERS and 'call ("\\n" call){0,2} "\\n```"' in lazy.text
    text = call_grammar([("echo", {"type": "object", "properties": {"s": {"type": "string"}}})]).text
    # No raw control characters, and no \u escapes:
    assert 'char ::= [^"\\\\\\x7F\\x00-\\x1F] | "\\\\" ["\\\\/bfnrt]' in text
    with pytest.raises(ValueError):
        call_grammar([])


# ------------------------------------------------------------------------------------------- bounds

_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|\[(?:[^\]\\]|\\.)*\]|[A-Za-z0-9-]+|\{\d+(?:,\d*)?\}|[()|?*+]|\s+')


def param_regex(grammar: str, name: str) -> re.Pattern[str]:
    """The values a call grammar allows for parameter ``name``, as a Python regex (the grammar's rules are
    a regular subset of GBNF here: literals, classes, groups, alternation, repetition)."""
    rules = dict(line.split(" ::= ", 1) for line in grammar.splitlines())

    def regex(body: str) -> str:
        out = []
        for token in _TOKEN.findall(body):
            if token.isspace():
                continue
            if token.startswith('"'):
                out.append(re.escape(token[1:-1].encode().decode("unicode_escape")))
            elif token == "space":
                out.append(" ?")
            elif token in rules:
                out.append(f"(?:{regex(rules[token])})")
            else:
                out.append(token)
        return "".join(out)

    kv = rules[f"call-0-parameters-{name}-kv"]
    return re.compile(regex(kv.split('":" space ', 1)[1]).removesuffix(" ?"))


# (low, high) bounds of an integer parameter, None for no bound: one-sided, negative, wide, single.
INT_BOUNDS = [(1, 1000), (None, 16), (-40, 125), (None, -10), (5001, None), (0, 0), (99, 101), (-7, 3000)]


def int_schema(low: int | None, high: int | None) -> dict[str, Any]:
    bounds = {"minimum": low, "maximum": high}
    return {"type": "integer", **{k: v for k, v in bounds.items() if v is not None}}


@pytest.mark.parametrize(("low", "high"), INT_BOUNDS)
def test_integer_bounds_are_in_the_grammar(low: int | None, high: int | None) -> None:
    """Exactly the integers within the bounds (every one from low - 50 to high + 50), no leading zeros,
    and no 16-digit numbers past an open bound's other side."""
    params = {"type": "object", "properties": {"n": int_schema(low, high)}, "required": ["n"]}
    allowed = param_regex(call_grammar([("t", params)]).text, "n")
    start, stop = (low if low is not None else -5000) - 50, (high if high is not None else 5000) + 50
    wrong = [
        v
        for v in range(start, stop + 1)
        if bool(allowed.fullmatch(str(v))) != ((low is None or v >= low) and (high is None or v <= high))
    ]
    assert not wrong, wrong[:10]
    for far in (10**15, -(10**15)):
        inside = (low is None or far >= low) and (high is None or far <= high)
        assert bool(allowed.fullmatch(str(far))) == inside, far
    assert not any(allowed.fullmatch(t) for t in ("01", "-0", "007", "1.0", "1e3"))


def test_exclusive_and_fractional_bounds_round_inwards() -> None:
    cases = {
        "a": ({"type": "integer", "exclusiveMinimum": 5, "exclusiveMaximum": 9}, range(6, 9)),
        "b": ({"type": "integer", "minimum": 0.5, "maximum": 3.5}, range(1, 4)),
        "c": ({"type": "integer", "minimum": 2, "exclusiveMinimum": True, "maximum": 4}, range(3, 5)),
        "d": ({"type": ["integer", "null"], "minimum": 1, "maximum": 3}, range(1, 4)),
    }
    params = {"type": "object", "properties": {k: v for k, (v, _) in cases.items()}}
    text = call_grammar([("t", params)]).text
    for name, (_, expected) in cases.items():
        allowed = param_regex(text, name)
        assert [v for v in range(-20, 21) if allowed.fullmatch(str(v))] == list(expected), name
    assert param_regex(text, "d").fullmatch("null")


def accepts(engine: Any, grammar: str, text: str) -> bool:
    """Whether llama.cpp's own grammar sampler lets the model write ``text`` and then stop."""
    import llama_cpp

    llm = engine._require()
    sampler = llama_cpp.llama_sampler_init_grammar(llm._model.vocab, grammar.encode(), b"root")
    try:
        for token in [*llm.tokenize(text.encode(), add_bos=False, special=False), llm.token_eos()]:
            data = (llama_cpp.llama_token_data * 1)(llama_cpp.llama_token_data(token, 0.0, 0.0))
            candidates = llama_cpp.llama_token_data_array(data, 1, -1, False)
            llama_cpp.llama_sampler_apply(sampler, ctypes.byref(candidates))
            if math.isinf(data[0].logit):
                return False
            if token != llm.token_eos():
                llama_cpp.llama_sampler_accept(sampler, token)
        return True
    finally:
        llama_cpp.llama_sampler_free(sampler)


@pytest.mark.model
def test_llama_cpp_holds_calls_to_the_bounds(engine: Engine) -> None:
    """The whole call, as llama.cpp's sampler sees it: in-range values pass, out-of-range ones (the
    16-digit "days" an MCP tool once got among them) cannot be written."""
    params = {
        "type": "object",
        "properties": {
            "days": {"type": "integer", "minimum": 1, "maximum": 1000},
            "level": {"type": ["integer", "null"], "maximum": -10},
            "mode": {"enum": ["fast", "slow"]},
        },
        "required": ["days"],
    }
    grammar = call_grammar([("forecast", params)]).text

    def call(arguments: str) -> str:
        return '```tool_code\n{"name": "forecast", "parameters": {' + arguments + "}}\n```"

    for good in ('"days": 1', '"days": 1000', '"days": 37, "level": -10', '"days": 5, "level": null'):
        assert accepts(engine, grammar, call(good)), good
    assert accepts(engine, grammar, call('"days": 999, "level": -123456, "mode": "slow"'))
    for bad in (
        '"days": 1000000000000000',
        '"days": 0',
        '"days": 1001',
        '"days": -5',
        '"days": 3, "level": -9',
        '"days": 3, "level": 7',
        '"days": 3, "mode": "medium"',
    ):
        assert not accepts(engine, grammar, call(bad)), bad
