"""Dashboard figures read from the rollups (never the events table): totals, rates, the funnel, a
time series in the org's time zone, and per-campaign and per-template tables."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select, text

from app.extensions import db
from app.models import COUNTERS, Campaign, EmailTemplate, Job

SORTS = ("sent", "delivery", "bounce", "open", "click", "accept", "decline", "name")


@dataclass(frozen=True)
class Filters:
    """What the dashboard shows: a date range in the org's zone and one dimension, if any."""

    start: date
    end: date  # inclusive
    campaign_id: int | None = None
    template_id: int | None = None
    job_id: int | None = None
    machines: bool = False  # include machine opens and clicks
    notes: tuple[str, ...] = ()  # how the request's dates were adjusted

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

    @property
    def views(self) -> int:
        """Candidates who opened their invitation page (by a person, unless machines are on)."""
        return self["unique_views" if self.machines else "unique_views_human"]

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
            ("Viewed invitation", self.views),
            ("Accepted", self["accepted"]),
        ]


_GROUPED = ", ".join(f"coalesce(sum({c}), 0)" for c in COUNTERS)
# GROUPING(at, campaign_id, template_id): a set bit is a column *not* grouped on
_TOTAL, _STEP, _CAMPAIGN, _TEMPLATE = 7, 3, 5, 6


@dataclass
class Overview:
    figures: Figures
    series: list[dict]
    campaigns: list
    templates: list


def overview(org_id: int, filters: Filters, zone: str, sort: str = "sent") -> Overview:
    """Everything the dashboard shows, from one scan of the rollup rows in range: totals, the
    time series, and the per-campaign and per-template sums (GROUPING SETS)."""
    hourly = (filters.end - filters.start).days < 2
    lo, hi = filters.bounds(zone)
    where = ["org_id = :org", "bucket >= :lo", "bucket < :hi"]
    params: dict = {"org": org_id, "lo": lo, "hi": hi, "zone": zone}
    params["unit"] = "hour" if hourly else "day"
    for name in ("campaign_id", "template_id", "job_id"):
        value = getattr(filters, name)
        if value:
            where.append(f"{name} = :{name}")
            params[name] = value
    rows = db.session.execute(
        text(
            f"""
            SELECT GROUPING(at, campaign_id, template_id), at, campaign_id, template_id,
                   {_GROUPED}
            FROM (SELECT date_trunc(:unit, timezone(:zone, bucket)) AS at, *
                  FROM rollups WHERE {" AND ".join(where)}) r
            GROUP BY GROUPING SETS ((), (at), (campaign_id), (template_id))
            ORDER BY 1, 2
            """
        ),
        params,
    ).all()
    figures = Figures(dict.fromkeys(COUNTERS, 0), filters.machines)
    steps, by_campaign, by_template = [], {}, {}
    for grouping, at, campaign_id, template_id, *values in rows:
        counts = Figures(dict(zip(COUNTERS, map(int, values), strict=True)), filters.machines)
        if grouping == _TOTAL:
            figures = counts
        elif grouping == _STEP:
            steps.append((at, counts))
        elif grouping == _CAMPAIGN and campaign_id:
            by_campaign[campaign_id] = counts
        elif grouping == _TEMPLATE and template_id:
            by_template[template_id] = counts
    fmt = "%d %b %H:00" if hourly else "%a %d %b"
    series_ = [
        {
            "label": at.strftime(fmt),
            "sent": f["sent"],
            "delivered": f["delivered"],
            "opened": f.opens,
            "clicked": f.clicks,
            "bounced": f["bounced"],
        }
        for at, f in steps
    ]
    return Overview(
        figures,
        series_,
        _named(org_id, Campaign, by_campaign, sort),
        _named(org_id, EmailTemplate, by_template, "sent"),
    )


def _named(org_id: int, model, sums: dict, sort: str) -> list:  # noqa: ANN001
    """(id, name, figures) for the ids that have sums, sorted as asked."""
    if not sums:
        return []
    names = dict(
        db.session.execute(
            select(model.id, model.name).where(model.org_id == org_id, model.id.in_(list(sums)))
        ).all()
    )
    items = [(id_, names[id_], figures) for id_, figures in sums.items() if id_ in names]
    return _sorted(items, sort)


def _sorted(items: list, sort: str) -> list:
    if sort == "name":
        return sorted(items, key=lambda x: x[1].lower())
    if sort == "sent":
        return sorted(items, key=lambda x: -x[2]["sent"])
    return sorted(items, key=lambda x: -(x[2].rates.get(sort) or 0))


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
