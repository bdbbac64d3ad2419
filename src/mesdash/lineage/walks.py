"""Warehouse reads of the lineage engine: the recursive walks and a few set lookups.

Every read goes through the slow path (dedicated connection, slow-query semaphore,
timeout) and is set-at-a-time — never one query per node:

* a walk is one recursive query per batch of seeds, and returns edge ids only;
* the attributes (and so the existence) of every node a walk touched, the seeds included,
  come from one ``containers`` lookup per batch of ids.

Id sets are bind parameters in the form each dialect handles best (``id_condition``): on
DuckDB one list bind (``IN (SELECT UNNEST(:ids))``), on PostgreSQL one array bind
(``= ANY(:ids)``), on Oracle the QueryBuilder's OR-ed IN groups of ``ORACLE_IN_BATCH_SIZE``.
DuckDB plans a long IN list of single binds slowly (about 35 µs a value: 0.35 s for 10,000
ids) and PostgreSQL caps a statement at 65,535 binds, so there a batch is the whole set;
on Oracle a batch is ``ORACLE_IN_BATCH_SIZE`` seeds per CONNECT BY query. A short list
(``DUCKDB_INDEX_LOOKUP_MAX`` ids or fewer) is the exception on DuckDB: single binds let it
probe the column's index instead of scanning the table, which on the 1.4M-container
``large`` warehouse turns the ~165 GD originals' lookup from ~0.2 s into ~0.02 s. A walk
starts on DuckDB from the unnested seed list itself (``seed_rows``): testing 10,000 seeds
against the container table there is a scan of all its rows, and the attribute lookup
tells which seeds exist anyway.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from mesdash.core.db.query_builder import QueryBuilder
from mesdash.core.db.warehouse import Warehouse
from mesdash.lineage.model import Direction, Edge, Snapshot, clean, snapshots

# Walk queries by name: each has a portable (WITH RECURSIVE) file and an Oracle (CONNECT BY
# NOCYCLE) file with the same columns: FROM_ID, TO_ID, EDGE_TYPE, DEPTH (one row per edge).
SPLIT_WALK = "lineage/split_ancestors"
BACKWARD_WALK = "lineage/genealogy"
FORWARD_WALK = "lineage/descendants"
# The Oracle backward and forward walks are one file (connect_by_walk.oracle.sql) whose
# direction is two structural slots: the edge end at the seed's side, and the far end.
WALK_ENDS: dict[Direction, dict[str, str]] = {
    "backward": {"near": "TO_ID", "far": "FROM_ID"},
    "forward": {"near": "FROM_ID", "far": "TO_ID"},
}

ORACLE_IDS_PER_STATEMENT = 10_000  # 10 IN groups of 1000; well under Oracle's bind cap
DUCKDB_INDEX_LOOKUP_MAX = 500  # ids bound one by one (index probes, ≤ ~20 ms of planning)


def chunks(values: Sequence[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(values), size):
        yield list(values[start : start + size])


def id_condition(qb: QueryBuilder, dialect: str, column: str, ids: Sequence[str]) -> str:
    """``column`` is one of ``ids``, bound in the dialect's cheapest form (values are always
    bind parameters; ``column`` comes from code)."""
    if dialect == "duckdb":
        if len(ids) > DUCKDB_INDEX_LOOKUP_MAX:
            return f"{column} IN (SELECT UNNEST({qb.bind(list(ids))}))"
        return qb.in_condition(column, ids)
    if dialect == "postgresql":
        return f"{column} = ANY({qb.bind(list(ids))})"
    return qb.in_condition(column, ids)


@dataclass
class Walk:
    """What a walk met: its edges, and every node it touched (the seeds included) split
    into the ones that exist (with attributes) and the missing ones."""

    direction: Direction
    seeds: set[str] = field(default_factory=set)  # seeds that exist in the warehouse
    edges: dict[Edge, int] = field(default_factory=dict)  # in the order the walk returned them
    nodes: dict[str, Snapshot] = field(default_factory=dict)  # in the order of the lookup
    missing: set[str] = field(default_factory=set)

    def add_rows(self, rows: Iterable[Sequence[Any]]) -> None:
        """Walk rows (FROM_ID, TO_ID, EDGE_TYPE, DEPTH), keeping each edge's least depth
        (an edge may come from several seed batches). Ids are compared as stored (the
        warehouse's ids are fixed-width, unpadded)."""
        edges = self.edges
        for source, target, kind, depth in rows:
            if not source or not target:
                continue
            key = (source, target, kind)
            known = edges.get(key)
            if known is None or depth < known:
                edges[key] = int(depth)

    def touched(self, seeds: Iterable[str]) -> set[str]:
        ids = set(seeds)
        for source, target, _ in self.edges:
            ids.add(source)
            ids.add(target)
        return ids

    def adjacency(self) -> dict[str, list[tuple[str, str]]]:
        """Node → [(next node in the walk's direction, edge type)]."""
        out: dict[str, list[tuple[str, str]]] = {}
        backward = self.direction == "backward"
        for source, target, kind in self.edges:
            near, far = (target, source) if backward else (source, target)
            following = out.get(near)
            if following is None:
                out[near] = [(far, kind)]
            else:
                following.append((far, kind))
        return out


class LineageReader:
    """The engine's queries against one warehouse."""

    def __init__(self, warehouse: Warehouse, max_depth: int, seed_batch_size: int | None) -> None:
        self.wh = warehouse
        self.max_depth = max_depth
        self.in_batch_size = warehouse.settings.oracle_in_batch_size
        oracle = warehouse.dialect == "oracle"
        unbounded = warehouse.settings.lineage_max_seeds
        self.seed_batch_size = max(1, seed_batch_size or (self.in_batch_size if oracle else unbounded))
        self.ids_per_statement = ORACLE_IDS_PER_STATEMENT if oracle else 1_000_000

    def _rows(self, sql: str, params: dict[str, Any]) -> Iterator[tuple[Any, ...]]:
        """Rows as tuples, in the column order of the query's SELECT list."""
        for _, rows in self.wh.read_sql_df_slow_iter(sql, params):
            yield from rows

    def _filter(self, qb: QueryBuilder, column: str, ids: Sequence[str]) -> str:
        return id_condition(qb, self.wh.dialect, column, ids)

    def _lookup(self, name: str, ids: Sequence[str], **columns: str) -> Iterator[tuple[Any, ...]]:
        """Rows of query ``name`` for ``ids``, one statement per batch; each ``slot=column``
        gets a filter over the same batch."""
        for batch in chunks(list(dict.fromkeys(ids)), self.ids_per_statement):
            qb = QueryBuilder(self.in_batch_size)
            fragments = {slot: self._filter(qb, col, batch) for slot, col in columns.items()}
            yield from self._rows(self.wh.sql(name, **fragments), qb.params)

    def seed_rows(self, qb: QueryBuilder, seeds: Sequence[str]) -> str:
        """A walk's start: a subquery of one column ID. DuckDB unnests the seed list (no
        table read); elsewhere the seeds that exist, through the CONTAINERID index (which
        also gives PostgreSQL's recursion the column's own type)."""
        if self.wh.dialect == "duckdb":
            return f"SELECT UNNEST({qb.bind(list(seeds))}) AS ID"
        return self.wh.sql("lineage/seed_ids", id_filter=self._filter(qb, "c.CONTAINERID", seeds))

    def walk(self, name: str, seeds: Sequence[str], direction: Direction) -> Walk:
        """Run walk ``name`` over ``seeds`` (one query per seed batch), then look up every
        node it touched, the seeds included."""
        result = Walk(direction)
        for batch in chunks(list(seeds), self.seed_batch_size):
            qb = QueryBuilder(self.in_batch_size)
            sql = self.wh.sql(name, seed_ids=self.seed_rows(qb, batch), **WALK_ENDS[direction])
            result.add_rows(self._rows(sql, {**qb.params, "max_depth": self.max_depth}))
        touched = result.touched(seeds)
        result.nodes = self.containers(list(touched)) if touched else {}
        result.missing = touched - result.nodes.keys()
        result.seeds = {seed for seed in seeds if seed in result.nodes}
        return result

    def containers(self, ids: Sequence[str]) -> dict[str, Snapshot]:
        """Attributes of the containers among ``ids`` that exist, in id order (per batch)."""
        name = "lineage/containers_many" if len(ids) > DUCKDB_INDEX_LOOKUP_MAX else "lineage/containers"
        return snapshots(self._lookup(name, ids, id_filter="c.CONTAINERID"))

    def merge_sources(self, ids: Sequence[str]) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        for row in self._lookup("lineage/merge_sources", ids, id_filter="m.LOTID"):
            finished, source = clean(row[0]), clean(row[1])
            if finished and source and finished != source:
                out.setdefault(finished, set()).add(source)
        return out

    def leaf_serials(self, ids: Sequence[str]) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        rows = self._lookup("lineage/leaf_serials", ids, lot_filter="m.LOTID", source_filter="m.CONTAINERID")
        for row in rows:
            node, serial = clean(row[0]), clean(row[1])
            if node and serial:
                out.setdefault(node, set()).add(serial)
        return out

    def ids_by_name(self, names: Sequence[str]) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for row in self._lookup("lineage/lot_ids_by_name", names, name_filter="c.CONTAINERNAME"):
            name, cid = clean(row[0]), clean(row[1])
            if name and cid:
                out.setdefault(name, []).append(cid)
        return out
