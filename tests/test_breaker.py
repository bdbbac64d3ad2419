"""The circuit breaker: exact-state tests after resilience4j's, on an injectable fake clock;
lock-free transition logging under a slow handler; a property against a reference model;
and the breaker around a real warehouse on DuckDB and PostgreSQL."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Iterator
from datetime import datetime
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mesdash.core.db.warehouse import Warehouse
from mesdash.core.resilience.breaker import CLOSED, HALF_OPEN, OPEN, CircuitBreaker
from mesdash.core.resilience.errors import CircuitOpen, QueryTimeout, WarehouseError


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def breaker(clock: FakeClock) -> CircuitBreaker:
    return CircuitBreaker("wh", clock=clock)


def feed(b: CircuitBreaker, pattern: str) -> None:
    """One call per character: S = fast success, L = slow success, F = failure."""
    for ch in pattern:
        b.acquire_permission()
        if ch == "F":
            b.on_failure(0.1)
        else:
            b.on_success(30.0 if ch == "L" else 0.1)


def open_breaker(b: CircuitBreaker) -> None:
    feed(b, "FFFFF")
    assert b.state == OPEN


def half_open(b: CircuitBreaker, clock: FakeClock) -> None:
    open_breaker(b)
    clock.advance(30.0)
    assert b.state == HALF_OPEN


# ------------------------------------------------------------------------ CLOSED ------
def test_four_failures_in_ten_keep_it_closed(breaker: CircuitBreaker) -> None:
    feed(breaker, "FSFSFSFSSS")
    snap = breaker.snapshot()
    assert (snap["state"], snap["failures"], snap["calls"], snap["failure_rate"]) == (
        CLOSED,
        4,
        10,
        0.4,
    )


def test_fewer_than_min_failures_never_open(breaker: CircuitBreaker) -> None:
    feed(breaker, "FFFF")  # 100 % failure rate, but only 4 failures
    assert breaker.state == CLOSED
    assert breaker.snapshot()["failure_rate"] == 1.0


def test_five_failures_of_ten_open(breaker: CircuitBreaker) -> None:
    feed(breaker, "SSSSSFFFF")
    assert breaker.state == CLOSED
    feed(breaker, "F")
    snap = breaker.snapshot()
    assert (snap["state"], snap["failures"], snap["calls"], snap["failure_rate"]) == (
        OPEN,
        5,
        10,
        0.5,
    )
    assert snap["transitions"] == 1


def test_sliding_window_drops_old_outcomes(breaker: CircuitBreaker) -> None:
    # 5 failures among 11 calls, but never 5 inside the last 10
    feed(breaker, "FFFFSSSSSSF")
    snap = breaker.snapshot()
    assert snap["state"] == CLOSED
    assert snap["window"] == ["failure"] * 3 + ["success"] * 6 + ["failure"]
    # 6 failures among 20 calls at < 50 %: still closed
    feed(breaker, "SSSSSSSSF")
    assert breaker.snapshot()["failures"] == 2
    assert breaker.state == CLOSED


def test_five_failures_among_more_calls_below_rate_stay_closed(clock: FakeClock) -> None:
    b = CircuitBreaker("wh", clock=clock, window_size=20)
    feed(b, "FSSFSSFSSFSSFSS")  # 5 failures of 15 = 33 %
    assert b.state == CLOSED
    assert (b.snapshot()["failures"], b.snapshot()["calls"]) == (5, 15)


def test_slow_successes_count_as_failures(breaker: CircuitBreaker) -> None:
    breaker.on_success(29.999)  # just under the threshold: a success
    assert breaker.snapshot()["window"] == ["success"]
    feed(breaker, "LLLL")
    assert breaker.state == CLOSED
    feed(breaker, "L")  # exactly slow_call_seconds counts as slow
    assert breaker.state == OPEN
    assert breaker.snapshot()["failures"] == 5


# -------------------------------------------------------------------------- OPEN ------
def test_open_rejects_with_the_remaining_time(breaker: CircuitBreaker, clock: FakeClock) -> None:
    open_breaker(breaker)
    with pytest.raises(CircuitOpen) as exc:
        breaker.acquire_permission()
    assert (exc.value.retry_after, exc.value.code, exc.value.status) == (30, "CIRCUIT_OPEN", 503)
    clock.advance(10.5)
    assert breaker.remaining_open_seconds() == 19.5
    with pytest.raises(CircuitOpen) as exc:
        breaker.acquire_permission()
    assert exc.value.retry_after == 20  # rounded up
    clock.advance(19.25)
    with pytest.raises(CircuitOpen) as exc:
        breaker.acquire_permission()
    assert exc.value.retry_after == 1  # never below one second
    assert breaker.remaining_open_seconds() == 0.25


def test_outcomes_while_open_are_ignored(breaker: CircuitBreaker) -> None:
    open_breaker(breaker)
    before = breaker.snapshot()["window"]
    breaker.on_success(0.1)  # late result of a call admitted while CLOSED
    breaker.on_failure(0.1)
    breaker.release_permission()
    assert breaker.snapshot()["window"] == before
    assert breaker.state == OPEN


def test_half_open_exactly_at_the_open_wait(breaker: CircuitBreaker, clock: FakeClock) -> None:
    open_breaker(breaker)
    clock.advance(29.999)
    assert breaker.state == OPEN
    clock.advance(0.001)
    assert breaker.remaining_open_seconds() == 0.0
    assert breaker.state == HALF_OPEN
    assert breaker.snapshot()["transitions"] == 2


def test_lazy_half_open_on_permission_request(breaker: CircuitBreaker, clock: FakeClock) -> None:
    open_breaker(breaker)
    clock.advance(45.0)
    breaker.acquire_permission()  # no state read in between: the request itself moves it
    snap = breaker.snapshot()
    assert (snap["state"], snap["half_open_probes"]["issued"]) == (HALF_OPEN, 1)


# --------------------------------------------------------------------- HALF_OPEN ------
def test_probe_permits_are_capped(breaker: CircuitBreaker, clock: FakeClock) -> None:
    half_open(breaker, clock)
    for _ in range(3):
        breaker.acquire_permission()
    with pytest.raises(CircuitOpen) as exc:
        breaker.acquire_permission()
    assert exc.value.retry_after == 1
    assert breaker.state == HALF_OPEN


def test_three_successful_probes_close(breaker: CircuitBreaker, clock: FakeClock) -> None:
    half_open(breaker, clock)
    feed(breaker, "SS")
    assert breaker.state == HALF_OPEN
    feed(breaker, "S")
    snap = breaker.snapshot()
    assert (snap["state"], snap["window"], snap["transitions"]) == (CLOSED, [], 3)
    feed(breaker, "FFFF")  # a fresh window: the old failures are gone
    assert breaker.state == CLOSED


def test_one_failed_probe_of_three_still_closes(breaker: CircuitBreaker, clock: FakeClock) -> None:
    half_open(breaker, clock)
    feed(breaker, "FSS")  # 33 % < 50 %
    assert breaker.state == CLOSED


def test_failed_probes_reopen_with_a_fresh_wait(breaker: CircuitBreaker, clock: FakeClock) -> None:
    half_open(breaker, clock)
    clock.advance(7.0)
    feed(breaker, "FF")
    assert breaker.state == HALF_OPEN  # decided only once all three probes reported
    feed(breaker, "S")
    assert breaker.state == OPEN
    assert breaker.remaining_open_seconds() == 30.0
    with pytest.raises(CircuitOpen) as exc:
        breaker.acquire_permission()
    assert exc.value.retry_after == 30
    clock.advance(30.0)
    assert breaker.state == HALF_OPEN


def test_slow_probe_counts_as_failure(breaker: CircuitBreaker, clock: FakeClock) -> None:
    half_open(breaker, clock)
    feed(breaker, "LLS")
    assert breaker.state == OPEN


def test_release_frees_a_probe_permit_without_recording(breaker: CircuitBreaker, clock: FakeClock) -> None:
    half_open(breaker, clock)
    for _ in range(3):
        breaker.acquire_permission()
    breaker.release_permission()  # e.g. pool exhausted: not the warehouse's health
    snap = breaker.snapshot()
    assert (snap["calls"], snap["half_open_probes"]["issued"]) == (0, 2)
    breaker.acquire_permission()  # the freed permit is available again
    with pytest.raises(CircuitOpen):
        breaker.acquire_permission()
    for _ in range(3):
        breaker.on_success(0.1)
    assert breaker.state == CLOSED


def test_release_in_closed_records_nothing(breaker: CircuitBreaker) -> None:
    breaker.acquire_permission()
    breaker.release_permission()
    assert breaker.snapshot()["calls"] == 0


def test_stray_outcomes_in_half_open_are_ignored(breaker: CircuitBreaker, clock: FakeClock) -> None:
    half_open(breaker, clock)
    breaker.on_failure(0.1)  # no probe permit outstanding: a late CLOSED-era result
    breaker.on_failure(0.1)
    assert breaker.snapshot()["calls"] == 0
    feed(breaker, "SSS")
    assert breaker.state == CLOSED


# ------------------------------------------------------------- other behaviours ------
def test_disabled_breaker_permits_everything_and_records_nothing(clock: FakeClock) -> None:
    b = CircuitBreaker("wh", enabled=False, clock=clock)
    feed(b, "F" * 100)
    snap = b.snapshot()
    assert (snap["state"], snap["enabled"], snap["calls"], snap["transitions"]) == (
        CLOSED,
        False,
        0,
        0,
    )


def test_reset_closes_and_clears(breaker: CircuitBreaker) -> None:
    seen: list[tuple[str, str]] = []
    breaker.listeners.append(lambda old, new: seen.append((old, new)))
    open_breaker(breaker)
    breaker.reset()
    snap = breaker.snapshot()
    assert (snap["state"], snap["window"], snap["remaining_open_seconds"]) == (CLOSED, [], 0.0)
    assert seen == [(CLOSED, OPEN), (OPEN, CLOSED)]
    breaker.acquire_permission()


def test_listener_receives_transitions_outside_the_lock(breaker: CircuitBreaker, clock: FakeClock) -> None:
    seen: list[tuple[str, str, str]] = []

    def listener(old: str, new: str) -> None:
        # reading the breaker from the callback would deadlock if it ran under the lock
        seen.append((old, new, breaker.snapshot()["state"]))

    def broken(old: str, new: str) -> None:
        raise RuntimeError("metrics backend down")

    breaker.listeners.extend([broken, listener])
    half_open(breaker, clock)
    feed(breaker, "FFF")
    clock.advance(30.0)
    feed(breaker, "SSS")
    assert seen == [
        (CLOSED, OPEN, OPEN),
        (OPEN, HALF_OPEN, HALF_OPEN),
        (HALF_OPEN, OPEN, OPEN),
        (OPEN, HALF_OPEN, HALF_OPEN),
        (HALF_OPEN, CLOSED, CLOSED),
    ]


def test_transitions_are_logged(clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    b = CircuitBreaker("wh", clock=clock, logger=logging.getLogger("test.breaker.log"))
    with caplog.at_level(logging.INFO, logger="test.breaker.log"):
        half_open(b, clock)
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        (
            "WARNING",
            "circuit breaker wh: CLOSED -> OPEN (5 of 5 calls failed; rejecting calls for 30s)",
        ),
        ("INFO", "circuit breaker wh: OPEN -> HALF_OPEN (open wait of 30s passed)"),
    ]


def test_snapshot(breaker: CircuitBreaker, clock: FakeClock) -> None:
    assert breaker.snapshot()["last_transition_at"] is None
    feed(breaker, "SFFFFF")
    clock.advance(12.0)
    snap = breaker.snapshot()
    at = datetime.fromisoformat(snap.pop("last_transition_at"))
    assert abs(time.time() - 12.0 - at.timestamp()) < 5  # opened 12 clock-seconds ago
    assert snap == {
        "name": "wh",
        "state": OPEN,
        "enabled": True,
        "window": ["success"] + ["failure"] * 5,
        "failures": 5,
        "calls": 6,
        "failure_rate": 5 / 6,
        "remaining_open_seconds": 18.0,
        "half_open_probes": {"permitted": 3, "issued": 0},
        "thresholds": {
            "window_size": 10,
            "min_failures": 5,
            "failure_rate": 0.5,
            "open_wait_seconds": 30.0,
            "half_open_permits": 3,
            "slow_call_seconds": 30.0,
        },
        "transitions": 1,
    }


@pytest.mark.parametrize(
    "kwargs",
    [
        {"window_size": 0},
        {"half_open_permits": 0},
        {"min_failures": 0},
        {"min_failures": 11},
        {"failure_rate": 0.0},
        {"failure_rate": 1.5},
    ],
)
def test_bad_thresholds_are_rejected(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        CircuitBreaker("wh", **kwargs)  # type: ignore[arg-type]


def test_runtime_breaker_follows_the_testing_profile() -> None:
    from mesdash.core.resilience.runtime import make_breaker

    snap = make_breaker().snapshot()
    assert snap["name"] == "warehouse"
    assert snap["thresholds"] == {
        "window_size": 10,
        "min_failures": 5,
        "failure_rate": 0.5,
        "open_wait_seconds": 2.0,
        "half_open_permits": 3,
        "slow_call_seconds": 30.0,
    }


# -------------------------------------------------------------------- threading ------
class SlowTransitionHandler(logging.Handler):
    """Sleeps 0.5 s on the HALF_OPEN -> CLOSED log line."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.returned_at: float | None = None

    def emit(self, record: logging.LogRecord) -> None:
        if "HALF_OPEN -> CLOSED" in record.getMessage():
            self.entered.set()
            time.sleep(0.5)
            self.returned_at = time.monotonic()


