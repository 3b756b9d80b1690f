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
where the converter would ignore them, and after the closing fence only end-of-turn is possible.

A grammar alone does not make a call *finish*: a small model can repeat itself inside a string until it
runs out of tokens. Given the step's token budget, :func:`call_grammar` caps every free string (and array)
so that the whole call fits: a runaway string is cut at its cap and the call still closes. Without a
budget, strings are only bounded by their schema's ``maxLength``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from g3chat.core.tools.protocol import CALL_FENCE

OPEN = f"```{CALL_FENCE}"
# Anchored at the end ($) and searched (no ^): cheap on long answers, and each matches only text that is a
# prefix of what the grammar accepts ("{" and '{"' start every call object).
LAZY_TRIGGERS: tuple[str, ...] = (
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


def _converter() -> Any:
    from llama_cpp.llama_grammar import PRIMITIVE_RULES, RESERVED_NAMES, SchemaConverter

    class Converter(SchemaConverter):
        def visit(self, schema: Any, name: str) -> str:
            rule_name = name + "-" if name in RESERVED_NAMES else name or "root"
            if isinstance(schema, dict) and schema.get("type") == "integer":
                rule = _integer_rule(schema)
                if rule is not None:
                    return self._add_rule(rule_name, rule)
            if isinstance(schema, dict) and _plain_string(schema) and "maxLength" in schema:
                # llama.cpp's own repetition syntax: the converter's nested form for long strings exceeds
                # llama.cpp's limit on synthesized rules.
                char = self._add_primitive("char", PRIMITIVE_RULES["char"])
                low, high = int(schema.get("minLength", 0)), int(schema["maxLength"])
                return self._add_rule(rule_name, f'"\\"" {char}{{{low},{high}}} "\\"" space')
            return super().visit(schema, name)

    return Converter(prop_order={}, allow_fetch=False, dotall=False, raw_pattern=False)


def _plain_string(schema: Mapping[str, Any]) -> bool:
    return schema.get("type") == "string" and not ({"pattern", "format", "enum", "const"} & set(schema))


def _integer_rule(schema: Mapping[str, Any]) -> str | None:
    low = schema.get("minimum")
    if isinstance(schema.get("exclusiveMinimum"), (int, float)) and not isinstance(
        schema["exclusiveMinimum"], bool
    ):
        low = int(schema["exclusiveMinimum"]) + 1
    high = schema.get("maximum")
    if isinstance(schema.get("exclusiveMaximum"), (int, float)) and not isinstance(
        schema["exclusiveMaximum"], bool
    ):
        high = int(schema["exclusiveMaximum"]) - 1
    low = int(low) if isinstance(low, (int, float)) and not isinstance(low, bool) else None
    high = int(high) if isinstance(high, (int, float)) and not isinstance(high, bool) else None
    if low is not None and high is not None and 0 <= high - low <= 256:
        return "(" + " | ".join(f'"{n}"' for n in range(low, high + 1)) + ") space"
    if high is None and low is not None and low >= 0:
        digits = "[0-9] | [1-9] [0-9]{0,15}" if low == 0 else "[1-9] [0-9]{0,15}"
        return f"({digits}) space"
    return None


def _copy(schema: Mapping[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(schema))


def _convertible(parameters: Mapping[str, Any]) -> Mapping[str, Any]:
    """``parameters``, or a generic object schema when the converter cannot handle them."""
    try:
        converter = _converter()
        converter.visit(call_schema("probe", converter.resolve_refs(_copy(parameters), "probe")), "probe")
    except Exception:
        return {"type": "object"}
    return parameters


def _strings(schema: Any) -> int:
    """How many free strings (and arrays) a schema can hold, counting each property once."""
    if isinstance(schema, list):
        return sum(_strings(s) for s in schema)
    if not isinstance(schema, dict):
        return 0
    own = 1 if _plain_string(schema) or schema.get("type") == "array" else 0
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
    if _plain_string(out):
        out["maxLength"] = max(min(int(out.get("maxLength", cap)), cap), int(out.get("minLength", 0)))
    if out.get("type") == "array":
        items = max(1, cap // 8)
        out["maxItems"] = max(min(int(out.get("maxItems", items)), items), int(out.get("minItems", 0)))
    return out


def _for_budget(parameters: Mapping[str, Any], budget: int | None) -> Mapping[str, Any]:
    if budget is None:
        return parameters
    cap = (budget - CALL_OVERHEAD) // (2 * max(1, _strings(parameters)))
    return _capped(_copy(parameters), max(8, min(cap, MAX_CAP)))


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
    converter = _converter()
    alternatives = []
    for i, (name, params) in enumerate(tools):
        usable = _for_budget(converter.resolve_refs(_copy(_convertible(params)), name), budget)
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
    """Problems with ``arguments`` against a tool's schema (empty when valid), one line each."""
    import jsonschema

    try:
        validator_class = jsonschema.validators.validator_for(dict(parameters))
        validator = validator_class(dict(parameters))
        errors = sorted(validator.iter_errors(arguments), key=lambda e: list(e.path))
    except jsonschema.exceptions.SchemaError as exc:
        return [f"the tool's own schema is invalid: {exc.message}"]
    out = []
    for error in errors[:5]:
        where = "/".join(str(p) for p in error.path)
        out.append(f"{where}: {error.message}" if where else error.message)
    return out
