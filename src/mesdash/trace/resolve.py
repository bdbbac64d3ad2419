"""Lot resolution: what an engineer types → the lots' container IDs.

Input types and the column each matches (only lots, ``OBJECTTYPE = 'LOT'``):

- ``lot_id`` — ``DW_MES_CONTAINER.CONTAINERNAME``
- ``work_order`` — ``MFGORDERNAME``
- ``wafer_lot`` — ``FIRSTNAME``
- ``serial_number`` — ``DW_MES_PJ_COMBINEDASSYLOTS.FINISHEDNAME``, resolved to the finished
  lot that carries the serial (the container named by ``LOTID``), not to its merge sources:
  the finished lot is what the serial names, and lineage reaches the sources from it.
- ``gd_lot_id`` — ``CONTAINERNAME`` of GD rework lots (``MFGORDERNAME`` starting ``GD``)
- ``gd_work_order`` — ``MFGORDERNAME`` starting ``GD``

Values are trimmed, de-duplicated and empty ones dropped, order kept. ``*`` and ``%`` are
wildcards (``_`` is literal) and need at least two literal leading characters. Exact values
of one request go to the warehouse together (IN-lists, ``VALUES_PER_STATEMENT`` a statement);
each wildcard token is one query. Every query carries a row cap of limit + 1, so an
expansion over ``CONTAINER_RESOLVE_MAX_PER_TOKEN`` (one token) or
``CONTAINER_RESOLVE_MAX_TOTAL`` (the request; matches are counted before de-duplication)
answers ``TooManyIds`` (413) without reading further.

Result: ``{data, not_found, expansion_info}``. ``data`` lists each lot once, in input order
(the lots of one token sorted by name), under the first token that matched it;
``expansion_info`` gives the match count of each wildcard token.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from mesdash.core.db.query_builder import QueryBuilder, like_escape
from mesdash.core.db.warehouse import Warehouse
from mesdash.core.resilience.errors import MesdashError, TooManyIds, ValidationFailed
from mesdash.core.validation import normalize_ids
from mesdash.settings import get_settings

VALUES_PER_STATEMENT = 5000  # exact values in one statement (OR-ed IN groups of 1000)
MIN_LITERAL_PREFIX = 2
_WILDCARD = re.compile(r"[*%]")
_OUTPUT = ("CONTAINERID", "CONTAINERNAME", "MFGORDERNAME", "FIRSTNAME", "SPECNAME", "QTY")


@dataclass(frozen=True)
class InputKind:
    sql: str  # query name under sql/
    column: str  # the column the inputs match
    gd_only: bool = False  # only lots of GD (rework) work orders


INPUT_TYPES: dict[str, InputKind] = {
    "lot_id": InputKind("resolve/containers", "c.CONTAINERNAME"),
    "work_order": InputKind("resolve/containers", "c.MFGORDERNAME"),
    "wafer_lot": InputKind("resolve/containers", "c.FIRSTNAME"),
    "serial_number": InputKind("resolve/serials", "m.FINISHEDNAME"),
    "gd_lot_id": InputKind("resolve/containers", "c.CONTAINERNAME", gd_only=True),
    "gd_work_order": InputKind("resolve/containers", "c.MFGORDERNAME", gd_only=True),
}


def like_pattern(token: str) -> str | None:
    """The LIKE pattern of a wildcard token (``*``/``%`` → ``%``, other characters literal,
    escaped with ``\\``), or None for an exact value. Fewer than two literal leading
    characters is a ``ValidationFailed`` naming the token."""
    if not _WILDCARD.search(token):
        return None
    parts = _WILDCARD.split(token)
    if len(parts[0]) < MIN_LITERAL_PREFIX:
        raise ValidationFailed(
            f"wildcard {token!r} needs at least {MIN_LITERAL_PREFIX} literal leading characters",
            extra={"token": token},
        )
    return "%".join(like_escape(part) for part in parts)


def _text(value: Any) -> str | None:
    """A trimmed string or None (Oracle CHAR columns come padded)."""
    if value is None:
        return None
    return str(value).strip() or None


class _Resolution:
    """Runs the queries of one request and keeps the guards' counts."""

    def __init__(self, warehouse: Warehouse, kind: InputKind) -> None:
        settings = get_settings()
        self.wh = warehouse
        self.kind = kind
        self.per_token = settings.container_resolve_max_per_token
        self.total = settings.container_resolve_max_total
        self.fetched = 0
        self.matches: dict[str, list[dict[str, Any]]] = {}

    def _builder(self) -> QueryBuilder:
        qb = QueryBuilder(self.wh.settings.oracle_in_batch_size)
        if self.kind.gd_only:
            qb.add("c.MFGORDERNAME LIKE :gd_prefix", gd_prefix="GD%")
        return qb

    def _query(self, qb: QueryBuilder, cap: int) -> list[dict[str, Any]]:
        sql = self.wh.sql(self.kind.sql, match_column=self.kind.column, filters=qb.condition_sql())
        result = self.wh.read_sql_df(sql, {**qb.params, "cap": cap})
        rows = result.to_dicts()
        self.fetched += len(rows)
        if self.fetched > self.total:
            raise TooManyIds(
                f"the inputs expand to more than {self.total} lots (CONTAINER_RESOLVE_MAX_TOTAL)",
                extra={"limit": self.total},
            )
        return rows

    def _too_many(self, token: str) -> MesdashError:
        return TooManyIds(
            f"{token!r} expands to more than {self.per_token} lots (CONTAINER_RESOLVE_MAX_PER_TOKEN)",
            extra={"token": token, "limit": self.per_token},
        )

    def exact(self, values: Sequence[str]) -> None:
        for start in range(0, len(values), VALUES_PER_STATEMENT):
            qb = self._builder()
            qb.add_in_condition(self.kind.column, values[start : start + VALUES_PER_STATEMENT])
            for row in self._query(qb, self.total - self.fetched + 1):
                value = _text(row["MATCH_VALUE"])
                if value is not None:
                    self.matches.setdefault(value, []).append(row)
        for value in values:
            if len(self.matches.get(value, ())) > self.per_token:
                raise self._too_many(value)

    def wildcard(self, token: str, pattern: str) -> None:
        qb = self._builder()
        qb.add(f"{self.kind.column} LIKE :pattern ESCAPE '\\'", pattern=pattern)
        rows = self._query(qb, min(self.per_token, self.total - self.fetched) + 1)
        if len(rows) > self.per_token:
            raise self._too_many(token)
        self.matches[token] = rows


