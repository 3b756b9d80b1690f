"""GBNF grammars that make a tool call well-formed and valid against the tool's schema.

A call is a ``tool_code`` fence holding one JSON object per line, ``{"name": ..., "parameters": ...}``,
with ``parameters`` following the named tool's JSON schema (llama-cpp-python's JSON-schema converter
writes those rules). Two shapes:

- forced (``tool_choice`` required or a named tool): the whole answer is the grammar; the model cannot
  write anything but the call.
- lazy (``auto``): the answer is free text until it ends with the fence opener; from there on the grammar
  applies. The trigger patterns only fire when the text *ends* with something the grammar accepts from
  its start, because llama.cpp replays the matched text into the grammar and a rejected replay would be
  fatal inside llama.cpp.

Strings may not hold raw control characters (the converter allows them; JSON does not) nor ``\\u``
escapes (raw Unicode is valid JSON, and a small model can loop on escapes), integer bounds are enforced
(:mod:`g3chat.core.tools.converter`), and after the closing fence only end-of-turn is possible. A part of a
schema the converter cannot write is relaxed, not the whole tool (:mod:`g3chat.core.tools.coverage`
says what, for ``tools list`` and ``--verbose``); every call is validated against the full schema after
parsing anyway (:func:`validate_arguments`).

A grammar alone does not make a call *finish*: a small model can repeat itself inside a string until it
runs out of tokens. Given the step's token budget, :func:`call_grammar` caps every free string (and array)
so that the whole call fits: a runaway string is cut at its cap and the call still closes. Without a
budget, strings are only bounded by their schema's ``maxLength``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from g3chat.core.tools.converter import converter as new_converter
from g3chat.core.tools.converter import copy_schema, plain_string, schema_error
from g3chat.core.tools.coverage import prepare
from g3chat.core.tools.protocol import CALL_FENCE

OPEN = f"```{CALL_FENCE}"
# Anchored at the end ($) and searched (no ^): cheap on long answers, and each matches only text that is a
# prefix of what the grammar accepts ("{" and '{"' start every call object). Gemma's tokenizer writes the
# opener as "```", "tool", "_", "code": triggering at "```tool" keeps a next token such as "codes" or
# "outputs" (a fence the parser would not read as a call) from slipping past the grammar.
LAZY_TRIGGERS: tuple[str, ...] = (
    r"(```tool)$",
    r"(```tool_)$",
    rf"({OPEN})$",
    rf"({OPEN}[ \t]*\n)$",
    rf"({OPEN}[ \t]*\n\{{)$",
    rf'({OPEN}[ \t]*\n\{{")$',
)
_JSON_CHAR = r'[^"\\\x7F\x00-\x1F] | "\\" ["\\/bfnrt]'
CALL_OVERHEAD = 64  # tokens for the fence, the name and the JSON punctuation of one call
MAX_CAP = 2000  # llama.cpp treats a longer repetition as unbounded


@dataclass(frozen=True)
class CallGrammar:
    text: str
    triggers: tuple[str, ...] = ()


def call_schema(name: str, parameters: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"name": {"const": name}, "parameters": dict(parameters)},
        "required": ["name", "parameters"],
    }


def _strings(schema: Any) -> int:
    """How many free strings (and arrays) a schema can hold, counting each property once."""
    if isinstance(schema, list):
        return sum(_strings(s) for s in schema)
    if not isinstance(schema, dict):
        return 0
    own = 1 if plain_string(schema) or schema.get("type") == "array" else 0
    parts = [
        v
        for k in ("properties", "$defs", "definitions")
        if isinstance(schema.get(k), dict)
        for v in schema[k].values()
    ]
    parts += [schema[k] for k in ("items", "anyOf", "oneOf", "allOf") if k in schema]
    return own + sum(_strings(p) for p in parts)


def _capped(schema: Any, cap: int) -> Any:
    """``schema`` with free strings of at most ``cap`` characters and arrays of at most ``cap // 8`` items."""
    if isinstance(schema, list):
        return [_capped(s, cap) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _capped(v, cap) for k, v in schema.items()}
    if plain_string(out):
        out["maxLength"] = max(min(int(out.get("maxLength", cap)), cap), int(out.get("minLength", 0)))
    if out.get("type") == "array":
        items = max(1, cap // 8)
        out["maxItems"] = max(min(int(out.get("maxItems", items)), items), int(out.get("minItems", 0)))
    return out


def _for_budget(parameters: Mapping[str, Any], budget: int | None) -> Mapping[str, Any]:
    if budget is None:
        return parameters
    cap = (budget - CALL_OVERHEAD) // (2 * max(1, _strings(parameters)))
    return _capped(copy_schema(parameters), max(8, min(cap, MAX_CAP)))


def call_grammar(
    tools: Sequence[tuple[str, Mapping[str, Any]]],
    *,
    lazy: bool = False,
    max_calls: int = 1,
    budget: int | None = None,
) -> CallGrammar:
    """The grammar for a call to one of ``tools`` ((name, parameters schema) pairs).

    ``budget``: the tokens the step may generate; free strings are capped so that a call fits it.
    """
    if not tools:
        raise ValueError("a call grammar needs at least one tool")
    converter = new_converter()
    alternatives = []
    for i, (name, params) in enumerate(tools):
        usable = _for_budget(converter.resolve_refs(prepare(params).schema, name), budget)
        alternatives.append(converter.visit(call_schema(name, usable), f"call-{i}"))
    rules = converter.format_grammar().splitlines()
    for i, line in enumerate(rules):
        if line.startswith("char ::= "):
            rules[i] = f"char ::= {_JSON_CHAR}"
    more = f' ("\\n" call){{0,{max_calls - 1}}}' if max_calls > 1 else ""
    text = "\n".join(
        [
            f'root ::= "{OPEN}" [ \\t]* "\\n" call{more} "\\n```"',
            "call ::= " + " | ".join(alternatives),
            *rules,
        ]
    )
    return CallGrammar(text, LAZY_TRIGGERS if lazy else ())


def validate_arguments(parameters: Mapping[str, Any], arguments: Any) -> list[str]:
    """Problems with ``arguments`` against a tool's schema (empty when valid), one line each: where, what
    was wrong and what is allowed (``days: 1001 is greater than the maximum of 1000``)."""
    import jsonschema

    broken = schema_error(parameters)
    if broken is not None:
        return [f"the tool's own schema is invalid, so no call to it can be checked: {broken}"]
    validator = jsonschema.validators.validator_for(dict(parameters))(dict(parameters))
    errors = sorted(validator.iter_errors(arguments), key=lambda e: list(e.path))
    out = []
    for error in errors[:5]:
        where = "/".join(str(p) for p in error.path)
        out.append(f"{where}: {error.message}" if where else error.message)
    return out
