"""Formulas of computed fields, evaluated safely with simpleeval.

A formula is one expression over the record's other fields, such as
``quantity * unit_price * (1 - discount)``. Only arithmetic, comparisons,
``and``/``or``/``not``, ``x if c else y``, constants, field names and a few
functions are allowed: no attributes, subscripts, comprehensions or
lambdas, so there is no way to reach Python objects, and since there are no
loops and the text is short, evaluation time is bounded (simpleeval also
caps powers and string sizes).
"""

from __future__ import annotations

import ast
import math
from collections.abc import Iterable, Mapping
from typing import Any

import simpleeval

MAX_FORMULA_LENGTH = 1000
MAX_RESULT_LENGTH = 10_000


def _round(value: float, digits: int = 0) -> float:
    return round(value, int(digits))


FUNCTIONS = {
    "abs": abs,
    "round": _round,
    "min": min,
    "max": max,
    "int": int,
    "float": float,
    "str": str,
    "len": len,
    "lower": lambda text: str(text).lower(),
    "upper": lambda text: str(text).upper(),
    "coalesce": lambda *values: next((v for v in values if v is not None), None),
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


class FormulaError(ValueError):
    """A formula that does not parse, uses something not allowed, or names an unknown field."""


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


def evaluate_formula(formula: str, values: Mapping[str, Any]) -> Any:
    """The value of ``formula`` over ``values``; ``None`` when it cannot be computed.

    A formula over a missing value, a division by zero or a result too large
    gives ``None`` (an empty computed value) rather than failing the write:
    the inputs were valid, only the formula has nothing to say about them.
    """
    evaluator = simpleeval.SimpleEval(functions=FUNCTIONS, names=dict(values))
    try:
        result = evaluator.eval(formula.strip())
    except Exception:
        return None
    if isinstance(result, bool) or result is None:
        return result
    if isinstance(result, int):
        return result if -(2**63) <= result < 2**63 else None
    if isinstance(result, float):
        return result if math.isfinite(result) else None
    if isinstance(result, str):
        return result if len(result) <= MAX_RESULT_LENGTH else None
    return None
