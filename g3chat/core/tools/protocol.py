"""Gemma's tool protocol as text: the tool list in the prompt, calls out, results back.

Gemma 3n has no tool tokens. Following Google's function-calling guidance, the prompt lists the tools as
JSON schemas and asks for a call as ``{"name": ..., "parameters": {...}}`` in a ``tool_code`` fence; the
results go back in ``tool_outputs`` fences inside a user turn (Gemma's template has no ``tool`` role).

The parser is lenient about what models actually write: JSON or Python-style calls
(``read_file(path="a.txt")``, parsed with :mod:`ast`, never evaluated), fenced or bare, one or several.
A bare answer counts as a call only when it is nothing but calls to known tools, so prose that happens to
contain braces stays prose.
"""

from __future__ import annotations

import ast
import json
import re
import uuid
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from g3chat.core.types import Message, Part, TextPart, ToolCallPart, ToolResultPart

CALL_FENCE = "tool_code"
RESULT_FENCE = "tool_outputs"
TOOLS_INTRO = "You have access to these tools."  # opens the tools section
_CALL_FENCES = ("tool_code", "tool_call", "tool_calls")
_MAYBE_FENCES = ("json", "python", "py", "")
_FENCE_RE = re.compile(r"```[ \t]*([A-Za-z_]*)[ \t]*\n(.*?)(\n[ \t]*```|\Z)", re.DOTALL)
_ARGUMENT_KEYS = ("parameters", "arguments", "args")
_LITERAL_NAMES = {"true": True, "false": False, "null": None, "none": None}


@dataclass(frozen=True)
class ParsedCall:
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class ParseResult:
    """Calls found in one answer, the prose around them, and what could not be read as a call."""

    prose: str
    calls: list[ParsedCall] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class CallSyntaxError(ValueError):
    pass


def new_call_id() -> str:
    return f"call_{uuid.uuid4().hex[:12]}"


# ------------------------------------------------------------------------------------------ rendering


def tool_spec(name: str, description: str, parameters: Mapping[str, Any]) -> dict[str, Any]:
    return {"name": name, "description": description, "parameters": dict(parameters)}


_SCHEMA_NOISE = frozenset({"title", "$schema", "$id", "$comment"})
_SCHEMA_MAPS = frozenset({"properties", "patternProperties", "$defs", "definitions"})  # name → schema
_SUBSCHEMAS = frozenset(
    {"items", "prefixItems", "additionalProperties", "contains", "not", "anyOf", "oneOf", "allOf", "if"}
    | {"then", "else", "propertyNames"}
)


def compact_schema(schema: Any, *, top: bool = False) -> Any:
    """``schema`` as the model reads it: without what a call does not depend on.

    Dropped: titles, ``$schema``/``$id``/``$comment``, boolean ``additionalProperties`` (the call grammar,
    built from the full schema, admits no extra properties either way), ``"type": "object"`` where
    ``properties`` already says so, and at the top (``top``: a tool's parameters, always an object) the
    object type and an empty property list. Everything that decides validity stays: property names,
    types, ``required``, enums, bounds, formats, patterns, defaults and descriptions.
    """
    if isinstance(schema, list):
        return [compact_schema(item) for item in schema]
    if not isinstance(schema, Mapping):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _SCHEMA_NOISE or (key == "additionalProperties" and isinstance(value, bool)):
            continue
        if key == "type" and value == "object" and (top or "properties" in schema):
            continue
        if key in _SCHEMA_MAPS and isinstance(value, Mapping):
            if top and key == "properties" and not value:
                continue
            out[key] = {name: compact_schema(sub) for name, sub in value.items()}
        elif key in _SUBSCHEMAS:
            out[key] = compact_schema(value)
        else:
            out[key] = value  # enum, const, default, examples, bounds...: data, kept as written
    return out


def tool_line(spec: Mapping[str, Any]) -> str:
    """One tool as one line of compact JSON: name, description (when there is one), parameters."""
    line: dict[str, Any] = {"name": spec["name"]}
    if spec.get("description"):
        line["description"] = spec["description"]
    line["parameters"] = compact_schema(spec.get("parameters") or {}, top=True)
    return json.dumps(line, ensure_ascii=False, separators=(",", ":"))


_EXAMPLE_CALL = json.dumps({"name": "tool_name", "parameters": {"argument": "value"}})  # as format_calls


