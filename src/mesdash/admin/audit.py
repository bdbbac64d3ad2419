"""The admin audit log: one JSON object a line at ``MESDASH_AUDIT_LOG``.

Every restart request, override and watchdog action is appended (who, when, why, decision)
with ``O_APPEND`` under a file lock, so web workers and the watchdog can write at once and
the file outlives every process.
"""

from __future__ import annotations

import os
from collections import deque
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from filelock import FileLock

from mesdash.core.redact import redact


class AuditLog:
    def __init__(self, path: Path) -> None:
        self.path = path

    def write(
        self, action: str, decision: str, *, actor: str, reason: str = "", **fields: Any
    ) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "ts": datetime.now(UTC).isoformat(),
            "action": action,
            "decision": decision,
            "actor": actor,
            "reason": redact(reason),
            "pid": os.getpid(),
            **fields,
        }
        line = orjson.dumps(entry) + b"\n"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(self.path) + ".lock", timeout=10):
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
            try:
                os.write(fd, line)
                os.fsync(fd)
            finally:
                os.close(fd)
        return entry

    def tail(self, limit: int = 50) -> list[dict[str, Any]]:
        """The last ``limit`` entries, oldest first (lines that do not parse are skipped)."""
        if not self.path.exists():
            return []
        last: deque[bytes] = deque(maxlen=limit)
        with self.path.open("rb") as fh:
            for raw in fh:
                if raw.strip():
                    last.append(raw)
        out = []
        for raw in last:
            try:
                out.append(orjson.loads(raw))
            except orjson.JSONDecodeError:
                continue
        return out
