"""Hypothesis properties of the shared input parsers: identifier lists, wildcards, date
ranges and factory days, strict booleans."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import duckdb
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mesdash.core.factory_day import day_of, day_start, range_bounds
from mesdash.core.resilience.errors import ValidationFailed
from mesdash.core.validation import check_date_range, normalize_ids, parse_strict_bool
from mesdash.trace.resolve import MIN_LITERAL_PREFIX, like_pattern

ACCEPTED = ["true", "false", "1", "0", "yes", "no", "y", "n", "on", "off"]


@given(st.lists(st.one_of(st.none(), st.text(max_size=12), st.integers())))
def test_normalize_ids_trims_dedupes_and_keeps_first_order(values: list[object]) -> None:
    out = normalize_ids(values)
    expected: list[str] = []
    for value in values:
        text = "" if value is None else str(value).strip()
        if text and text not in expected:
            expected.append(text)
    assert out == expected
    assert all(item == item.strip() and item for item in out)
    assert normalize_ids(out) == out  # idempotent


@given(st.sampled_from(ACCEPTED), st.data())
def test_strict_bool_accepts_the_list_in_any_case(word: str, data: st.DataObject) -> None:
    cased = "".join(c.upper() if data.draw(st.booleans()) else c for c in word)
    assert parse_strict_bool(f" {cased} ") is (word in ("true", "1", "yes", "y", "on"))


@given(st.one_of(st.text(max_size=6), st.integers(), st.floats(), st.none(), st.lists(st.booleans())))
def test_strict_bool_refuses_everything_else(value: object) -> None:
    ok_text = isinstance(value, str) and value.strip().lower() in ACCEPTED
    ok_int = type(value) is int and value in (0, 1)
    if ok_text or ok_int:
        assert parse_strict_bool(value) in (True, False)
    else:
        with pytest.raises(ValueError):
            parse_strict_bool(value)


@pytest.mark.parametrize("value", ["t", "f", "1.0", "tru", "", "yes please", 2, 1.0])
def test_strict_bool_named_refusals(value: object) -> None:
    with pytest.raises(ValueError):
        parse_strict_bool(value)


_LIKE = duckdb.connect()
LITERAL = st.text(alphabet="ABCGDXYZ0123456789-_.", min_size=0, max_size=8)


@given(st.lists(LITERAL, min_size=2, max_size=4), st.sampled_from(["*", "%"]))
def test_wildcards_need_two_literal_leading_characters(parts: list[str], star: str) -> None:
    token = star.join(parts)
    if len(parts[0]) < MIN_LITERAL_PREFIX:
        with pytest.raises(ValidationFailed):
            like_pattern(token)
        return
    pattern = like_pattern(token)
    assert pattern is not None
    # The LIKE pattern means what the wildcard means: * and % any run, the rest literal
    # (an underscore too), checked by a real LIKE.
    filled = "Q7".join(parts)
    spoiled = "Q" + filled  # the literal prefix no longer leads
    matches = _LIKE.execute(
        "SELECT ? LIKE ? ESCAPE '\\', ? LIKE ? ESCAPE '\\'", [filled, pattern, spoiled, pattern]
    ).fetchone()
    assert matches == (True, False)


@given(LITERAL)
def test_exact_values_are_not_patterns(token: str) -> None:
    assert like_pattern(token) is None


@given(st.dates(min_value=date(2000, 1, 1), max_value=date(2040, 1, 1)), st.integers(-3, 800))
def test_date_ranges_are_inclusive_and_capped(start: date, span: int) -> None:
    end = start + timedelta(days=span)
    if span < 0:
        with pytest.raises(ValueError, match="before"):
            check_date_range(start, end, 730)
    elif span + 1 > 730:
        with pytest.raises(ValueError, match="limit is 730"):
            check_date_range(start, end, 730)
    else:
        check_date_range(start, end, 730)


@given(st.datetimes(min_value=datetime(2000, 1, 2), max_value=datetime(2040, 1, 1)))
def test_factory_day_contains_its_timestamps(ts: datetime) -> None:
    day = day_of(ts)
    start, end = range_bounds(day, day)
    assert start <= ts < end
    assert end - start == timedelta(days=1)
    assert day_start(day).time().isoformat() == "07:30:00"


def test_factory_day_boundary() -> None:
    assert day_of(datetime(2026, 3, 2, 7, 29, 59)) == date(2026, 3, 1)
    assert day_of(datetime(2026, 3, 2, 7, 30)) == date(2026, 3, 2)
