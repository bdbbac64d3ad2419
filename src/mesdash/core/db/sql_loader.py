"""SQL lives in ``.sql`` files under ``mesdash/sql/<area>/``.

``name.<dialect>.sql`` (oracle, postgresql, duckdb) overrides ``name.sql`` for that dialect.
``{{> area/name }}`` includes another file (a shared subquery) before slots are filled.
Templates hold *structural* fragments only — ``{{ where }}``, ``{{ limit }}`` — filled from
code (the QueryBuilder), never from user input; values are always bind parameters.
"""

from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources
from pathlib import Path

DIALECTS = ("oracle", "postgresql", "duckdb")
_SLOT = re.compile(r"\{\{\s*(\w+)\s*\}\}")
_INCLUDE = re.compile(r"\{\{>\s*([\w/]+)\s*\}\}")
# "-- example <slot>: <text>" documents a slot and gives the SQL tests a value to render.
_EXAMPLE = re.compile(r"^--\s*example\s+(\w+)\s*:\s*(.+?)\s*$", re.MULTILINE)
SQL_ROOT = Path(str(resources.files("mesdash") / "sql"))


@lru_cache(maxsize=512)
def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


class SQLLoader:
    def __init__(self, dialect: str, root: Path = SQL_ROOT) -> None:
        if dialect not in DIALECTS:
            raise ValueError(f"unknown dialect {dialect!r}")
        self.dialect = dialect
        self.root = root

    def path(self, name: str) -> Path:
        """The file used for ``name`` (``area/query``) on this dialect."""
        if ".." in name.split("/") or name.startswith("/"):
            raise ValueError(f"bad SQL name {name!r}")
        specific = self.root / f"{name}.{self.dialect}.sql"
        if specific.exists():
            return specific
        portable = self.root / f"{name}.sql"
        if not portable.exists():
            raise FileNotFoundError(f"no SQL file for {name!r}")
        return portable

    def text(self, name: str, _depth: int = 0) -> str:
        """The file's text with its includes expanded (slots still open)."""
        if _depth > 5:
            raise ValueError(f"SQL include nesting too deep at {name!r}")
        return _INCLUDE.sub(lambda m: self.text(m.group(1), _depth + 1).strip(), _read(self.path(name)))

    def load(self, name: str, **fragments: str) -> str:
        """The SQL text with its structural slots filled; a slot left empty is an error."""
        text = self.text(name)

        def fill(match: re.Match[str]) -> str:
            key = match.group(1)
            if key not in fragments:
                raise KeyError(f"{name}: fragment {key!r} not given")
            return fragments[key]

        return _SLOT.sub(fill, text)

    def slots(self, name: str) -> list[str]:
        return _SLOT.findall(self.text(name))

    def examples(self, name: str) -> dict[str, str]:
        """Example fragments declared in the file; a slot without one defaults to ``1 = 1``
        (slots hold boolean conditions unless the file says otherwise)."""
        declared = dict(_EXAMPLE.findall(self.text(name)))
        return {slot: declared.get(slot, "1 = 1") for slot in self.slots(name)}


def all_sql_names(root: Path = SQL_ROOT) -> list[str]:
    """Every query name (``area/query``) with a file under ``root``."""
    names = set()
    for path in root.rglob("*.sql"):
        rel = path.relative_to(root).as_posix()[: -len(".sql")]
        parts = rel.rsplit(".", 1)
        names.add(parts[0] if len(parts) == 2 and parts[1] in DIALECTS else rel)
    return sorted(names)
