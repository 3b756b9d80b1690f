"""What a tool's call grammar enforces of its schema, and what only the check after parsing catches.

Every call is validated against the tool's full schema after it is parsed (``validate_arguments``); the
grammar makes most mistakes impossible to write in the first place. Where the converter cannot write a
rule for part of a schema (an unsupported ``pattern``, an unknown type, ``not``...), only that part is
relaxed: a string keeps its type and lengths without the pattern, anything else becomes any JSON value,
and the rest of the grammar stands. Constraints a grammar does not express (bounds of decimal numbers,
``multipleOf``, ``uniqueItems``...) are listed too. ``g3chat tools list`` and ``ask --verbose`` show both.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from g3chat.core.tools.converter import ANY, converter, copy_schema, reason, schema_error

# Keywords the converter ignores (the check after parsing enforces them), in the order they are reported.
_NOT_IN_GRAMMAR = (
    "multipleOf",
    "uniqueItems",
    "not",
    "if",
    "minProperties",
    "maxProperties",
    "patternProperties",
    "propertyNames",
    "dependentRequired",
    "dependentSchemas",
    "dependencies",
    "contains",
    "unevaluatedProperties",
    "unevaluatedItems",
)
_BOUNDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")
_RELAXABLE = ("pattern", "format", "not")  # dropped first; if that is not enough, any value
_ANNOTATIONS = {"title", "description", "default", "examples", "$comment", "deprecated"}


@dataclass(frozen=True)
class Prepared:
    """A tool's parameters as the grammar uses them: ``schema`` (refs as written, unconvertible parts
    relaxed), what was relaxed (``relaxed``, one line each), and ``failed``: why no grammar could be
    written for the parameters at all (then ``schema`` is any object)."""

    schema: dict[str, Any]
    relaxed: tuple[str, ...] = ()
    failed: str | None = None


@dataclass(frozen=True)
class Coverage:
    """How much of a tool's schema its call grammar enforces: ``full``, ``partial`` (``after_parsing``
    lists what only the check after parsing catches) or ``none`` (any JSON object; all checked after)."""

    grammar: Literal["full", "partial", "none"]
    after_parsing: tuple[str, ...] = field(default=())

    @property
    def label(self) -> str:
        return {"full": "grammar", "partial": "grammar+check", "none": "check only"}[self.grammar]

    def to_json(self) -> dict[str, Any]:
        return {"grammar": self.grammar, "after_parsing": list(self.after_parsing)}


def _children(node: dict[str, Any], where: str) -> Iterator[tuple[Any, Any, str]]:
    """(container, key, path) of each subschema of ``node``."""
    for name in node.get("properties") or {}:
        yield node["properties"], name, f"{where}.{name}" if where else name
    if isinstance(node.get("additionalProperties"), dict):
        yield node, "additionalProperties", f"{where}.*" if where else "*"
    for key in ("items", "prefixItems"):
        if isinstance(node.get(key), dict):
            yield node, key, f"{where}[]"
        elif isinstance(node.get(key), list):
            for i in range(len(node[key])):
                yield node[key], i, f"{where}[{i}]"
    for key in ("anyOf", "oneOf", "allOf"):
        for i in range(len(node.get(key) or [])):
            yield node[key], i, where


def prepare(parameters: Mapping[str, Any]) -> Prepared:
    """``parameters`` with every part the converter cannot turn into grammar relaxed (see the module)."""
    root = copy_schema(dict(parameters))
    try:
        base = converter()
        base.resolve_refs(root, "")  # refs stay "#/..."; base._refs points into root, fixed in place
        refs = base._refs
    except Exception as exc:
        return Prepared({"type": "object"}, failed=reason(exc))
    relaxed: list[str] = []
    failed: list[str] = []  # why each part became any value; the root's comes last
    seen: set[int] = set()

    def problem(node: Any) -> str | None:
        probe = converter()
        probe._refs = refs
        try:
            probe.visit(node, "probe")
        except Exception as exc:
            return reason(exc)
        return None

    def fix(container: Any, key: Any, where: str) -> None:
        node = container[key]
        if isinstance(node, bool):
            container[key] = {ANY: True}
            if not node:
                relaxed.append(f"{where or 'the arguments'}: a false schema (no value is valid)")
            return
        if not isinstance(node, dict) or id(node) in seen or problem(node) is None:
            return
        seen.add(id(node))
        target = refs.get(node["$ref"]) if isinstance(node.get("$ref"), str) else None
        if isinstance(target, dict):
            fix({"ref": target}, "ref", where)
        for sub_container, sub_key, sub_where in list(_children(node, where)):
            fix(sub_container, sub_key, sub_where)
        why = problem(node)
        if why is None:
            return
        dropped = [k for k in _RELAXABLE if k in node]
        for k in dropped:
            node.pop(k)
        if not dropped or not (set(node) - _ANNOTATIONS) or problem(node) is not None:
            node.clear()
            node[ANY] = True  # any JSON value (an empty schema would be any *object* to the converter)
            relaxed.append(f"{where or 'the arguments'}: no grammar for it ({why})")
            failed.append(why)
        else:
            relaxed.append(
                f"{where or 'the arguments'}: {' and '.join(dropped)} left out of the grammar ({why})"
            )

    holder = {"root": root}
    fix(holder, "root", "")
    if holder["root"].get(ANY):
        return Prepared({"type": "object"}, failed=failed[-1])
    return Prepared(holder["root"], tuple(relaxed))


def _gaps(node: Any, refs: Mapping[str, Any], where: str, seen: set[int]) -> Iterator[str]:
    if not isinstance(node, dict) or id(node) in seen or node.get(ANY):
        return
    seen.add(id(node))
    at = where or "the arguments"
    if isinstance(node.get("$ref"), str) and node["$ref"] in refs:
        yield from _gaps(refs[node["$ref"]], refs, where, seen)
    kinds: list[Any] = node["type"] if isinstance(node.get("type"), list) else [node.get("type")]
    if "number" in kinds and not ({"enum", "const"} & set(node)):
        bounds = [k for k in _BOUNDS if k in node]
        if bounds:
            yield f"{at}: {'/'.join(bounds)} of a decimal number"
    for key in _NOT_IN_GRAMMAR:
        if node.get(key) not in (None, False):
            yield f"{at}: {key}"
    if "oneOf" in node:
        yield f"{at}: oneOf (the grammar allows any of them, the check exactly one)"
    if "allOf" in node:
        yield f"{at}: allOf (the grammar keeps only its properties)"
    if "pattern" in node and ({"minLength", "maxLength"} & set(node)):
        yield f"{at}: a length with a pattern"
    for container, key, sub_where in _children(node, where):
        yield from _gaps(container[key], refs, sub_where, seen)


def coverage(parameters: Mapping[str, Any]) -> Coverage:
    """What the call grammar of a tool with ``parameters`` enforces (see :class:`Coverage`)."""
    broken = schema_error(parameters)
    if broken is not None:
        return Coverage("none", (f"the schema itself is invalid ({broken}): every call is refused",))
    prepared = prepare(parameters)
    if prepared.failed is not None:
        return Coverage("none", (f"no grammar for the arguments ({prepared.failed}): any JSON object",))
    base = converter()
    schema = copy_schema(prepared.schema)
    base.resolve_refs(schema, "")
    gaps = [*prepared.relaxed, *_gaps(schema, base._refs, "", set())]
    return Coverage("partial" if gaps else "full", tuple(dict.fromkeys(gaps)))
