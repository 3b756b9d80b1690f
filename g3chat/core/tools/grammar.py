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

Strings may not hold raw control characters (the converter allows them; JSON does not), integer bounds
are enforced where the converter would ignore them, and after the closing fence only end-of-turn is
possible.
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
_JSON_CHAR = r'[^"\\\x7F\x00-\x1F] | "\\" (["\\/bfnrt] | "u" [0-9a-fA-F] [0-9a-fA-F] [0-9a-fA-F] [0-9a-fA-F])'


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
    from llama_cpp.llama_grammar import RESERVED_NAMES, SchemaConverter

    class Converter(SchemaConverter):
        def visit(self, schema: Any, name: str) -> str:
            if isinstance(schema, dict) and schema.get("type") == "integer":
                rule = _integer_rule(schema)
                if rule is not None:
                    return self._add_rule(name + "-" if name in RESERVED_NAMES else name or "root", rule)
            return super().visit(schema, name)

    return Converter(prop_order={}, allow_fetch=False, dotall=False, raw_pattern=False)


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


def call_grammar(
    tools: Sequence[tuple[str, Mapping[str, Any]]], *, lazy: bool = False, max_calls: int = 1
) -> CallGrammar:
    """The grammar for a call to one of ``tools`` ((name, parameters schema) pairs)."""
    if not tools:
        raise ValueError("a call grammar needs at least one tool")
    converter = _converter()
    alternatives = [
        converter.visit(
            call_schema(name, converter.resolve_refs(_copy(_convertible(params)), name)), f"call-{i}"
        )
        for i, (name, params) in enumerate(tools)
    ]
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