@pytest.fixture
def slow_logger() -> Iterator[tuple[logging.Logger, SlowTransitionHandler]]:
    logger = logging.getLogger("test.breaker.slow")
    handler = SlowTransitionHandler()
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    yield logger, handler
    logger.removeHandler(handler)


def test_slow_log_handler_does_not_block_other_calls(
    clock: FakeClock, slow_logger: tuple[logging.Logger, SlowTransitionHandler]
) -> None:
    logger, handler = slow_logger
    b = CircuitBreaker("wh", clock=clock, logger=logger)
    half_open(b, clock)
    feed(b, "SS")
    b.acquire_permission()
    closer = threading.Thread(target=b.on_success, args=(0.1,))  # logs the slow line
    closer.start()
    assert handler.entered.wait(5)
    start = time.monotonic()
    for _ in range(100):
        b.acquire_permission()
        b.on_success(0.01)
    done = time.monotonic()
    still_logging = handler.returned_at is None
    closer.join(5)
    assert still_logging, "the other thread waited for the log handler"
    assert done - start < 0.2
    assert handler.returned_at is not None and handler.returned_at > done
    assert b.snapshot()["calls"] == 10


# --------------------------------------------------------------------- property ------
def reference_open_index(outcomes: list[str], window_size: int, min_failures: int, rate: float) -> int | None:
    """Index of the call after which the opening rule first held, in exact arithmetic."""
    window: deque[bool] = deque(maxlen=window_size)
    threshold = Fraction(str(rate))
    for i, outcome in enumerate(outcomes):
        window.append(outcome != "S")
        failures = sum(window)
        if failures >= min_failures and Fraction(failures, len(window)) >= threshold:
            return i
    return None


