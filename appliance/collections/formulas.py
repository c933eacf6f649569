"""Formulas of computed fields, evaluated safely with simpleeval.

A formula is one expression over the record's other fields, such as
``quantity * unit_price * (1 - discount)``. Only arithmetic, comparisons,
``and``/``or``/``not``, ``x if c else y``, constants, field names and a few
functions are allowed: no attributes, subscripts, comprehensions or
lambdas, so there is no way to reach Python objects.

Evaluation is bounded in time by bounding sizes, checked before each step
rather than after: every operator and function is a checked version that
refuses an integer of more than :data:`MAX_INT_BITS` bits, a power whose
result would be larger (judged from the operands before computing it) and a
text longer than :data:`MAX_RESULT_LENGTH`. With no loops and at most
:data:`MAX_FORMULA_LENGTH` characters, each step then costs microseconds, so
a formula such as ``a ** a`` can never hold a write transaction. Hitting a
bound raises :class:`FormulaLimit` from :func:`compute_formula`; record
writes turn it into a 422 naming the computed field (nothing is written),
while :func:`evaluate_formula` (recomputing stored rows after a definition
change) gives ``None``.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Iterable, Mapping
from typing import Any

import simpleeval

MAX_FORMULA_LENGTH = 1000
MAX_RESULT_LENGTH = 10_000


MAX_INT_BITS = 256


class FormulaError(ValueError):
    """A formula that does not parse, uses something not allowed, or names an unknown field."""


class FormulaLimit(ArithmeticError):
    """Evaluating a formula would exceed a size bound (a huge number or text); ``str(exc)`` says which."""


def _bounded(value: Any) -> Any:
    """``value`` if within the bounds; raises :class:`FormulaLimit` otherwise."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > MAX_INT_BITS:
        raise FormulaLimit("the formula gives a number too large to store")
    if isinstance(value, str) and len(value) > MAX_RESULT_LENGTH:
        raise FormulaLimit(f"the formula gives a text longer than {MAX_RESULT_LENGTH} characters")
    if isinstance(value, (list, tuple, dict, set, bytes)):
        raise FormulaLimit("the formula gives a value that is not a number, text or true/false")
    return value


def _checked(function: Any) -> Any:
    def run(*args: Any) -> Any:
        return _bounded(function(*args))

    run.__name__ = getattr(function, "__name__", "function")
    return run


def _power(base: Any, exponent: Any) -> Any:
    # Judge the size of the result from the operands, before spending any time on it.
    growing = isinstance(base, int) and isinstance(exponent, int) and exponent > 0 and abs(base) > 1
    if growing and (exponent > MAX_INT_BITS or (abs(base).bit_length() - 1) * exponent > MAX_INT_BITS):
        raise FormulaLimit("the formula gives a number too large to store")
    return base**exponent


def _multiply(left: Any, right: Any) -> Any:
    # A text or sequence times a number: judge the length before building it.
    for seq, times in ((left, right), (right, left)):
        if isinstance(seq, str) and isinstance(times, int) and len(seq) * max(times, 0) > MAX_RESULT_LENGTH:
            raise FormulaLimit(f"the formula gives a text longer than {MAX_RESULT_LENGTH} characters")
    return left * right


def _shift(left: Any, right: Any) -> Any:
    if isinstance(right, int) and right > MAX_INT_BITS:
        raise FormulaLimit("the formula gives a number too large to store")
    return left << right


def _modulo(left: Any, right: Any) -> Any:
    if isinstance(left, str):
        # printf-style formatting could build a text of any width ("%099999999d").
        raise FormulaLimit("the formula may not format text with %")
    return left % right


def _round(value: float, digits: int = 0) -> float:
    return round(value, int(digits))


def _to_int(value: Any) -> int:
    if isinstance(value, str) and len(value.strip()) > 80:
        raise FormulaLimit("the formula gives a number too large to store")
    return int(value)


