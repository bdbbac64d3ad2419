"""Cache values as bytes: a 1-byte tag, then the payload.

- ``J`` + JSON (orjson) for plain Python data — row dicts, envelopes, lists.
  The JSON is *not* type-tagged: ``datetime``/``date``/``time`` go in as ISO 8601 strings
  (orjson's native format, e.g. ``2026-06-30T07:30:00``) and come back as strings;
  ``Decimal`` goes in as ``int`` when integral, else ``float``; numpy scalars and arrays
  as numbers and lists. Producers that want a cache hit to look exactly like a miss emit
  JSON-native values themselves (``to_json_native`` does it for a whole value).
  Non-string dict keys are refused (``TypeError``) rather than silently turned into strings.
- ``A`` + Arrow IPC *stream* format for a ``pyarrow.Table``: types (timestamps included)
  round-trip exactly, and decoding reads the buffers in place (no copy of the payload).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson
import pyarrow as pa

TAG_JSON = b"J"
TAG_ARROW = b"A"
_JSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY


def json_default(obj: Any) -> Any:
    if isinstance(obj, Decimal):
        return int(obj) if obj == obj.to_integral_value() else float(obj)
    if hasattr(obj, "isoformat"):  # pandas.Timestamp and other datetime look-alikes
        return obj.isoformat()
    if isinstance(obj, set | frozenset | tuple):
        return list(obj)
    raise TypeError(f"cannot cache a value of type {type(obj).__name__}")


def encode(value: Any) -> bytes:
    """Tagged bytes for ``value``; ``TypeError`` when it cannot be encoded."""
    if isinstance(value, pa.Table):
        sink = pa.BufferOutputStream()
        sink.write(TAG_ARROW)
        with pa.ipc.new_stream(sink, value.schema) as writer:
            writer.write_table(value)
        return bytes(sink.getvalue().to_pybytes())
    return TAG_JSON + orjson.dumps(value, default=json_default, option=_JSON_OPTIONS)


def decode(data: bytes) -> Any:
    """The value ``encode`` was given (JSON values JSON-native, see the module docstring)."""
    tag = data[:1]
    if tag == TAG_JSON:
        return orjson.loads(memoryview(data)[1:])
    if tag == TAG_ARROW:
        buffer = pa.py_buffer(data)
        return pa.ipc.open_stream(buffer.slice(1)).read_all()
    raise ValueError(f"unknown cache value tag {tag!r}")


def to_json_native(value: Any) -> Any:
    """``value`` as the JSON codec would give it back (datetimes → ISO strings, …)."""
    return orjson.loads(orjson.dumps(value, default=json_default, option=_JSON_OPTIONS))