@settings(max_examples=300, deadline=None)
@given(
    window_size=st.integers(1, 12),
    data=st.data(),
    rate=st.sampled_from([0.1, 0.25, 0.3, 1 / 3, 0.5, 0.6, 0.75, 0.9, 1.0]),
    outcomes=st.lists(st.sampled_from("SLF"), max_size=60),
)
def test_open_iff_some_window_met_the_rule(
    window_size: int, data: st.DataObject, rate: float, outcomes: list[str]
) -> None:
    min_failures = data.draw(st.integers(1, window_size), label="min_failures")
    b = CircuitBreaker(
        "prop",
        window_size=window_size,
        min_failures=min_failures,
        failure_rate=rate,
        clock=lambda: 0.0,
    )
    opened = reference_open_index(outcomes, window_size, min_failures, rate)
    for i, outcome in enumerate(outcomes):
        try:
            feed(b, outcome)
        except CircuitOpen:
            assert opened is not None and i > opened
        assert (b.state == OPEN) == (opened is not None and i >= opened)
    assert (b.state == OPEN) == (opened is not None)


def test_reference_model_uses_the_intended_decimal_rate() -> None:
    # 1 failure of 10 is exactly 10 %: the model and the breaker agree it opens
    assert reference_open_index(list("F" + "S" * 9), 10, 1, 0.1) == 0
    b = CircuitBreaker("m", window_size=10, min_failures=1, failure_rate=0.1, clock=lambda: 0.0)
    feed(b, "SSSSSSSSS")
    feed(b, "F")
    assert b.state == OPEN