FUNCTIONS = {
    name: _checked(function)
    for name, function in {
        "abs": abs,
        "round": _round,
        "min": min,
        "max": max,
        "int": _to_int,
        "float": float,
        "str": str,
        "len": len,
        "lower": lambda text: str(text).lower(),
        "upper": lambda text: str(text).upper(),
        "coalesce": lambda *values: next((v for v in values if v is not None), None),
    }.items()
}
OPERATORS = {
    **{kind: _checked(function) for kind, function in simpleeval.DEFAULT_OPERATORS.items()},
    ast.Add: _checked(operator.add),
    ast.Mult: _checked(_multiply),
    ast.Mod: _checked(_modulo),
    ast.Pow: _checked(_power),
    ast.LShift: _checked(_shift),
}
_ALLOWED_NODES = (
    ast.Expression,
    ast.BinOp,
    ast.UnaryOp,
    ast.BoolOp,
    ast.Compare,
    ast.IfExp,
    ast.Name,
    ast.Load,
    ast.Constant,
    ast.Call,
    ast.operator,
    ast.unaryop,
    ast.boolop,
    ast.cmpop,
)


def check_formula(formula: str, field_names: Iterable[str]) -> set[str]:
    """The field names ``formula`` uses; raises :class:`FormulaError` when it cannot be used.

    ``field_names`` are the fields a formula may name (the collection's
    fields other than computed ones).
    """
    if not isinstance(formula, str) or not formula.strip():
        raise FormulaError("the formula is empty")
    if len(formula) > MAX_FORMULA_LENGTH:
        raise FormulaError(f"the formula is longer than {MAX_FORMULA_LENGTH} characters")
    try:
        tree = ast.parse(formula.strip(), mode="eval")
    except SyntaxError as exc:
        raise FormulaError(f"the formula does not parse: {exc.msg}") from None
    known = set(field_names)
    used: set[str] = set()
    for node in ast.walk(tree):
        if not isinstance(node, _ALLOWED_NODES):
            raise FormulaError(f"the formula uses something not allowed ({type(node).__name__})")
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
                raise FormulaError(f"the formula may call only {', '.join(sorted(FUNCTIONS))}")
            if node.keywords:
                raise FormulaError("the formula's functions take no keyword arguments")
        elif isinstance(node, ast.Name) and node.id not in FUNCTIONS:
            if node.id not in known:
                raise FormulaError(f"the formula names an unknown field '{node.id}'")
            used.add(node.id)
    return used


def compute_formula(formula: str, values: Mapping[str, Any]) -> Any:
    """The value of ``formula`` over ``values``, bounded; raises :class:`FormulaLimit` when a bound is hit.

    A formula over a missing value, a division by zero, a type mismatch or a
    result that is not a storable value gives ``None`` (an empty computed
    value): the inputs were valid, only the formula has nothing to say about
    them. A result (or a step on the way) too large to store raises
    :class:`FormulaLimit`, so the write can say so instead of storing nothing.
    """
    evaluator = simpleeval.SimpleEval(operators=OPERATORS, functions=FUNCTIONS, names=dict(values))
    try:
        result = evaluator.eval(formula.strip())
    except FormulaLimit:
        raise
    except simpleeval.NumberTooHigh:
        raise FormulaLimit("the formula gives a number too large to store") from None
    except simpleeval.IterableTooLong:
        raise FormulaLimit(f"the formula gives a text longer than {MAX_RESULT_LENGTH} characters") from None
    except Exception:
        return None
    if isinstance(result, bool) or result is None:
        return result
    if isinstance(result, int):
        if not -(2**63) <= result < 2**63:
            raise FormulaLimit("the formula gives a number too large to store")
        return result
    if isinstance(result, float):
        return result if math.isfinite(result) else None
    if isinstance(result, str):
        return _bounded(result)
    return None


def evaluate_formula(formula: str, values: Mapping[str, Any]) -> Any:
    """As :func:`compute_formula`, but ``None`` where a bound is hit (for recomputing stored rows)."""
    try:
        return compute_formula(formula, values)
    except FormulaLimit:
        return None
