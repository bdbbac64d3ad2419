"""Named bind parameters (``:name``) rendered in each driver's paramstyle.

SQL files and the QueryBuilder write ``:name`` (the Oracle and SQLAlchemy style). The
drivers differ: oracledb takes ``:name``, DuckDB ``$name``, psycopg ``%(name)s``. A small
tokenizer skips string literals, quoted identifiers, comments and ``::`` so only real
placeholders are rewritten. (sqlparse or sqlglot could tokenize too, but a full parse per
query costs milliseconds on the hot path; these four lexical rules are all that matters.)
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_TOKENS = re.compile(
    r"'(?:[^']|'')*'"  # string literal
    r'|"(?:[^"]|"")*"'  # quoted identifier
    r"|--[^\n]*"  # line comment
    r"|/\*.*?\*/"  # block comment
    r"|::"  # PostgreSQL cast, not a bind
    r"|:(?P<name>[A-Za-z_]\w*)",
    re.DOTALL,
)


def bind_names(sql: str) -> list[str]:
    """Names of the placeholders in order of first appearance."""
    seen: dict[str, None] = {}
    for match in _TOKENS.finditer(sql):
        if match.group("name"):
            seen.setdefault(match.group("name"), None)
    return list(seen)


def render(sql: str, params: Mapping[str, Any] | None, dialect: str) -> tuple[str, dict[str, Any]]:
    """Rewrite placeholders for ``dialect`` and check every one has a value."""
    params = dict(params or {})
    names = bind_names(sql)
    missing = [n for n in names if n not in params]
    if missing:
        raise KeyError(f"missing bind parameter(s): {', '.join(missing)}")
    used = {n: params[n] for n in names}
    if dialect == "oracle":
        return sql, used
    if dialect == "postgresql":

        def repl(m: re.Match[str]) -> str:
            if m.group("name"):
                return f"%({m.group('name')})s"
            return m.group(0).replace("%", "%%")

        # '%' outside placeholders must be doubled for psycopg, literals included.
        out, pos = [], 0
        for m in _TOKENS.finditer(sql):
            out.append(sql[pos : m.start()].replace("%", "%%"))
            out.append(repl(m))
            pos = m.end()
        out.append(sql[pos:].replace("%", "%%"))
        return "".join(out), used
    if dialect == "duckdb":
        return _TOKENS.sub(lambda m: f"${m['name']}" if m.group("name") else m.group(0), sql), used
    raise ValueError(f"unknown dialect {dialect!r}")
