"""A finished trace job's parts merged into one file per domain (Parquet or CSV), one part
at a time — what ``mesdash trace --out`` writes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mesdash.trace.parts import Manifest


def _unify(tables: list[Any]) -> Any:
    """One schema for every part: a column whose types differ between parts becomes text."""
    import pyarrow as pa

    fields: dict[str, Any] = {}
    for schema in tables:
        for f in schema:
            known = fields.get(f.name)
            fields[f.name] = f.type if known is None or known == f.type else pa.string()
    return pa.schema([pa.field(name, kind) for name, kind in fields.items()])


def export_domain(manifest: Manifest, domain: str, target: Path, fmt: str = "parquet") -> int:
    """Write ``domain``'s rows to ``target``; returns the row count (no file when 0)."""
    import pyarrow as pa
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    files = [manifest.folder / p["file"] for p in manifest.done(domain) if p["file"]]
    if not files:
        return 0
    schema = _unify([pq.read_schema(f) for f in files])
    tmp = target.with_suffix(target.suffix + ".tmp")
    writer: Any = pq.ParquetWriter(tmp, schema) if fmt == "parquet" else pcsv.CSVWriter(tmp, schema)
    rows = 0
    try:
        for path in files:
            table = pq.read_table(path)
            columns = [
                table[name].cast(field.type) if name in table.column_names
                else pa.nulls(table.num_rows, field.type)
                for name, field in zip(schema.names, schema, strict=True)
            ]
            writer.write_table(pa.Table.from_arrays(columns, schema=schema))
            rows += table.num_rows
    finally:
        writer.close()
    tmp.replace(target)
    return rows
