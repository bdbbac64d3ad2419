"""Builds WHERE fragments with bind parameters only.

Values never enter SQL text: every value becomes a ``:pN`` placeholder. ``add_in_condition``
splits lists longer than ``ORACLE_IN_BATCH_SIZE`` (1000, Oracle's IN-list limit) into OR-ed
IN groups so one statement serves any list size on every dialect.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")


def _check_column(column: str) -> str:
    # Column names come from code, but guard anyway: only plain (qualified) identifiers.
    if not _IDENT.match(column):
        raise ValueError(f"bad column name {column!r}")
    return column


class QueryBuilder:
    def __init__(self, in_batch_size: int = 1000, prefix: str = "p") -> None:
        self.in_batch_size = in_batch_size
        self.prefix = prefix
        self.conditions: list[str] = []
        self.params: dict[str, Any] = {}

    def bind(self, value: Any) -> str:
        """A fresh placeholder for ``value``; returns ``:name``."""
        name = f"{self.prefix}{len(self.params)}"
        self.params[name] = value
        return f":{name}"

    def add(self, fragment: str, **values: Any) -> QueryBuilder:
        """A condition written in code, with its own named binds (``:name`` in fragment)."""
        for key in values:
            if key in self.params:
                raise ValueError(f"bind {key!r} given twice")
        self.params.update(values)
        self.conditions.append(fragment)
        return self

    def in_condition(self, column: str, values: Sequence[Any]) -> str:
        """``(col IN (:p0, …) OR col IN (…))``; an empty list matches nothing."""
        column = _check_column(column)
        values = list(values)
        if not values:
            return "1 = 0"
        groups = []
        for start in range(0, len(values), self.in_batch_size):
            chunk = values[start : start + self.in_batch_size]
            groups.append(f"{column} IN ({', '.join(self.bind(v) for v in chunk)})")
        return groups[0] if len(groups) == 1 else "(" + " OR ".join(groups) + ")"

    def add_in_condition(self, column: str, values: Sequence[Any]) -> QueryBuilder:
        self.conditions.append(self.in_condition(column, values))
        return self

    def add_or_like_conditions(
        self, column: str, patterns: Iterable[str], escape: str = "\\"
    ) -> QueryBuilder:
        """``(col LIKE :p0 ESCAPE '\\' OR …)``; patterns are bound, never inlined."""
        column = _check_column(column)
        likes = [f"{column} LIKE {self.bind(p)} ESCAPE '{escape}'" for p in patterns]
        self.conditions.append("(" + " OR ".join(likes) + ")" if likes else "1 = 0")
        return self

    def add_equals(self, column: str, value: Any) -> QueryBuilder:
        self.conditions.append(f"{_check_column(column)} = {self.bind(value)}")
        return self

    def add_between(self, column: str, start: Any, end: Any) -> QueryBuilder:
        """Half-open ``start <= col < end`` (time ranges never double-count a boundary)."""
        column = _check_column(column)
        self.conditions.append(f"{column} >= {self.bind(start)} AND {column} < {self.bind(end)}")
        return self

    def condition_sql(self) -> str:
        """The conditions joined with AND, or ``1 = 1``: fills a ``WHERE {{ filters }}`` slot."""
        return " AND ".join(f"({c})" for c in self.conditions) or "1 = 1"

    def where(self, keyword: str = "WHERE") -> str:
        """`` WHERE a AND b`` or an empty string."""
        if not self.conditions:
            return ""
        return f" {keyword} " + " AND ".join(f"({c})" for c in self.conditions)

    def and_(self) -> str:
        """`` AND a AND b`` to append to an existing WHERE, or an empty string."""
        return self.where("AND")


def like_escape(literal: str, escape: str = "\\") -> str:
    """Escape LIKE metacharacters in a literal."""
    return literal.replace(escape, escape + escape).replace("%", escape + "%").replace("_", escape + "_")
