"""Dashboard figures read from the rollups (never the events table): totals, rates, the funnel, a
time series in the org's time zone, and per-campaign and per-template tables."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from app.extensions import db
from app.models import COUNTERS, Campaign, EmailTemplate, Job, Rollup

SORTS = ("sent", "delivery", "bounce", "open", "click", "accept", "name")


@dataclass(frozen=True)
class Filters:
    """What the dashboard shows: a date range in the org's zone and one dimension, if any."""

    start: date
    end: date  # inclusive
    campaign_id: int | None = None
    template_id: int | None = None
    job_id: int | None = None
    machines: bool = False  # include machine opens and clicks

    def bounds(self, zone: str) -> tuple[datetime, datetime]:
        tz = ZoneInfo(zone)
        lo = datetime.combine(self.start, time.min, tz)
        hi = datetime.combine(self.end + timedelta(days=1), time.min, tz)
        return lo, hi


@dataclass
class Figures:
    """Counts and the rates a recruiter reads."""

    counts: dict[str, int] = field(default_factory=dict)
    machines: bool = False

    def __getitem__(self, name: str) -> int:
        return self.counts.get(name, 0)

    @property
    def opens(self) -> int:
        return self["unique_opens" if self.machines else "unique_opens_human"]

    @property
    def clicks(self) -> int:
        return self["unique_clicks" if self.machines else "unique_clicks_human"]

    def rate(self, part: int, whole: int) -> float | None:
        return part / whole if whole else None

    @functools.cached_property
    def rates(self) -> dict[str, float | None]:
        sent, delivered = self["sent"], self["delivered"]
        return {
            "delivery": self.rate(delivered, sent),
            "bounce": self.rate(self["bounced"], sent),
            "complaint": self.rate(self["complained"], sent),
            "open": self.rate(self.opens, delivered),
            "click": self.rate(self.clicks, delivered),
            "accept": self.rate(self["accepted"], sent),
            "decline": self.rate(self["declined"], sent),
        }

    @property
    def funnel(self) -> list[tuple[str, int]]:
        return [
            ("Sent", self["sent"]),
            ("Delivered", self["delivered"]),
            ("Opened", self.opens),
            ("Clicked", self.clicks),
            ("Accepted", self["accepted"]),
        ]


def _scoped(org_id: int, filters: Filters, zone: str):  # noqa: ANN202
    lo, hi = filters.bounds(zone)
    query = [Rollup.org_id == org_id, Rollup.bucket >= lo, Rollup.bucket < hi]
    if filters.campaign_id:
        query.append(Rollup.campaign_id == filters.campaign_id)
    if filters.template_id:
        query.append(Rollup.template_id == filters.template_id)
    if filters.job_id:
        query.append(Rollup.job_id == filters.job_id)
    return query


_SUMS = [func.coalesce(func.sum(getattr(Rollup, c)), 0) for c in COUNTERS]


def totals(org_id: int, filters: Filters, zone: str) -> Figures:
    row = db.session.execute(select(*_SUMS).where(*_scoped(org_id, filters, zone))).one()
    return Figures(dict(zip(COUNTERS, map(int, row), strict=True)), filters.machines)


def series(org_id: int, filters: Filters, zone: str) -> list[dict]:
    """One point per day in the org's zone (per hour when the range is two days or less)."""
    hourly = (filters.end - filters.start).days < 2
    local = func.timezone(zone, Rollup.bucket)
    step = func.date_trunc("hour" if hourly else "day", local).label("at")
    opens = Rollup.unique_opens if filters.machines else Rollup.unique_opens_human
    clicks = Rollup.unique_clicks if filters.machines else Rollup.unique_clicks_human
    rows = db.session.execute(
        select(
            step,
            func.sum(Rollup.sent),
            func.sum(Rollup.delivered),
            func.sum(opens),
            func.sum(clicks),
            func.sum(Rollup.bounced),
        )
        .where(*_scoped(org_id, filters, zone))
        .group_by(step)
        .order_by(step)
    ).all()
    fmt = "%d %b %H:00" if hourly else "%a %d %b"
    return [
        {
            "label": at.strftime(fmt),
            "sent": int(s),
            "delivered": int(d),
            "opened": int(o),
            "clicked": int(c),
            "bounced": int(b),
        }
        for at, s, d, o, c, b in rows
    ]


def _table(org_id: int, filters: Filters, zone: str, column, model, sort: str):  # noqa: ANN001, ANN202
    """Sum per campaign (or template) first, then join the few names (not every rollup row)."""
    sums = (
        select(column.label("key"), *(s.label(c) for s, c in zip(_SUMS, COUNTERS, strict=True)))
        .where(*_scoped(org_id, filters, zone), column != 0)
        .group_by(column)
        .subquery()
    )
    rows = db.session.execute(
        select(sums.c.key, model.name, *(sums.c[c] for c in COUNTERS)).join(
            model, model.id == sums.c.key
        )
    ).all()
    items = [
        (id_, name, Figures(dict(zip(COUNTERS, map(int, values), strict=True)), filters.machines))
        for id_, name, *values in rows
    ]
    if sort == "name":
        return sorted(items, key=lambda x: x[1].lower())
    if sort == "sent":
        return sorted(items, key=lambda x: -x[2]["sent"])
    return sorted(items, key=lambda x: -(x[2].rates.get(sort) or 0))


def campaigns(org_id: int, filters: Filters, zone: str, sort: str = "sent") -> list:
    return _table(org_id, filters, zone, Rollup.campaign_id, Campaign, sort)


def templates(org_id: int, filters: Filters, zone: str, sort: str = "sent") -> list:
    return _table(org_id, filters, zone, Rollup.template_id, EmailTemplate, sort)


def choices(org_id: int) -> dict:
    """Campaigns, templates and jobs for the scope menus."""

    def pairs(model) -> list:  # noqa: ANN001
        return db.session.execute(
            select(model.id, getattr(model, "name", None) or model.title)
            .where(model.org_id == org_id)
            .order_by(model.id.desc())
            .limit(300)
        ).all()

    return {
        "campaigns": pairs(Campaign),
        "templates": pairs(EmailTemplate),
        "jobs": db.session.execute(
            select(Job.id, Job.title).where(Job.org_id == org_id).order_by(Job.title)
        ).all(),
    }
