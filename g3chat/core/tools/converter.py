"""llama-cpp-python's JSON-schema-to-GBNF converter, with what it leaves out put back.

The converter (``llama_cpp.llama_grammar.SchemaConverter``) is extended here:

- integers get their ``minimum``/``maximum`` (and exclusive bounds) as digit ranges
  (:mod:`g3chat.core.tools.int_range`); the converter would write any 16-digit integer;
- ``"type": [..., ...]`` keeps the schema's other keywords in each alternative (the converter drops
  them, so ``{"type": ["integer", "null"], "maximum": 5}`` lost its bound), and with an ``enum`` or
  ``const`` the values decide (the converter ignored them for a type list);
- strings with a ``maxLength`` use llama.cpp's ``{m,n}`` repetition (the converter's nested form for
  long strings exceeds llama.cpp's limit on synthesized rules);
- a schema marked :data:`ANY` is any JSON value: :mod:`g3chat.core.tools.coverage` puts it where the
  converter cannot write a rule.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from typing import Any

from g3chat.core.tools.int_range import integer_rule

ANY = "x-g3chat-any"  # a schema {ANY: True}: any JSON value (the converter's own {} means any *object*)
_CHOICES = {"enum", "const", "$ref", "oneOf", "anyOf"}


def copy_schema(schema: Any) -> Any:
    return json.loads(json.dumps(schema))


def plain_string(schema: Mapping[str, Any]) -> bool:
    """A string schema whose only constraints are lengths (what a repetition of ``char`` can express)."""
    return schema.get("type") == "string" and not ({"pattern", "format", "enum", "const"} & set(schema))


def converter() -> Any:
    """A fresh converter (it keeps the rules it wrote, so one per grammar)."""
    from llama_cpp.llama_grammar import PRIMITIVE_RULES, RESERVED_NAMES, SchemaConverter

    class Converter(SchemaConverter):
        def visit(self, schema: Any, name: str) -> str:
            rule_name = name + "-" if name in RESERVED_NAMES else name or "root"
            if not isinstance(schema, dict):
                raise ValueError(f"a schema must be an object, not {json.dumps(schema)}")
            if schema.get(ANY):
                return self._add_primitive("value", PRIMITIVE_RULES["value"])
            kind = schema.get("type")
            if isinstance(kind, list) and not ({"$ref", "oneOf", "anyOf"} & set(schema)):
                rest = {k: v for k, v in schema.items() if k != "type"}
                if "enum" in rest or "const" in rest:
                    return self.visit(rest, name)
                alternatives = [{**rest, "type": t} for t in kind]
                return self._add_rule(rule_name, self._generate_union_rule(name, alternatives))
            if kind == "integer" and not (_CHOICES & set(schema)):
                rule = integer_rule(schema)
                if rule is not None:
                    return self._add_rule(rule_name, rule)
            if plain_string(schema) and "maxLength" in schema:
                char = self._add_primitive("char", PRIMITIVE_RULES["char"])
                low, high = int(schema.get("minLength", 0)), int(schema["maxLength"])
                return self._add_rule(rule_name, f'"\\"" {char}{{{low},{high}}} "\\"" space')
            return super().visit(schema, name)

    return Converter(prop_order={}, allow_fetch=False, dotall=False, raw_pattern=False)


def reason(exc: BaseException) -> str:
    """A converter failure in one short line."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 100 else text[:97] + "..."


def schema_error(schema: Mapping[str, Any]) -> str | None:
    """Why ``schema`` is not a valid JSON schema (its own ``$schema`` draft, else the latest), or None.

    A call cannot be checked against an invalid schema (jsonschema would raise on an unknown type).
    Checking a schema against its metaschema takes about 6 ms, so the answer is kept per schema."""
    return _schema_error(json.dumps(schema, sort_keys=True))


@functools.lru_cache(maxsize=256)
def _schema_error(text: str) -> str | None:
    import jsonschema

    schema = json.loads(text)
    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.exceptions.SchemaError as exc:
        where = "/".join(str(p) for p in exc.path)
        return f"{where}: {exc.message}" if where else exc.message
    return None
