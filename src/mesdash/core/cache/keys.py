"""Cache keys: ``{kind}:{domain}:v{schema}:{hash}``, the hash over canonical JSON.

The parameters are normalized before hashing so that equal requests get equal keys:
dict keys sorted, every list / tuple / set sorted (a list of ids is a set of ids), dates
and datetimes as ISO strings. A parameter whose order matters (a sort order, a column
list) is named in ``ordered`` and keeps its order.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping
from typing import Any

import orjson

from mesdash.core.cache.codec import json_default
from mesdash.settings import SCHEMA_VERSION

_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_SERIALIZE_NUMPY


def _dumps(value: Any) -> bytes:
    return orjson.dumps(value, default=json_default, option=_OPTIONS)


def _sorted(items: Collection[Any]) -> list[Any]:
    values = [_normalize(v) for v in items]
    if all(isinstance(v, str) for v in values) or all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in values
    ):
        return sorted(values)
    return sorted(values, key=_dumps)


def _normalize(value: Any, ordered: Collection[str] = ()) -> Any:
    if isinstance(value, Mapping):
        return {
            str(k): (
                [_normalize(x) for x in v]
                if str(k) in ordered and isinstance(v, list | tuple)
                else _normalize(v)
            )
            for k, v in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return _sorted(value)
    return value


def canonical_json(params: Mapping[str, Any], ordered: Collection[str] = ()) -> bytes:
    """Canonical JSON of ``params``: sorted keys, sorted lists (except ``ordered`` keys)."""
    return _dumps(_normalize(params, frozenset(ordered)))


def query_hash(params: Mapping[str, Any], ordered: Collection[str] = ()) -> str:
    """SHA-256[:16] (hex) of the canonical JSON of ``params``."""
    return hashlib.sha256(canonical_json(params, ordered)).hexdigest()[:16]


def cache_key(kind: str, domain: str, params: Mapping[str, Any], schema_version: int = SCHEMA_VERSION) -> str:
    """``{kind}:{domain}:v{schema_version}:{query_hash(params)}``, e.g. ``evt:history:v1:…``."""
    return f"{kind}:{domain}:v{schema_version}:{query_hash(params)}"
