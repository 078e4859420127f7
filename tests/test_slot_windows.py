"""The slot generator: weekly wall-time windows in the org's zone → UTC slots, DST-aware, with
overlapping windows, empty or inverted hours and runaway counts refused before anything is made."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest

from app.schedule.windows import (
    MAX_SLOTS,
    Plan,
    Window,
    WindowError,
    generate,
    parse_weekdays,
)

TUE_THU = frozenset({1, 2, 3})


def plan(**kw) -> Plan:
    base = dict(
        windows=(Window(TUE_THU, time(10), time(16)),),
        first_day=date(2026, 3, 2),
        last_day=date(2026, 3, 8),
        duration_minutes=45,
        buffer_minutes=15,
        zone="Europe/Paris",
    )
    base.update(kw)
    return Plan(**base)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_tue_to_thu_ten_to_four_45_minutes_15_apart() -> None:
    slots = generate(plan()).slots
    assert len(slots) == 3 * 6  # 10:00 11:00 ... 15:00 each day (15:00-15:45 fits, 16:00 not)
    first, last = slots[0], slots[-1]
    assert first == (utc(2026, 3, 3, 9), utc(2026, 3, 3, 9, 45))  # Paris is UTC+1 in March
    assert last == (utc(2026, 3, 5, 14), utc(2026, 3, 5, 14, 45))
    assert all(end - start == timedelta(minutes=45) for start, end in slots)
    assert slots == sorted(slots)


def test_london_wall_time_kept_across_the_spring_change() -> None:
    """Same wall hours the week before and after 29 Mar 2026: UTC moves by an hour."""
    result = generate(
        plan(
            windows=(Window(frozenset({1}), time(9), time(10)),),
            first_day=date(2026, 3, 24),
            last_day=date(2026, 3, 31),
            duration_minutes=60,
            buffer_minutes=0,
            zone="Europe/London",
        )
    )
    assert result.slots == [
        (utc(2026, 3, 24, 9), utc(2026, 3, 24, 10)),  # GMT
        (utc(2026, 3, 31, 8), utc(2026, 3, 31, 9)),  # BST
    ]
    assert result.clock_changes == []


def test_new_york_autumn_change_inside_a_window_follows_real_time() -> None:
    """1 Nov 2026, 00:00-04:00 in New York is five real hours (01:00-02:00 happens twice):
    every slot still lasts exactly its hour, and the day is reported."""
    result = generate(
        plan(
            windows=(Window(frozenset({6}), time(0), time(4)),),
            first_day=date(2026, 11, 1),
            last_day=date(2026, 11, 1),
            duration_minutes=60,
            buffer_minutes=0,
            zone="America/New_York",
        )
    )
    starts = [s for s, _ in result.slots]
    assert starts == [utc(2026, 11, 1, h) for h in (4, 5, 6, 7, 8)]  # EDT 00,01; EST 01,02,03
    assert all(e - s == timedelta(hours=1) for s, e in result.slots)
    assert result.clock_changes == [date(2026, 11, 1)]


def test_new_york_spring_gap_window_start_moves_past_the_gap() -> None:
    """8 Mar 2026 02:00-03:00 does not exist in New York: a 02:30-05:00 window starts at 03:00."""
    result = generate(
        plan(
            windows=(Window(frozenset({6}), time(2, 30), time(5)),),
            first_day=date(2026, 3, 8),
            last_day=date(2026, 3, 8),
            duration_minutes=60,
            buffer_minutes=0,
            zone="America/New_York",
        )
    )
    assert result.slots == [
        (utc(2026, 3, 8, 7), utc(2026, 3, 8, 8)),  # 03:00 EDT
        (utc(2026, 3, 8, 8), utc(2026, 3, 8, 9)),  # 04:00 EDT
    ]


def test_london_spring_day_window_across_the_gap() -> None:
    result = generate(
        plan(
            windows=(Window(frozenset({6}), time(0), time(4)),),
            first_day=date(2026, 3, 29),
            last_day=date(2026, 3, 29),
            duration_minutes=60,
            buffer_minutes=0,
            zone="Europe/London",
        )
    )
    # 00:00 GMT to 04:00 BST is three real hours
    assert [s for s, _ in result.slots] == [utc(2026, 3, 29, h) for h in (0, 1, 2)]
    assert result.clock_changes == [date(2026, 3, 29)]


def test_not_before_drops_past_slots() -> None:
    result = generate(plan(), not_before=utc(2026, 3, 5, 0))
    assert len(result.slots) == 6
    assert result.slots[0][0] == utc(2026, 3, 5, 9)


@pytest.mark.parametrize(
    ("kw", "words"),
    [
        (
            dict(
                windows=(
                    Window(frozenset({1, 2}), time(9), time(12)),
                    Window(frozenset({2, 4}), time(11), time(15)),
                )
            ),
            "overlap on Wed",
        ),
        (dict(windows=(Window(TUE_THU, time(16), time(10)),)), "end is not after the start"),
        (dict(windows=(Window(TUE_THU, time(10), time(10, 30)),)), "shorter than one"),
        (dict(windows=(Window(frozenset(), time(9), time(12)),)), "at least one day"),
        (dict(windows=()), "at least one window"),
        (dict(duration_minutes=0), "between 5 minutes"),
        (dict(buffer_minutes=-5), "gap between slots"),
        (dict(last_day=date(2026, 3, 1)), "before the first day"),
        (dict(last_day=date(2027, 6, 1)), "at most 366 days"),
        (dict(zone="Mars/Olympus"), "not a time zone"),
    ],
)
def test_bad_plans_are_refused_with_a_clear_message(kw: dict, words: str) -> None:
    with pytest.raises(WindowError, match=words):
        generate(plan(**kw))


def test_windows_touching_end_to_start_do_not_overlap() -> None:
    windows = (
        Window(TUE_THU, time(9), time(12)),
        Window(TUE_THU, time(12), time(15)),
    )
    assert len(generate(plan(windows=windows, duration_minutes=60, buffer_minutes=0)).slots) == 18


def test_thousands_of_slots_are_refused_not_made() -> None:
    every_day = Window(frozenset(range(7)), time(0), time(23, 55))
    with pytest.raises(WindowError, match=f"more than {MAX_SLOTS} slots"):
        generate(plan(windows=(every_day,), last_day=date(2026, 12, 31), duration_minutes=5))


def test_a_plan_of_exactly_the_limit_is_fine() -> None:
    result = generate(plan(limit=18))
    assert len(result.slots) == 18
    with pytest.raises(WindowError):
        generate(plan(limit=17))


def test_weekday_checkboxes() -> None:
    assert parse_weekdays(["1", "3"]) == frozenset({1, 3})
    with pytest.raises(WindowError):
        parse_weekdays(["7"])
    with pytest.raises(WindowError):
        parse_weekdays(["tue"])
