"""Single-flight: identical concurrent computations run once.

In one process, ``SingleFlight.do(key, fn)`` makes the first caller the leader; callers
arriving while it runs wait for its result, or its exception. The per-key state lives only
while the call runs.

Across processes, ``RedisLease`` is a short Redis lease (``SET lease token NX PX``) that the
leader renews while it computes and deletes when done — only while the lease still holds
its own token (a Lua compare-and-delete). ``wait_for_leader`` is the follower's side: poll
for the leader's L2 write until the value appears, the lease disappears (leader failed, or
its result was not cacheable) or the wait bound passes; then the follower computes itself.
A crashed leader process stops renewing, so its lease expires after ``lease_seconds``; so does
the lease of a leader that failed while Redis was down (its delete never arrived) — the key
keeps its expiry time across a Redis restart, so no follower waits on a dead leader longer
than ``lease_seconds`` (plus one poll).
"""

from __future__ import annotations

import enum
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar, cast

import redis

from mesdash.core.cache.l2 import L2

T = TypeVar("T")

_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"
_RENEW = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then "
    "return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0"
)


class _Call(Generic[T]):
    __slots__ = ("done", "error", "value")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.value: T | None = None
        self.error: BaseException | None = None


class SingleFlight:
    """Per-key in-process de-duplication of concurrent calls."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: dict[str, _Call[object]] = {}

    def do(self, key: str, fn: Callable[[], T]) -> tuple[T, bool]:
        """(result, waited): run ``fn`` as leader, or wait for the running leader's result."""
        with self._lock:
            call = self._calls.get(key)
            leader = call is None
            if call is None:
                call = self._calls[key] = _Call()
        if not leader:
            call.done.wait()
            if call.error is not None:
                raise call.error
            return cast(T, call.value), True
        try:
            value = fn()
            call.value = value
        except BaseException as exc:
            call.error = exc
            raise
        finally:
            with self._lock:
                del self._calls[key]
            call.done.set()
        return value, False

    def in_flight(self) -> int:
        with self._lock:
            return len(self._calls)


class LeaseState(enum.Enum):
    ACQUIRED = "acquired"
    HELD = "held"  # another process leads
    UNAVAILABLE = "unavailable"  # no Redis: lead locally


class RedisLease:
    """A renewed cross-process lease on one key; ``release`` only deletes our own token."""

    def __init__(self, l2: L2, lease_key: str, seconds: float) -> None:
        self.l2 = l2
        self.key = lease_key
        self.millis = max(1, int(seconds * 1000))
        self.token = uuid.uuid4().hex
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    def acquire(self) -> LeaseState:
        def op(client: redis.Redis) -> LeaseState:
            taken = client.set(self.key, self.token, nx=True, px=self.millis)
            return LeaseState.ACQUIRED if taken else LeaseState.HELD

        state = self.l2.run(op, LeaseState.UNAVAILABLE)
        if state is LeaseState.ACQUIRED:
            self._renewer = threading.Thread(target=self._renew, name="cache-lease", daemon=True)
            self._renewer.start()
        return state

    def _renew(self) -> None:
        interval = self.millis / 3000.0
        while not self._stop.wait(interval):
            renewed = self.l2.run(
                lambda client: client.eval(_RENEW, 1, self.key, self.token, self.millis), None
            )
            if renewed == 0:
                return  # lost (expired, or another holder's now): followers may take over
            # None: Redis did not answer; try again — the lease runs out by itself meanwhile

    def release(self) -> None:
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join()
            self._renewer = None
        self.l2.run(lambda client: client.eval(_RELEASE, 1, self.key, self.token), 0)


class WaitOutcome(enum.Enum):
    VALUE = "value"
    RELEASED = "released"  # lease gone without a value: the leader failed or did not cache
    TIMEOUT = "timeout"
    UNAVAILABLE = "unavailable"


@dataclass(frozen=True)
class FollowerResult:
    outcome: WaitOutcome
    data: bytes | None = None
    ttl: float | None = None


def wait_for_leader(
    l2: L2,
    value_key: str,
    lease_key: str,
    timeout: float,
    poll: float,
    clock: Callable[[], float] = time.monotonic,
) -> FollowerResult:
    """Poll until the leader's value is in L2, its lease is gone, or ``timeout`` passes."""
    deadline = clock() + timeout

    def probe(client: redis.Redis) -> FollowerResult:
        pipe = client.pipeline(transaction=True)  # value and lease read in one snapshot
        pipe.get(value_key)
        pipe.pttl(value_key)
        pipe.exists(lease_key)
        data, pttl, leased = pipe.execute()
        if data is not None:
            return FollowerResult(WaitOutcome.VALUE, bytes(data), pttl / 1000.0 if pttl > 0 else None)
        return FollowerResult(WaitOutcome.TIMEOUT if leased else WaitOutcome.RELEASED)

    interval = poll
    while True:
        result = l2.run(probe, FollowerResult(WaitOutcome.UNAVAILABLE))
        if result.outcome is not WaitOutcome.TIMEOUT:
            return result
        remaining = deadline - clock()
        if remaining <= 0:
            return result
        time.sleep(min(interval, remaining))
        interval = min(interval * 1.5, 0.5)
