"""The pure parts of plans and progress: which plan a subscription row gives, the UTC month,
and the progress figures derived from report bodies."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from scoring.progress import PastReport, build_progress, since_previous, trend
from server.config import ConfigError, load_settings
from server.plans import PlanRules, period_of, plan_of

NOW = dt.datetime(2026, 12, 3, 18, 0, tzinfo=dt.UTC)
NOW_MS = int(NOW.timestamp() * 1000)
DAY_MS = 86_400_000


def row(status: str, expires: int | None, entitlements: list[str] | None = None) -> dict[str, Any]:
    return {
        "status": status,
        "entitlement_ids": ["pro"] if entitlements is None else entitlements,
        "expiration_at_ms": expires,
        "product_id": "mentara_pro_monthly",
        "store": "APP_STORE",
    }


@pytest.mark.parametrize(
    ("status", "expires", "plan"),
    [
        ("active", NOW_MS + DAY_MS, "paid"),
        ("active", NOW_MS - 1, "free"),  # past its expiry: lapsed whatever the status says
        ("active", None, "paid"),  # a lifetime purchase never expires
        ("cancelled", NOW_MS + DAY_MS, "paid"),  # access runs to the end of the period paid
        ("cancelled", NOW_MS - DAY_MS, "free"),
        ("billing_issue", NOW_MS + DAY_MS, "paid"),  # the grace period RevenueCat reports
        ("billing_issue", NOW_MS - 1, "free"),
        ("paused", NOW_MS + DAY_MS, "paid"),
        ("expired", NOW_MS + DAY_MS, "free"),
        ("refunded", NOW_MS + DAY_MS, "free"),
        ("transferred", NOW_MS + DAY_MS, "free"),
    ],
)
def test_the_plan_a_subscription_row_gives(status: str, expires: int | None, plan: str) -> None:
    state = plan_of(row(status, expires), PlanRules(), NOW)
    assert state.plan == plan
    assert state.entitlement is not None and state.entitlement.status == status
    assert state.entitlement.active is (plan == "paid")


def test_no_row_or_another_entitlement_is_free_and_the_entitlement_id_is_configurable() -> None:
    assert plan_of(None, PlanRules(), NOW).plan == "free"
    assert plan_of(None, PlanRules(), NOW).entitlement is None
    gold = row("active", NOW_MS + DAY_MS, ["gold"])
    assert plan_of(gold, PlanRules(), NOW).plan == "free"
    assert plan_of(gold, PlanRules(entitlement="gold"), NOW).plan == "paid"
    rules = PlanRules(free_limit=3, paid_limit=None)
    assert (rules.limit("free"), rules.limit("paid")) == (3, None)
    entitlement = plan_of(row("cancelled", NOW_MS + DAY_MS), rules, NOW).entitlement
    assert entitlement is not None
    as_json = entitlement.to_json()
    assert as_json["will_renew"] is False and as_json["expires_at"].endswith("Z")


def test_the_period_is_the_calendar_month_in_utc() -> None:
    period = period_of(NOW)
    assert period.start == dt.date(2026, 12, 1)
    assert period.resets_at == dt.datetime(2027, 1, 1, tzinfo=dt.UTC)
    assert period.to_json() == {
        "period_start": "2026-12-01T00:00:00Z",
        "resets_at": "2027-01-01T00:00:00Z",
    }
    # Late on the 31st in New York is already the next month in UTC.
    new_york = dt.timezone(dt.timedelta(hours=-5))
    assert period_of(dt.datetime(2026, 1, 31, 20, 0, tzinfo=new_york)).start == dt.date(2026, 2, 1)


def body(track: str, scores: dict[str, float | None], **extra: Any) -> dict[str, Any]:
    return {
        "track": track,
        "question_id": extra.pop("question_id", "two-sum"),
        "overall": extra.pop("overall", 2.5),
        "dimensions": [{"name": n, "title": n.title(), "score": s} for n, s in scores.items()],
        "hidden_tests": extra.pop("hidden_tests", None),
    }


def past(i: int, track: str, scores: dict[str, float | None], **extra: Any) -> PastReport:
    return PastReport(f"s{i}", f"2026-11-{i + 1:02d}T10:00:00Z", body(track, scores, **extra))


def test_trend_compares_the_last_three_with_the_three_before() -> None:
    assert trend([]) is None and trend([2.0]) is None
    assert trend([1.0, 2.0]) == {
        "recent_mean": 2.0,
        "recent_sessions": 1,
        "previous_mean": 1.0,
        "previous_sessions": 1,
        "change": 1.0,
        "direction": "up",
    }
    seven = [9.0, 1.0, 1.0, 1.0, 3.0, 3.0, 3.0]  # the first is outside both windows
    got = trend(seven)
    assert got is not None
    assert (got["recent_mean"], got["previous_mean"], got["change"]) == (3.0, 1.0, 2.0)
    got = trend([3.0, 3.0, 3.0, 2.98])
    assert got is not None and got["direction"] == "flat"
    got = trend([3.0, 2.0, 2.0, 2.0])
    assert got is not None and got["direction"] == "down"


def test_progress_per_track_and_dimension() -> None:
    reports = [
        past(0, "coding", {"a": 1.0, "b": 3.0}, hidden_tests={"passed": 2, "total": 8}),
        past(1, "behavioral", {"x": 2.0}),
        past(2, "coding", {"a": 2.0, "b": None}, hidden_tests={"passed": 0, "total": 0}),
        past(3, "coding", {"a": 3.0, "b": 2.0}, overall=2.75),
        past(4, "coding", {"a": 4.0, "b": 1.0}, hidden_tests={"passed": 8, "total": 8}),
    ]
    progress = build_progress(reports)
    assert progress["sessions"] == 5
    coding, behavioral = progress["tracks"]
    assert (coding["track"], coding["sessions"], behavioral["sessions"]) == ("coding", 4, 1)
    a, b = coding["dimensions"]
    assert [p["score"] for p in a["series"]] == [1.0, 2.0, 3.0, 4.0]
    assert [p["session_id"] for p in b["series"]] == ["s0", "s3", "s4"]  # unobserved left out
    assert a["series"][0] == {
        "date": "2026-11-01T10:00:00Z",
        "session_id": "s0",
        "question_id": "two-sum",
        "score": 1.0,
    }
    assert a["trend"]["recent_mean"] == 3.0 and a["trend"]["previous_mean"] == 1.0
    assert (a["latest"], a["recent_mean"], b["recent_mean"]) == (4.0, 3.0, 2.0)
    assert (coding["best"], coding["weakest"]) == ("a", "b")
    assert [h["rate"] for h in coding["hidden_tests"]] == [0.25, None, 1.0]
    assert [o["overall"] for o in coding["overall"]] == [2.5, 2.5, 2.75, 2.5]
    assert behavioral["dimensions"][0]["trend"] is None
    assert behavioral["best"] == behavioral["weakest"] == "x"
    assert build_progress([]) == {"sessions": 0, "tracks": []}
    nothing = build_progress([past(0, "coding", {"a": None})])["tracks"][0]
    assert nothing["best"] is None and nothing["dimensions"][0]["latest"] is None


def test_since_previous_uses_the_last_three_reports_of_the_track() -> None:
    previous = [
        past(0, "coding", {"a": 4.0, "b": 4.0}),  # outside the window of three
        past(1, "coding", {"a": 1.0, "b": None}),
        past(2, "behavioral", {"a": 4.0}),  # another track
        past(3, "coding", {"a": 2.0, "b": 3.0}),
        past(4, "coding", {"a": 3.0, "b": 1.0}),
    ]
    got = since_previous(body("coding", {"a": 3.5, "b": None, "c": 2.0}), previous)
    assert got["sessions"] == 3
    a, b, c = got["dimensions"]
    assert a == {
        "name": "a",
        "score": 3.5,
        "previous_mean": 2.0,
        "previous_scores": [1.0, 2.0, 3.0],
        "change": 1.5,
    }
    assert (b["previous_mean"], b["change"]) == (2.0, None)  # not observed this time
    assert (c["previous_mean"], c["change"], c["previous_scores"]) == (None, None, [])
    first = since_previous(body("coding", {"a": 2.0}), [])
    assert first == {
        "sessions": 0,
        "dimensions": [
            {
                "name": "a",
                "score": 2.0,
                "previous_mean": None,
                "previous_scores": [],
                "change": None,
            }
        ],
    }


def test_plan_settings_from_the_environment() -> None:
    defaults = load_settings({})
    assert (defaults.paid_entitlement, defaults.free_interviews_per_month) == ("pro", 3)
    assert defaults.paid_interviews_per_month is None  # unlimited
    custom = load_settings(
        {
            "MENTARA_PAID_ENTITLEMENT": "premium",
            "MENTARA_FREE_INTERVIEWS_PER_MONTH": "0",
            "MENTARA_PAID_INTERVIEWS_PER_MONTH": "40",
        }
    )
    assert (custom.paid_entitlement, custom.free_interviews_per_month) == ("premium", 0)
    assert custom.paid_interviews_per_month == 40
    assert (
        load_settings({"MENTARA_PAID_INTERVIEWS_PER_MONTH": "Unlimited"}).paid_interviews_per_month
        is None
    )
    for name, value in [
        ("MENTARA_PAID_INTERVIEWS_PER_MONTH", "lots"),
        ("MENTARA_PAID_INTERVIEWS_PER_MONTH", "-1"),
        ("MENTARA_FREE_INTERVIEWS_PER_MONTH", "three"),
    ]:
        with pytest.raises(ConfigError, match=name):
            load_settings({name: value})
