"""No Oracle server runs here: every query's Oracle rendering is parsed with sqlglot's Oracle
dialect, and tokens Oracle does not have are rejected (sqlglot accepts some of them)."""

from __future__ import annotations

import re

import pytest
import sqlglot

from mesdash.core.db import binds
from mesdash.core.db.sql_loader import SQLLoader, all_sql_names

FORBIDDEN = [r"\bLIMIT\b", r"\bRECURSIVE\b", r"::", r"\bILIKE\b", r"\bTRUE\b", r"\bFALSE\b"]
QUERY_NAMES = [n for n in all_sql_names() if not n.startswith("schema/")]


def _strip_comments(sql: str) -> str:
    return re.sub(r"--[^\n]*|/\*.*?\*/", "", sql, flags=re.DOTALL)


def oracle_text(name: str) -> str:
    loader = SQLLoader("oracle")
    return loader.load(name, **loader.examples(name))


def test_there_are_queries_to_check() -> None:
    assert QUERY_NAMES, "no SQL files found"


@pytest.mark.parametrize("name", QUERY_NAMES)
def test_oracle_rendering_parses(name: str) -> None:
    sql = oracle_text(name)
    rendered, _ = binds.render(sql, {n: None for n in binds.bind_names(sql)}, "oracle")
    statements = sqlglot.parse(rendered, read="oracle")
    assert statements and all(s is not None for s in statements)


@pytest.mark.parametrize("name", QUERY_NAMES)
def test_oracle_rendering_has_no_foreign_tokens(name: str) -> None:
    body = _strip_comments(oracle_text(name))
    body = re.sub(r"'(?:[^']|'')*'", "''", body)  # literals may say anything
    found = [tok for tok in FORBIDDEN if re.search(tok, body, flags=re.IGNORECASE)]
    assert not found, f"{name}: Oracle has no {found}"


def test_forbidden_token_check_catches_postgres_syntax() -> None:
    sample = "WITH RECURSIVE t AS (SELECT 1::int) SELECT * FROM t WHERE a ILIKE 'x' LIMIT 5"
    assert all(re.search(tok, sample, flags=re.IGNORECASE) for tok in FORBIDDEN[:4])