def tools_prompt(specs: Sequence[Mapping[str, Any]], choice: str = "auto") -> str:
    """The system-prompt section that describes the tools and how to call them.

    Every token here is evaluated before the answer starts (bench/preamble.py counts them), so the tools
    are compact JSON and the instructions short. The same tools give the same bytes, and the rule comes
    last, so prompts differing only in the choice share the KV cache up to it.
    """
    listing = "\n".join(tool_line(spec) for spec in specs)
    if choice == "required":
        rule = "You must call one of these tools now."
    elif choice not in ("auto", "none"):
        rule = f"You must call the tool {choice} now."
    else:
        rule = "Call a tool only when you need it."
    return (
        f"{TOOLS_INTRO} To call one, answer with only:\n```{CALL_FENCE}\n{_EXAMPLE_CALL}\n```\n"
        f"The result comes back in a {RESULT_FENCE} block; then answer the user in plain text.\n\n"
        f"{listing}\n\n{rule}"
    )


def format_calls(calls: Iterable[ToolCallPart]) -> str:
    lines = [json.dumps({"name": c.name, "parameters": c.arguments}, ensure_ascii=False) for c in calls]
    return f"```{CALL_FENCE}\n" + "\n".join(lines) + "\n```"


def format_result(result: ToolResultPart) -> str:
    content = result.content
    if result.status == "error":
        content = f"Error: {content}"
    elif result.status == "denied":
        content = f"Denied: {content}"
    return f"```{RESULT_FENCE}\n{content.rstrip(chr(10))}\n```"


def parts_text(parts: Sequence[Part]) -> str:
    """A message's content as the model reads it: text, then calls and results in their fences."""
    out: list[str] = []
    pending: list[ToolCallPart] = []
    for part in parts:
        if isinstance(part, ToolCallPart):
            pending.append(part)
            continue
        if pending:
            out.append(format_calls(pending))
            pending = []
        if isinstance(part, TextPart):
            out.append(part.text)
        elif isinstance(part, ToolResultPart):
            out.append(format_result(part))
    if pending:
        out.append(format_calls(pending))
    return "\n".join(t for t in out if t)


def message_text(message: Message) -> str:
    """The text the model reads for ``message`` (attachments are placed by :mod:`g3chat.core.prompt`)."""
    if not any(isinstance(p, (ToolCallPart, ToolResultPart)) for p in message.parts):
        return message.text
    return parts_text(message.parts)


# -------------------------------------------------------------------------------------------- parsing


def parse_calls(
    text: str, known: Collection[str] = (), schemas: Mapping[str, Any] | None = None
) -> ParseResult:
    """Find the tool calls in a model's answer.

    ``known`` tool names make bare Python-style calls and calls in ``json``/``python`` fences count;
    ``schemas`` (name → parameters schema) lets positional Python arguments map onto parameter names.
    """
    calls: list[ParsedCall] = []
    errors: list[str] = []
    prose: list[str] = []
    position = 0
    for match in _FENCE_RE.finditer(text):
        language, body, closing = match.group(1).lower(), match.group(2), match.group(3)
        if language in _CALL_FENCES:
            try:
                calls.extend(parse_block(body, schemas))  # an unclosed block that parses whole is accepted
            except CallSyntaxError as exc:
                errors.append(f"{exc}" if closing else f"incomplete {language} block: {exc}")
        elif language in _MAYBE_FENCES and known:
            try:
                found = parse_block(body, schemas)
            except CallSyntaxError:
                continue
            if not found or any(c.name not in known for c in found):
                continue
            calls.extend(found)
        else:
            continue
        prose.append(text[position : match.start()])
        position = match.end()
    prose.append(text[position:])
    rest = "".join(prose).strip()
    if not calls and not errors and rest:
        bare = _bare_calls(rest, known, schemas)
        if bare:
            return ParseResult("", bare, [])
    return ParseResult(rest, calls, errors)


def _bare_calls(text: str, known: Collection[str], schemas: Mapping[str, Any] | None) -> list[ParsedCall]:
    """The whole answer as calls, or [] when it is not only calls."""
    if text[0] in "{[":
        try:
            found = _json_calls(text)
        except CallSyntaxError:
            found = []
        if found:
            return found if all(c.name in known for c in found) or not known else []
    if not known:
        return []
    try:
        found = _python_calls(text, schemas)
    except CallSyntaxError:
        return []
    return found if found and all(c.name in known for c in found) else []