# ------------------------------------------------------- around a real warehouse ------
def _long_query(dialect: str) -> str:
    if dialect == "postgresql":
        return "SELECT pg_sleep(30) AS slept"
    return "SELECT SUM(a.range * b.range) AS s FROM range(200000000) a, range(1000) b"


def test_warehouse_counts_only_warehouse_faults(empty_warehouse: Warehouse) -> None:
    wh = empty_warehouse
    wh.breaker = b = CircuitBreaker("wh", clock=FakeClock())
    for _ in range(6):  # SQL errors are not the warehouse's health
        with pytest.raises(WarehouseError) as exc:
            wh.read_sql_df("SELECT NO_SUCH_COLUMN FROM dwh.DW_MES_CONTAINER")
        assert type(exc.value) is WarehouseError
    assert (b.state, b.snapshot()["calls"]) == (CLOSED, 0)
    assert wh.read_sql_df("SELECT COUNT(*) AS N FROM dwh.DW_MES_CONTAINER").rows == [(0,)]
    with pytest.raises(QueryTimeout):
        wh.read_sql_df_slow(_long_query(wh.dialect), timeout_seconds=1.0)
    assert b.snapshot()["window"] == ["success", "failure"]


def test_open_breaker_keeps_calls_off_the_warehouse(empty_warehouse: Warehouse) -> None:
    clock = FakeClock()
    wh = empty_warehouse
    wh.breaker = b = CircuitBreaker("wh", clock=clock, slow_call_seconds=0.0)  # all "slow"
    sql = "SELECT COUNT(*) AS N FROM dwh.DW_MES_CONTAINER"
    before = wh.stats.count
    for _ in range(5):
        assert wh.read_sql_df(sql).rows == [(0,)]
    assert b.state == OPEN
    with pytest.raises(CircuitOpen):
        wh.read_sql_df_slow(sql)
    assert wh.stats.count - before == 5  # the rejected call never reached the warehouse
    clock.advance(30.0)
    b.slow_call_seconds = 30.0  # the warehouse answers quickly again
    for _ in range(3):
        assert wh.read_sql_df(sql).rows == [(0,)]
    assert b.state == CLOSED
    assert wh.stats.count - before == 8
