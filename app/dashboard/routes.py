"""GET /dashboard: org-wide or one campaign, template or job, over a date range in the org's
time zone; human opens and clicks by default. Refreshes itself with HTMX while mail is going
out; the campaign table exports as CSV."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta
from zoneinfo import ZoneInfo

from flask import Response, render_template, request
from flask.typing import ResponseReturnValue
from sqlalchemy import exists, select

from app import clock
from app.csvsafe import neutralise
from app.dashboard import bp
from app.dashboard import services as svc
from app.extensions import db
from app.models import Campaign, CampaignStatus, EmailTemplate, Job, Role
from app.tenancy import current_org, role_required
from app.tracking.rollups import freshness

MAX_DAYS = 400


def _id(name: str) -> int | None:
    value = request.args.get(name, "")
    return int(value) if value.isascii() and value.isdecimal() and len(value) < 10 else None


EARLIEST = date(2000, 1, 1)  # dates asked for are kept between this and a year ahead


def _date(name: str, default: date, today: date, notes: list[str]) -> date:
    try:
        value = date.fromisoformat(request.args.get(name, ""))
    except ValueError:
        return default
    kept = min(max(value, EARLIEST), today + timedelta(days=366))
    if kept != value:
        notes.append(f"“{value.isoformat()}” is out of range: {kept.isoformat()} is shown.")
    return kept


def _filters() -> svc.Filters:
    today = clock.now().astimezone(_zone()).date()
    notes: list[str] = []  # what was changed in the request, said on the page
    end = _date("to", today, today, notes)
    start = _date("from", end - timedelta(days=29), today, notes)
    if start > end:
        start, end = end, start
        notes.append("From was after To: the two were swapped.")
    if start < end - timedelta(days=MAX_DAYS):
        start = end - timedelta(days=MAX_DAYS)
        notes.append(f"At most {MAX_DAYS} days at a time: from {start.isoformat()}.")
    return svc.Filters(
        start=start,
        end=end,
        campaign_id=_known("campaign", Campaign, notes),
        template_id=_known("template", EmailTemplate, notes),
        job_id=_known("job", Job, notes),
        machines=request.args.get("machines") == "1",
        notes=tuple(notes),
    )


def _known(name: str, model, notes: list[str]) -> int | None:  # noqa: ANN001
    """The id asked for, if this org has it; else every one, and the page says so."""
    if not request.args.get(name):
        return None
    value = _id(name)
    if value is not None and db.session.scalar(
        select(exists().where(model.id == value, model.org_id == current_org.id))
    ):
        return value
    notes.append(f"The {name} asked for is not one of this organization's: all are shown.")
    return None


def _zone() -> ZoneInfo:
    return ZoneInfo(current_org.timezone)


@bp.get("/dashboard")
@role_required(Role.VIEWER)
def index() -> ResponseReturnValue:
    filters = _filters()
    zone = current_org.timezone
    sort = request.args.get("sort", "sent")
    sort = sort if sort in svc.SORTS else "sent"
    sending = db.session.scalar(
        select(
            exists().where(
                Campaign.org_id == current_org.id, Campaign.status == CampaignStatus.SENDING
            )
        )
    )
    seen = svc.overview(current_org.id, filters, zone, sort)
    ever_sent = bool(seen.figures["sent"]) or bool(
        db.session.scalar(select(exists().where(Campaign.org_id == current_org.id)))
    )
    context = {
        "ever_sent": ever_sent,
        "filters": filters,
        "figures": seen.figures,
        "series": seen.series,
        "campaigns": seen.campaigns,
        "templates": seen.templates,
        "choices": svc.choices(current_org.id),
        "sort": sort,
        "sending": sending,
        "fresh": freshness(),
        "args": {k: v for k, v in request.args.items() if k != "sort"},
    }
    if request.headers.get("HX-Request") and request.headers.get("HX-Target") == "dashboard":
        return render_template("dashboard/_body.html", **context)
    return render_template("dashboard/index.html", **context)


@bp.get("/dashboard.csv")
@role_required(Role.VIEWER)
def export() -> Response:
    """The campaigns table (with the org total) as CSV, for the filters on screen."""
    filters = _filters()
    seen = svc.overview(current_org.id, filters, current_org.timezone)
    rows, total = seen.campaigns, seen.figures
    out = io.StringIO()
    writer = csv.writer(out)
    rates = ("delivery", "bounce", "complaint", "open", "click", "accept", "decline")
    writer.writerow(
        ["campaign", "sent", "delivered", "bounced", "opened", "clicked", "accepted"]
        + ["declined", "complained"]
        + [f"{r}_rate" for r in rates]
    )
    narrowed = filters.campaign_id or filters.template_id or filters.job_id
    label = "Total for these filters" if narrowed else "All campaigns and mail"
    for name, figures in [(n, f) for _, n, f in rows] + [(label, total)]:
        writer.writerow(
            [
                neutralise(name),
                figures["sent"],
                figures["delivered"],
                figures["bounced"],
                figures.opens,
                figures.clicks,
                figures["accepted"],
                figures["declined"],
                figures["complained"],
            ]
            + [f"{figures.rates[r]:.4f}" if figures.rates[r] is not None else "" for r in rates]
        )
    name = f"herald-dashboard-{filters.start}-{filters.end}.csv"
    return Response(
        out.getvalue(),
        mimetype="text/csv",
        headers={"Content-Disposition": f"attachment; filename={name}"},
    )