def _lot(row: dict[str, Any], token: str) -> dict[str, Any]:
    cid, name, order, wafer, spec, qty = (row[c] for c in _OUTPUT)
    return {
        "container_id": _text(cid),
        "lot_id": _text(name),
        "input_value": token,
        "mfgorder_name": _text(order),
        "wafer_lot": _text(wafer),
        "spec_name": _text(spec),
        "qty": qty,
    }


def _name_order(row: dict[str, Any]) -> tuple[str, str]:
    return str(row["CONTAINERNAME"]), str(row["CONTAINERID"])


def resolve_lots(warehouse: Warehouse, input_type: str, values: Iterable[Any]) -> dict[str, Any]:
    """``{data: [{container_id, lot_id, input_value, mfgorder_name, wafer_lot, spec_name,
    qty}], not_found: [...], expansion_info: {token: count}}`` — see the module docstring."""
    kind = INPUT_TYPES.get(input_type)
    if kind is None:
        raise ValidationFailed(
            f"unknown input_type {input_type!r}; one of {', '.join(INPUT_TYPES)}",
            extra={"input_type": input_type},
        )
    tokens = normalize_ids(values)
    patterns = {token: like_pattern(token) for token in tokens}
    run = _Resolution(warehouse, kind)
    if len(tokens) > run.total:
        raise TooManyIds(
            f"{len(tokens)} inputs; CONTAINER_RESOLVE_MAX_TOTAL is {run.total}", extra={"limit": run.total}
        )
    run.exact([t for t in tokens if patterns[t] is None])
    for token, pattern in patterns.items():
        if pattern is not None:
            run.wildcard(token, pattern)

    data: list[dict[str, Any]] = []
    seen: set[str | None] = set()
    for token in tokens:
        for row in sorted(run.matches.get(token, ()), key=_name_order):
            lot = _lot(row, token)
            if lot["container_id"] not in seen:
                seen.add(lot["container_id"])
                data.append(lot)
    return {
        "data": data,
        "not_found": [t for t in tokens if not run.matches.get(t)],
        "expansion_info": {t: len(run.matches.get(t, ())) for t, p in patterns.items() if p is not None},
    }


__all__ = ["INPUT_TYPES", "InputKind", "like_pattern", "resolve_lots"]
