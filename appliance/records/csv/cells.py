"""Cells a spreadsheet would run as a formula: the guard an export writes, and import takes off again.

Every exported text cell that starts like a formula gets a leading ``'``
(OWASP "CSV injection"), whatever its field's type; the audit archive guards
its cells the same way.
"""

from __future__ import annotations

from appliance.collections.fields import TEXT_TYPES

# Cells a spreadsheet would run as a formula.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def guard_formula(text: str) -> str:
    """``text`` with a leading ``'`` when a spreadsheet would run it as a formula, else as it is."""
    return "'" + text if text.startswith(FORMULA_START) else text


def unguard_formula(kind: str, cell: str) -> str:
    """A cell of a field of type ``kind`` with the export's guard taken off, so an export imports back as it
    was (only for the types an import fills with text, :data:`TEXT_TYPES`)."""
    if kind in TEXT_TYPES and len(cell) > 1 and cell[0] == "'" and cell[1] in FORMULA_START:
        return cell[1:]
    return cell
