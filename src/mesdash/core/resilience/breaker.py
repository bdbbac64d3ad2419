"""The warehouse circuit breaker (count-based, after resilience4j's COUNT_BASED window).

This is our own small module on purpose: no maintained Python library combines a
failure-rate sliding window, slow-call counting, a permit-capped HALF_OPEN state and an
injectable clock. The semantics follow resilience4j:

* CLOSED records the outcome of the last ``window_size`` calls. It opens when, within that
  window, failures >= ``min_failures`` AND failures / calls >= ``failure_rate`` (so fewer
  than ``min_failures`` calls can never open it). A success that took
  >= ``slow_call_seconds`` counts as a failure.
* OPEN rejects every call with ``CircuitOpen`` (``retry_after`` = remaining open time,
  rounded up, at least 1 s). When ``open_wait_seconds`` have passed it becomes HALF_OPEN —
  lazily, on the next state read or permission request.
* HALF_OPEN hands out exactly ``half_open_permits`` probe permits; further calls are
  rejected at once (``retry_after`` 1). Once that many probe outcomes are recorded it
  decides: failure rate >= ``failure_rate`` → OPEN with a fresh wait, else CLOSED with an
  empty window. ``release_permission`` (a call that ended with an uncounted outcome: pool
  exhaustion, semaphore wait, SQL error) gives a probe permit back and records nothing.
  Outcomes arriving in HALF_OPEN while no probe permit is outstanding (late results of
  calls admitted before the transition) are ignored, as are outcomes arriving while OPEN.
* A disabled breaker permits everything and records nothing.

One lock guards the state. Transitions are collected inside the lock and logged / passed
to ``listeners`` (``callback(old, new)``) after it is released, so a slow log handler or
metrics callback never serializes unrelated calls. Under races, two transitions may reach
the listeners in a different order than they happened; ``snapshot()`` is the truth.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from mesdash.core.resilience.errors import CircuitOpen

CLOSED = "CLOSED"
OPEN = "OPEN"
HALF_OPEN = "HALF_OPEN"

Listener = Callable[[str, str], None]


@dataclass(frozen=True)
class _Transition:
    old: str
    new: str
    reason: str


class CircuitBreaker:
    def __init__(
        self,
        name: str,
        *,
        enabled: bool = True,
        window_size: int = 10,
        min_failures: int = 5,
        failure_rate: float = 0.5,
        open_wait_seconds: float = 30.0,
        half_open_permits: int = 3,
        slow_call_seconds: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        logger: logging.Logger | None = None,
    ) -> None:
        if window_size < 1 or half_open_permits < 1:
            raise ValueError("window_size and half_open_permits must be >= 1")
        if not 1 <= min_failures <= window_size:
            raise ValueError("min_failures must be between 1 and window_size")
        if not 0.0 < failure_rate <= 1.0:
            raise ValueError("failure_rate must be in (0, 1]")
        self.name = name
        self.enabled = enabled
        self.window_size = window_size
        self.min_failures = min_failures
        self.failure_rate = failure_rate
        self.open_wait_seconds = open_wait_seconds
        self.half_open_permits = half_open_permits
        self.slow_call_seconds = slow_call_seconds
        self.listeners: list[Listener] = []
        self._clock = clock
        self._log = logger or logging.getLogger(__name__)
        self._lock = threading.Lock()
        self._state = CLOSED
        self._window: deque[bool] = deque(maxlen=window_size)  # True = failure
        self._opened_at = 0.0
        self._probes_issued = 0  # HALF_OPEN permits handed out and not given back
        self._probes: list[bool] = []  # HALF_OPEN outcomes, True = failure
        self._transitions = 0
        self._last_transition_at: float | None = None  # clock units

    # ------------------------------------------------------------------ public API ------
    @property
    def state(self) -> str:
        events: list[_Transition] = []
        with self._lock:
            self._advance(events)
            state = self._state
        self._emit(events)
        return state

    def acquire_permission(self) -> None:
        if not self.enabled:
            return
        events: list[_Transition] = []
        error: CircuitOpen | None = None
        with self._lock:
            self._advance(events)
            if self._state == OPEN:
                retry = max(1, math.ceil(self._remaining()))
                error = CircuitOpen(
                    f"circuit breaker {self.name!r} is open; retry in {retry}s",
                    retry_after=retry,
                    extra={"breaker": self.name, "state": OPEN},
                )
            elif self._state == HALF_OPEN:
                if self._probes_issued < self.half_open_permits:
                    self._probes_issued += 1
                else:
                    error = CircuitOpen(
                        f"circuit breaker {self.name!r} is half-open and all "
                        f"{self.half_open_permits} probe calls are running",
                        retry_after=1,
                        extra={"breaker": self.name, "state": HALF_OPEN},
                    )
        self._emit(events)
        if error is not None:
            raise error

    def on_success(self, duration: float) -> None:
        self._record(failed=duration >= self.slow_call_seconds)

    def on_failure(self, duration: float) -> None:
        self._record(failed=True)

    def release_permission(self) -> None:
        if not self.enabled:
            return
        with self._lock:
            if self._state == HALF_OPEN and self._probes_issued > len(self._probes):
                self._probes_issued -= 1

    def remaining_open_seconds(self) -> float:
        with self._lock:
            return self._remaining()

    def reset(self) -> None:
        events: list[_Transition] = []
        with self._lock:
            if self._state != CLOSED:
                self._to(CLOSED, self._clock(), events, reason="reset")
            self._window.clear()
        self._emit(events)

    def snapshot(self) -> dict[str, Any]:
        events: list[_Transition] = []
        with self._lock:
            self._advance(events)
            outcomes = self._probes if self._state == HALF_OPEN else list(self._window)
            failures, calls = sum(outcomes), len(outcomes)
            last = self._last_transition_at
            snap: dict[str, Any] = {
                "name": self.name,
                "state": self._state,
                "enabled": self.enabled,
                "window": ["failure" if f else "success" for f in outcomes],
                "failures": failures,
                "calls": calls,
                "failure_rate": failures / calls if calls else 0.0,
                "remaining_open_seconds": self._remaining(),
                "half_open_probes": {
                    "permitted": self.half_open_permits,
                    "issued": self._probes_issued if self._state == HALF_OPEN else 0,
                },
                "thresholds": {
                    "window_size": self.window_size,
                    "min_failures": self.min_failures,
                    "failure_rate": self.failure_rate,
                    "open_wait_seconds": self.open_wait_seconds,
                    "half_open_permits": self.half_open_permits,
                    "slow_call_seconds": self.slow_call_seconds,
                },
                "transitions": self._transitions,
                "last_transition_at": None if last is None else _wall_time(last - self._clock()),
            }
        self._emit(events)
        return snap

    # ------------------------------------------------------------ locked helpers ------
    def _record(self, failed: bool) -> None:
        if not self.enabled:
            return
        events: list[_Transition] = []
        with self._lock:
            self._advance(events)
            if self._state == CLOSED:
                self._window.append(failed)
                failures, calls = sum(self._window), len(self._window)
                if failures >= self.min_failures and failures / calls >= self.failure_rate:
                    self._to(OPEN, self._clock(), events)
            elif self._state == HALF_OPEN and len(self._probes) < self._probes_issued:
                self._probes.append(failed)
                if len(self._probes) >= self.half_open_permits:
                    rate = sum(self._probes) / len(self._probes)
                    self._to(OPEN if rate >= self.failure_rate else CLOSED, self._clock(), events)
        self._emit(events)

    def _advance(self, events: list[_Transition]) -> None:
        """OPEN → HALF_OPEN once the open wait has passed (caller holds the lock)."""
        if self._state == OPEN and self._clock() >= self._opened_at + self.open_wait_seconds:
            self._to(HALF_OPEN, self._opened_at + self.open_wait_seconds, events)

    def _remaining(self) -> float:
        if self._state != OPEN:
            return 0.0
        return max(0.0, self._opened_at + self.open_wait_seconds - self._clock())

    def _why(self) -> str:
        if self._state == OPEN:
            return f"open wait of {self.open_wait_seconds:g}s passed"
        outcomes = self._probes if self._state == HALF_OPEN else self._window
        return f"{sum(outcomes)} of {len(outcomes)} calls failed"

    def _to(self, new: str, at: float, events: list[_Transition], reason: str = "") -> None:
        reason = reason or self._why()
        if new == OPEN:
            reason += f"; rejecting calls for {self.open_wait_seconds:g}s"
        events.append(_Transition(self._state, new, reason))
        self._state = new
        self._transitions += 1
        self._last_transition_at = at
        if new == OPEN:
            self._opened_at = at
        elif new == HALF_OPEN:
            self._probes_issued, self._probes = 0, []
        else:
            self._window.clear()

    # --------------------------------------------------------- outside the lock ------
    def _emit(self, events: list[_Transition]) -> None:
        for ev in events:
            level = logging.WARNING if ev.new == OPEN else logging.INFO
            self._log.log(level, "circuit breaker %s: %s -> %s (%s)", self.name, ev.old, ev.new, ev.reason)
            for listener in list(self.listeners):
                try:
                    listener(ev.old, ev.new)
                except Exception:
                    self._log.exception("circuit breaker %s: state listener failed", self.name)


def _wall_time(offset_seconds: float) -> str:
    """ISO-8601 UTC wall time of a moment ``offset_seconds`` from now (clock units)."""
    return datetime.fromtimestamp(time.time() + offset_seconds, UTC).isoformat()