def parse_block(body: str, schemas: Mapping[str, Any] | None = None) -> list[ParsedCall]:
    """Calls in the body of a call fence: JSON object(s) or Python-style calls. Raises CallSyntaxError."""
    body = body.strip()
    if not body:
        raise CallSyntaxError("the tool_code block is empty")
    if body[0] == "{":
        return _json_calls(body)
    if body[0] == "[":
        try:
            return _json_calls(body)
        except CallSyntaxError as exc:
            try:
                return _python_calls(body, schemas)  # [tool(a=1), tool(b=2)], Google's list style
            except CallSyntaxError:
                raise exc from None
    return _python_calls(body, schemas)


def _json_calls(text: str) -> list[ParsedCall]:
    decoder = json.JSONDecoder(strict=False)
    calls: list[ParsedCall] = []
    position = 0
    while True:
        while position < len(text) and text[position] in " \t\r\n,;":
            position += 1
        if position >= len(text):
            break
        try:
            value, position = decoder.raw_decode(text, position)
        except json.JSONDecodeError as exc:
            raise CallSyntaxError(f"malformed JSON tool call: {exc.msg} at character {exc.pos}") from None
        for item in value if isinstance(value, list) else [value]:
            calls.append(_json_call(item))
    if not calls:
        raise CallSyntaxError("no tool call in the JSON")
    return calls


def _json_call(item: Any) -> ParsedCall:
    if not isinstance(item, dict):
        raise CallSyntaxError("a JSON tool call must be an object")
    if isinstance(item.get("function"), dict):  # {"type": "function", "function": {...}} (OpenAI style)
        item = item["function"]
    name = item.get("name")
    if not isinstance(name, str) or not name:
        raise CallSyntaxError('a JSON tool call needs a "name" string')
    arguments: Any = {}
    for key in _ARGUMENT_KEYS:
        if key in item:
            arguments = item[key]
            break
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except json.JSONDecodeError:
            raise CallSyntaxError(f"the arguments of {name} are not a JSON object") from None
    if arguments is None:
        arguments = {}
    if not isinstance(arguments, dict):
        raise CallSyntaxError(f'the "parameters" of {name} must be an object')
    return ParsedCall(name, arguments)


def _python_calls(text: str, schemas: Mapping[str, Any] | None) -> list[ParsedCall]:
    try:
        tree = ast.parse(text.strip(), mode="exec")
    except SyntaxError as exc:
        raise CallSyntaxError(f"malformed tool call: {exc.msg} (line {exc.lineno})") from None
    calls: list[ParsedCall] = []
    for statement in tree.body:
        if not isinstance(statement, ast.Expr):
            raise CallSyntaxError("a tool_code block may hold only calls")
        nodes = (
            statement.value.elts if isinstance(statement.value, (ast.List, ast.Tuple)) else [statement.value]
        )
        for node in nodes:
            calls.append(_python_call(node, schemas))
    if not calls:
        raise CallSyntaxError("no tool call found")
    return calls


def _python_call(node: ast.expr, schemas: Mapping[str, Any] | None) -> ParsedCall:
    if not isinstance(node, ast.Call):
        raise CallSyntaxError("expected a call like name(argument=value)")
    if (
        isinstance(node.func, ast.Name)
        and node.func.id == "print"
        and len(node.args) == 1
        and not node.keywords
    ):
        return _python_call(node.args[0], schemas)  # print(default_api.tool(...)), as some models write
    name = _dotted(node.func)
    if name is None:
        raise CallSyntaxError("a tool call must name the tool")
    name = name.rsplit(".", 1)[-1] if "." in name and (schemas is None or name not in schemas) else name
    arguments: dict[str, Any] = {}
    if node.args:
        order = list(((schemas or {}).get(name) or {}).get("properties", {}))
        if len(node.args) > len(order):
            raise CallSyntaxError(f"{name}: use named arguments (name=value)")
        for key, value in zip(order, node.args):
            arguments[key] = _literal(name, key, value)
    for keyword in node.keywords:
        if keyword.arg is None:
            raise CallSyntaxError(f"{name}: **arguments are not supported")
        arguments[keyword.arg] = _literal(name, keyword.arg, keyword.value)
    return ParsedCall(name, arguments)


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr}" if base else None
    return None


def _literal(name: str, key: str, node: ast.expr) -> Any:
    if isinstance(node, ast.Name) and node.id.lower() in _LITERAL_NAMES:
        return _LITERAL_NAMES[node.id.lower()]
    try:
        value = ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        raise CallSyntaxError(f"{name}: argument {key} must be a literal value") from None
    return _jsonable(name, key, value)


def _jsonable(name: str, key: str, value: Any) -> Any:
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(name, key, v) for v in value]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {k: _jsonable(name, key, v) for k, v in value.items()}
    raise CallSyntaxError(f"{name}: argument {key} is not a JSON value")
