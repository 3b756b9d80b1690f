"""calculator (a safe arithmetic evaluator over Python's AST, never ``eval``) and get_datetime."""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable
from datetime import datetime
from typing import Any

from g3chat.core.tools.model import ToolError

MAX_EXPRESSION = 500
MAX_EXPONENT = 10_000
MAX_INT_DIGITS = 1_000

_BINARY: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type, Callable[[Any], Any]] = {ast.UAdd: operator.pos, ast.USub: operator.neg}
_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "abs": abs,
    "round": round,
    "min": min,
    "max": max,
    "sqrt": math.sqrt,
    "exp": math.exp,
    "log": math.log,
    "log10": math.log10,
    "log2": math.log2,
    "sin": math.sin,
    "cos": math.cos,
    "tan": math.tan,
    "asin": math.asin,
    "acos": math.acos,
    "atan": math.atan,
    "floor": math.floor,
    "ceil": math.ceil,
    "factorial": math.factorial,
    "gcd": math.gcd,
}
_CONSTANTS = {"pi": math.pi, "e": math.e, "tau": math.tau}


def evaluate(expression: str) -> int | float:
    """The value of an arithmetic expression: numbers, + - * / // % ** (and ^ as power), parentheses,
    and a few math functions and constants. Anything else (names, attributes, strings) is refused."""
    text = expression.strip().replace("^", "**")
    if not text:
        raise ToolError("the expression is empty")
    if len(text) > MAX_EXPRESSION:
        raise ToolError(f"the expression is longer than {MAX_EXPRESSION} characters")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError:
        raise ToolError(f"not an arithmetic expression: {expression}") from None
    try:
        return _eval(tree.body)
    except ZeroDivisionError:
        raise ToolError("division by zero") from None
    except (OverflowError, ValueError) as exc:
        raise ToolError(f"cannot compute: {exc}") from None


def _eval(node: ast.expr) -> Any:
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return node.value
    if isinstance(node, ast.Name) and node.id in _CONSTANTS:
        return _CONSTANTS[node.id]
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_eval(node.operand))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _eval(node.left), _eval(node.right)
        if isinstance(node.op, ast.Pow) and (abs(right) > MAX_EXPONENT or abs(left) > 10**MAX_INT_DIGITS):
            raise ToolError("the power is too large")
        result = _BINARY[type(node.op)](left, right)
        if isinstance(result, int) and abs(result) > 10**MAX_INT_DIGITS:
            raise ToolError(f"the result has more than {MAX_INT_DIGITS} digits")
        if isinstance(result, complex):
            raise ToolError("the result is not a real number")
        return result
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCTIONS:
        if node.keywords:
            raise ToolError(f"{node.func.id}() takes no named arguments")
        args = [_eval(a) for a in node.args]
        if node.func.id == "factorial" and args and abs(args[0]) > 1000:
            raise ToolError("factorial argument is too large")
        try:
            return _FUNCTIONS[node.func.id](*args)
        except TypeError as exc:
            raise ToolError(f"{node.func.id}(): {exc}") from None
    raise ToolError(f"not allowed in an expression: {ast.unparse(node)}")


def calculator(args: dict[str, Any]) -> str:
    value = evaluate(str(args.get("expression", "")))
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    return repr(value) if isinstance(value, float) else str(value)


def get_datetime(args: dict[str, Any]) -> str:
    zone = args.get("timezone")
    if zone:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            now = datetime.now(ZoneInfo(str(zone)))
        except (ZoneInfoNotFoundError, ValueError):
            raise ToolError(f"unknown time zone: {zone}") from None
    else:
        now = datetime.now().astimezone()
    return f"{now.isoformat(timespec='seconds')} ({now.strftime('%A')}, {now.tzname()})"
