"""Where job records live: a Redis hash per job, or a JSON sidecar file without Redis.

A record is a flat dict (``id, kind, queue, func, status, progress, error, result, urls,
attempt, created_at, started_at, ended_at, heartbeat_at, worker``); the request parameters
(possibly 200,000 ids) live beside it (``put_params``/``get_params``) so status reads stay small. Every status
change is a compare-and-set (``update(..., when=(…))``) so a late worker write never turns a
cancelled or watchdog-failed job back into a running or finished one.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol

import orjson
import redis

from mesdash.core.cache.codec import json_default
from mesdash.core.jobs.model import ACTIVE
from mesdash.core.redis_client import get_redis, key
from mesdash.settings import get_settings

ABSENT = ""  # in ``when``: the record does not exist (or expired)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _dumps(value: Any) -> bytes:
    return orjson.dumps(value, default=json_default)


class JobStore(Protocol):
    def get(self, job_id: str) -> dict[str, Any] | None: ...

    def update(
        self,
        job_id: str,
        fields: Mapping[str, Any],
        *,
        when: Iterable[str] = (),
        replace: bool = False,
        ttl: int = 0,
    ) -> bool: ...

    def active_ids(self) -> list[str]: ...

    def put_params(self, job_id: str, params: Mapping[str, Any], ttl: int) -> None: ...

    def get_params(self, job_id: str) -> dict[str, Any] | None: ...


# KEYS: record hash, active set, parameters. ARGV: allowed statuses (JSON list, "" = absent),
# job id, replace flag, ttl (0: persist), then field/value pairs (values JSON). A job that
# ends with a ttl takes its parameters with it: they expire with the record.
_CAS = """
local allowed = cjson.decode(ARGV[1])
local cur = redis.call('HGET', KEYS[1], 'status')
if #allowed > 0 then
  local ok = false
  for _, a in ipairs(allowed) do
    if (a == '' and not cur) or (cur and cur == cjson.encode(a)) then ok = true end
  end
  if not ok then return 0 end
end
if ARGV[3] == '1' then redis.call('DEL', KEYS[1]) end
local status = nil
for i = 5, #ARGV, 2 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  if ARGV[i] == 'status' then status = cjson.decode(ARGV[i + 1]) end
end
local ttl = tonumber(ARGV[4])
if ttl > 0 then redis.call('EXPIRE', KEYS[1], ttl) elseif status then redis.call('PERSIST', KEYS[1]) end
if status == 'queued' or status == 'started' then redis.call('SADD', KEYS[2], ARGV[2])
elseif status then
  redis.call('SREM', KEYS[2], ARGV[2])
  if ttl > 0 then redis.call('EXPIRE', KEYS[3], ttl) end
end
return 1
"""


class RedisJobStore:
    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self._cas = client.register_script(_CAS)

    @staticmethod
    def record_key(job_id: str) -> str:
        return key("job", job_id)

    @staticmethod
    def active_key() -> str:
        return key("jobs", "active")

    def get(self, job_id: str) -> dict[str, Any] | None:
        raw = self.client.hgetall(self.record_key(job_id))
        if not raw or b"status" not in raw:
            return None
        return {_text(k): orjson.loads(v) for k, v in raw.items()}

    def update(
        self,
        job_id: str,
        fields: Mapping[str, Any],
        *,
        when: Iterable[str] = (),
        replace: bool = False,
        ttl: int = 0,
    ) -> bool:
        args: list[Any] = [_dumps(list(when)), job_id, "1" if replace else "0", int(ttl)]
        for name, value in fields.items():
            args += [name, _dumps(value)]
        keys = [self.record_key(job_id), self.active_key(), self.params_key(job_id)]
        return bool(self._cas(keys=keys, args=args))

    def active_ids(self) -> list[str]:
        return sorted(_text(m) for m in self.client.smembers(self.active_key()))

    @staticmethod
    def params_key(job_id: str) -> str:
        return key("job", job_id, "params")

    def put_params(self, job_id: str, params: Mapping[str, Any], ttl: int) -> None:
        self.client.set(self.params_key(job_id), _dumps(params), ex=max(1, ttl))

    def get_params(self, job_id: str) -> dict[str, Any] | None:
        raw = self.client.get(self.params_key(job_id))
        return None if raw is None else dict(orjson.loads(raw))


class FileJobStore:
    """One JSON file per job under ``{spool}/jobs``; one process (no Redis means one web
    worker), so a process lock makes the compare-and-set atomic."""

    _lock = threading.RLock()

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, job_id: str) -> Path:
        return self.root / f"{job_id}.json"

    def _params_path(self, job_id: str) -> Path:
        return self.root / f"{job_id}.params"

    def put_params(self, job_id: str, params: Mapping[str, Any], ttl: int) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self._params_path(job_id).with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(_dumps(params))
        tmp.replace(self._params_path(job_id))

    def get_params(self, job_id: str) -> dict[str, Any] | None:
        try:
            return dict(orjson.loads(self._params_path(job_id).read_bytes()))
        except FileNotFoundError:
            return None

    def _read(self, job_id: str) -> dict[str, Any] | None:
        try:
            record: dict[str, Any] = orjson.loads(self._path(job_id).read_bytes())
        except (FileNotFoundError, orjson.JSONDecodeError):
            return None
        expires = record.get("_expires_at")
        if expires and expires < time.time():
            self._path(job_id).unlink(missing_ok=True)
            self._params_path(job_id).unlink(missing_ok=True)
            return None
        return record

    def get(self, job_id: str) -> dict[str, Any] | None:
        with self._lock:
            record = self._read(job_id)
        if record is not None:
            record.pop("_expires_at", None)
        return record

    def update(
        self,
        job_id: str,
        fields: Mapping[str, Any],
        *,
        when: Iterable[str] = (),
        replace: bool = False,
        ttl: int = 0,
    ) -> bool:
        allowed = list(when)
        with self._lock:
            current = self._read(job_id)
            status = current.get("status", ABSENT) if current else ABSENT
            if allowed and status not in allowed:
                return False
            record = {} if replace or current is None else current
            record.update(fields)
            if ttl > 0:
                record["_expires_at"] = time.time() + ttl
            elif "status" in fields:
                record.pop("_expires_at", None)
            self.root.mkdir(parents=True, exist_ok=True)
            tmp = self._path(job_id).with_suffix(f".{os.getpid()}.tmp")
            tmp.write_bytes(_dumps(record))
            tmp.replace(self._path(job_id))
            return True

    def active_ids(self) -> list[str]:
        with self._lock:
            ids = [p.stem for p in self.root.glob("*.json")] if self.root.exists() else []
            return sorted(i for i in ids if (r := self._read(i)) and r.get("status") in ACTIVE)

    def purge_expired(self) -> int:
        """Remove expired records; returns how many."""
        removed = 0
        with self._lock:
            for path in self.root.glob("*.json") if self.root.exists() else ():
                before = path.exists()
                if self._read(path.stem) is None and before and not path.exists():
                    removed += 1
        return removed


def get_store() -> JobStore:
    """Redis when configured, else the sidecar files in the spool."""
    client = get_redis()
    if client is not None:
        return RedisJobStore(client)
    return FileJobStore(get_settings().spool_path / "jobs")

