"""Where the manifest of a generated warehouse lives: next to a DuckDB file, or under
``MESDASH_VAR_DIR`` for a server database (the warehouse schema stays the contract)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url


def manifest_path(warehouse: Any) -> Path:
    if warehouse.dialect == "duckdb":
        path = str(getattr(warehouse.driver, "path", ":memory:"))
        if path != ":memory:":
            return Path(path + ".manifest.json")
        return Path(warehouse.settings.var_dir) / "manifest-duckdb-memory.json"
    name = make_url(warehouse.url).database or "default"
    return Path(warehouse.settings.var_dir) / f"manifest-{name}.json"


def write_manifest(warehouse: Any, manifest: dict[str, Any]) -> Path:
    path = manifest_path(warehouse)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8")
    tmp.replace(path)
    return path


def load_manifest(warehouse: Any) -> dict[str, Any] | None:
    path = manifest_path(warehouse)
    if not path.exists():
        return None
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data
