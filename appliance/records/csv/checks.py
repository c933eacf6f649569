"""Checking an import before anything is written: which field each column fills, and every row's values.

Every row goes through the one validation of :mod:`appliance.records.validation`
(types, required, choices, relations), plus uniqueness within the file and
against the table, and gets its computed fields. Any bad row stops the
import, with every bad row named (up to :data:`MAX_BAD_ROWS`); nothing is written.

The importer's field rules (:func:`appliance.collections.access.field_rules`)
apply to the columns: one that fills a field read-only for it is refused
(:class:`PermissionDenied`, naming the column and the field), and a field
hidden from it is, to the import, no field at all.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from appliance.actors import ActorLike
from appliance.collections.access import FieldRules, field_rules
from appliance.collections.definitions import CollectionDef
from appliance.collections.fields import SYSTEM_FIELDS, to_column
from appliance.collections.schema import quote
from appliance.errors import PermissionDenied, ValidationFailed
from appliance.records.csv.cells import unguard_formula
from appliance.records.csv.reading import CsvTable, read_csv
from appliance.records.validation import clean_values, relation_errors
from appliance.records.write import computed_values
from appliance.storage.db import database

PREVIEW_ROWS = 5
# The check phase reports its progress (and so the job's heartbeat) every this many rows.
CHECK_PROGRESS_EVERY = 1000
# A refused import names at most this many bad rows (and counts the rest), so its error stays small.
MAX_BAD_ROWS = 1000
# ``progress(phase, done, total)``: phase ``"checking"`` or ``"writing"``.
Progress = Callable[[str, int, int], None]


# --- mapping columns to fields ------------------------------------------------------------------


def importable_fields(collection: CollectionDef, actor: ActorLike | None = None) -> list[str]:
    """The fields a CSV column can fill (for ``actor``): all but computed and file fields, and those
    hidden from or read-only for ``actor``."""
    unwritable = field_rules(collection, actor).unwritable
    return [f.name for f in collection.fields if f.type not in ("computed", "file") and f.name not in unwritable]


def suggest_mapping(collection: CollectionDef, header: list[str], rules: FieldRules | None = None) -> dict[str, str]:
    """For each column, the field it fills by default: the field of that name or label (any case), else ``""``.

    Columns an export writes but an import cannot fill (``id``, times,
    computed and file fields, and fields ``rules`` make read-only) map to ``""``
    (skipped); a field ``rules`` hide is matched by no column.
    """
    unwritable = rules.unwritable if rules is not None else frozenset()
    by_key: dict[str, str] = {}
    for spec in collection.fields:
        if spec.type in ("computed", "file") or spec.name in unwritable:
            continue
        by_key.setdefault(spec.name.lower(), spec.name)
        if spec.label:
            by_key.setdefault(spec.label.strip().lower(), spec.name)
    return {column: by_key.get(column.lower(), "") for column in header}


def _ignorable(collection: CollectionDef, column: str, rules: FieldRules) -> bool:
    """Columns an export of this collection writes that an import leaves alone."""
    spec = collection.field(column) if column not in rules.hidden else None
    return column in SYSTEM_FIELDS or (spec is not None and spec.type in ("computed", "file")) or column == ""


def _refuse_read_only(
    collection: CollectionDef, header: list[str], chosen: Mapping[str, str], rules: FieldRules, *, by_name: bool
) -> None:
    """:class:`PermissionDenied` naming the first column that fills (or, ``by_name``, is named after) a
    read-only field."""
    for column in header:
        target = (chosen.get(column) or "").strip()
        if not target and by_name:
            spec = collection.field(column) or next((f for f in collection.fields if f.label == column), None)
            target = spec.name if spec is not None else ""
        if target in rules.read_only:
            raise PermissionDenied(
                f"Column {column!r} fills the field {target!r}, which is read-only for you; "
                "remove the column or skip it.",
                fields={"mapping": f"The field {target!r} is read-only for you."},
            )


def check_mapping(
    collection: CollectionDef,
    header: list[str],
    mapping: Mapping[str, str] | None,
    actor: ActorLike | None = None,
) -> dict[int, str]:
    """Which field each column position fills, from ``mapping`` (column name to field name, ``""`` skips).

    Without a mapping the suggested one is used, and a column that matches no
    field (and is not one an export writes, like ``id``) is refused rather
    than dropped unseen. Raises :class:`ValidationFailed` (key ``mapping``)
    for an unknown or computed field (a field hidden from ``actor`` is unknown), a field filled
    twice, or no column used; :class:`PermissionDenied` for a column that fills a field read-only
    for ``actor`` (mapped to it, or without a mapping named after it).
    """
    errors: dict[str, str] = {}
    rules = field_rules(collection, actor)
    chosen = dict(mapping) if mapping is not None else suggest_mapping(collection, header, rules)
    if mapping is None:
        _refuse_read_only(collection, header, chosen, rules, by_name=True)
        unknown = [c for c in header if not chosen.get(c) and not _ignorable(collection, c, rules)]
        if unknown:
            names = ", ".join(repr(c) for c in unknown[:10])
            errors["mapping"] = f"These columns match no field: {names}. Rename them after the fields, or remove them."
    else:
        _refuse_read_only(collection, header, chosen, rules, by_name=False)
    writable = set(importable_fields(collection, actor))
    positions: dict[int, str] = {}
    used: dict[str, str] = {}
    for position, column in enumerate(header):
        target = (chosen.get(column) or "").strip()
        if not target:
            continue
        if target not in writable:
            errors["mapping"] = f"Column {column!r}: there is no field {target!r} that an import can fill."
            continue
        if target in used:
            errors["mapping"] = f"Columns {used[target]!r} and {column!r} both fill the field {target!r}."
            continue
        used[target] = column
        positions[position] = target
    if not positions and "mapping" not in errors:
        errors["mapping"] = "No column fills a field; choose at least one."
    if errors:
        raise ValidationFailed(errors, message="The columns do not fit the collection")
    return positions


def preview_csv(
    collection: CollectionDef,
    data: bytes | str,
    rows: int = PREVIEW_ROWS,
    *,
    max_rows: int | None = None,
    actor: ActorLike | None = None,
) -> dict[str, Any]:
    """What the import page shows before importing: header, first rows, row count, suggested mapping
    (for ``actor``: no field it may not set). Raises as :func:`read_csv` (a file over ``max_rows`` included)."""
    table = read_csv(data, max_rows=max_rows)
    return {
        "header": table.header,
        "rows": [{"line": line, "cells": cells} for line, cells in table.rows[:rows]],
        "total_rows": len(table.rows),
        "delimiter": table.delimiter,
        "mapping": suggest_mapping(collection, table.header, field_rules(collection, actor)),
    }


# --- checking every row -------------------------------------------------------------------------


def _unique_errors(
    collection: CollectionDef, cleaned_rows: list[tuple[int, dict[str, Any]]]
) -> dict[int, dict[str, str]]:
    """Unique values repeated within the file (later lines are named) or already in the table."""
    errors: dict[int, dict[str, str]] = {}
    for spec in collection.fields:
        if not spec.unique:
            continue
        first_line: dict[Any, int] = {}
        for line, values in cleaned_rows:
            value = values.get(spec.name)
            if value is None:
                continue
            key = to_column(spec, value)
            if key in first_line:
                errors.setdefault(line, {})[spec.name] = f"Line {first_line[key]} has this value too."
            else:
                first_line[key] = line
        keys = list(first_line)
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ", ".join("?" for _ in chunk)
            taken = database.execute_sql(
                f"SELECT {quote(spec.name)} FROM {quote(collection.table)} WHERE {quote(spec.name)} IN ({marks})",
                chunk,
            ).fetchall()
            for (value,) in taken:
                errors.setdefault(first_line[value], {})[spec.name] = "Another record already has this value."
    return errors


def check_rows(
    collection: CollectionDef,
    table: CsvTable,
    positions: Mapping[int, str],
    actor: ActorLike,
    *,
    progress: Progress | None = None,
) -> list[dict[str, Any]]:
    """Every row's values in stored form, computed fields included, in file order; raises
    :class:`ValidationFailed` naming the bad rows.

    The error carries ``rows``: ``[{"line": 7, "fields": {"quantity": "Enter a whole number."}}]``,
    in line order; a computed field whose formula hits a size bound for a row's
    values is that row's error, named by the field. Nothing is written. Every
    row is checked, but at most :data:`MAX_BAD_ROWS` bad rows are named (the
    first ones found); the others are counted in ``more_bad_rows`` and the
    message ("... and N more bad rows"), so the error stays small however bad
    the file.
    ``progress("checking", done, total)`` is called every
    :data:`CHECK_PROGRESS_EVERY` rows.
    """
    width = len(table.header)
    total = len(table.rows)
    cleaned_rows: list[tuple[int, dict[str, Any]]] = []
    bad: dict[int, dict[str, str]] = {}
    # Bad lines past the first MAX_BAD_ROWS: counted, their errors not kept.
    more: set[int] = set()

    def mark_bad(line: int, errors: dict[str, str]) -> None:
        if line in bad:
            bad[line].update(errors)
        elif line not in more:
            if len(bad) < MAX_BAD_ROWS:
                bad[line] = errors
            else:
                more.add(line)

    for done, (line, cells) in enumerate(table.rows):
        if progress and done and done % CHECK_PROGRESS_EVERY == 0:
            progress("checking", done, total)
        if len(cells) > width and any(c.strip() for c in cells[width:]):
            mark_bad(line, {"_row": f"This line has {len(cells)} cells; the header names {width} columns."})
            continue
        values = {}
        for position, name in positions.items():
            spec = collection.field(name)
            cell = cells[position] if position < len(cells) else ""
            # An empty cell gives no value: the field takes its default (and 'required' still applies).
            if cell != "":
                values[name] = unguard_formula(spec.type if spec else "", cell)
        cleaned, errors = clean_values(collection, values, form=True)
        errors.update({k: v for k, v in relation_errors(collection, cleaned, actor).items() if k not in errors})
        if not errors:
            computed, formula_errors = computed_values(collection, cleaned)
            errors.update(formula_errors)
            cleaned.update(computed)
        if errors:
            mark_bad(line, errors)
        else:
            cleaned_rows.append((line, cleaned))
    for line, errors in sorted(_unique_errors(collection, cleaned_rows).items()):
        mark_bad(line, errors)
    if bad:
        count = len(bad) + len(more)
        tail = f" (the first {len(bad)} are listed, and {len(more)} more bad rows)" if more else ""
        raise ValidationFailed(
            {},
            message=f"{count} row{'' if count == 1 else 's'} of the file {'is' if count == 1 else 'are'} invalid"
            f"{tail}; nothing was imported",
            rows=[{"line": line, "fields": bad[line]} for line in sorted(bad)],
            more_bad_rows=len(more),
        )
    return [values for _line, values in cleaned_rows]
