"""The candidate's slot picker: open times by day in their zone, booking, rescheduling and
cancelling (each a POST carrying a signed form state, so a replayed or stale form is refused),
the calendar file, and "none of these times work". GET pages only show."""

from __future__ import annotations

from datetime import date
from itertools import groupby
from zoneinfo import ZoneInfo

from flask import abort, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from app.extensions import db
from app.invitations import booking, booking_mail
from app.invitations.zones import UnknownZone, known_zones, valid_zone, zone_or
from app.mail.compose import brand_for
from app.mail.tokens import InvalidToken, sign, unsign
from app.models import (
    Booking,
    Campaign,
    Candidate,
    Invitation,
    Job,
    Organization,
)
from app.public import bp
from app.public.access import gone, live_invitation, rate_limit, row

FORM_MAX_AGE = 7 * 24 * 3600
DONE = {
    "booked": "Your interview is booked. We've emailed you the details and a calendar invite.",
    "moved": "Your interview is moved. We've emailed you the new time and an updated invite.",
    "cancelled": "Your interview is cancelled. We've emailed you a cancellation for your calendar.",
    "noted": "Thank you. We've passed your message on to the recruiter.",
}


class StaleForm(Exception):
    """A form from another page, changed by hand, or older than the booking it would change."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.message, self.status = message, status


def _zone() -> tuple[str | None, str | None]:
    """The zone the candidate chose (?tz=, or the zone a posted form was showing), and an error
    when it is not a real one."""
    asked = request.args.get("tz")
    if asked is None and request.method == "POST":
        asked = request.form.get("time_zone")
    if asked is None:
        return None, None
    try:
        return valid_zone(asked), None
    except UnknownZone as exc:
        return None, f"{exc} Times are shown in the zone below instead."


def _days(slots: list, tz: ZoneInfo) -> list[tuple[date, list[tuple]]]:
    """Slots grouped by their local day: [(day, [(slot, local start, local end), ...])]."""
    local = [(s, s.starts_at.astimezone(tz), s.ends_at.astimezone(tz)) for s in slots]
    return [(day, list(items)) for day, items in groupby(local, key=lambda t: t[1].date())]


def _state(invitation: Invitation, current: Booking | None) -> str:
    """The signed form state: which invitation, and which booking the form was made for."""
    return sign("booking-form", {"i": invitation.id, "b": current.id if current else 0})


def page(  # noqa: PLR0913 - the page's variants
    invitation: Invitation,
    *,
    status: int = 200,
    note: str | None = None,
    error: str | None = None,
    mode: str = "pick",
) -> ResponseReturnValue:
    """The invitation page of a campaign that offers slots."""
    org = db.session.get(Organization, invitation.org_id)
    candidate = row(Candidate, invitation.candidate_id)
    chosen, zone_error = _zone()
    zone = chosen or zone_or(candidate.timezone, org.timezone)
    tz = ZoneInfo(zone)
    current = booking.active_booking(invitation)
    held = booking.slot_of(current) if current else None
    slots = booking.open_slots(org, invitation.campaign_id)
    if held is not None:
        slots = [s for s in slots if s.id != held.id]
    body = render_template(
        "public/invitation.html",
        invitation=invitation,
        org=org,
        brand=brand_for(org),
        campaign=row(Campaign, invitation.campaign_id),
        job=row(Job, invitation.job_id),
        candidate=candidate,
        note=note or DONE.get(request.args.get("done", "")),
        error=error or zone_error,
        mode=mode,
        zone=zone,
        zone_chosen=chosen is not None,
        zones=sorted(known_zones()),
        tz=tz,
        days=_days(slots, tz),
        booking=current,
        held=held,
        can_change=held is not None and held.starts_at > booking.cutoff(org),
        state=_state(invitation, current),
    )
    return body, 400 if zone_error and status == 200 else status


def _slots_invitation(token: str) -> Invitation | None:
    """The live invitation, if its campaign offers slots."""
    found = live_invitation(token)
    if found is None or row(Campaign, found.campaign_id).scheduling != "slots":
        return None
    return found


def _form_state(invitation: Invitation) -> int:
    """The booking (id, 0 for none) the posted form was made for; StaleForm for a form that is
    not this invitation's page's (forged, changed, or another invitation's)."""
    try:
        data = unsign("booking-form", request.form.get("state", ""), max_age=FORM_MAX_AGE)
    except InvalidToken as exc:
        raise StaleForm(
            "This form has expired or was changed. Please use the page again.", 400
        ) from exc
    if not isinstance(data, dict) or data.get("i") != invitation.id:
        raise StaleForm("This form belongs to another invitation.", 400)
    seen = data.get("b")
    if not isinstance(seen, int):
        raise StaleForm("This form was changed. Please use the page again.", 400)
    return seen


def _slot_id() -> int:
    try:
        value = int(request.form.get("slot_id", ""))
    except ValueError:
        abort(400, description="Pick one of the times offered.")
    if not 0 < value < 2**63:
        abort(400, description="Pick one of the times offered.")
    return value


def _form_zone() -> str | None:
    """The zone the page was showing, to show the next page in (when it is a real one)."""
    zone = request.form.get("time_zone")
    return zone if zone in known_zones() else None


def _done(token: str, what: str, zone: str | None = None) -> ResponseReturnValue:
    """After a change: the page again by GET (a refresh posts nothing twice)."""
    return redirect(url_for("public.invitation", token=token, done=what, tz=zone), 303)


def _change(token: str, what: str, action) -> ResponseReturnValue:  # noqa: ANN001
    """Run one booking change for the token's invitation; its refusal is the page with a note."""
    rate_limit()
    invitation = _slots_invitation(token)
    if invitation is None:
        return gone()
    mode = {"booked": "pick", "moved": "reschedule", "cancelled": "cancel"}.get(what, "pick")
    try:
        seen = _form_state(invitation)
        org = db.session.get(Organization, invitation.org_id)
        zone = action(org, invitation, seen)
    except (StaleForm, booking.BookingError) as exc:
        db.session.rollback()
        return page(invitation, status=exc.status, error=exc.message, mode=mode)
    db.session.commit()
    return _done(token, what, zone)


@bp.post("/i/<token>/book")
def book(token: str) -> ResponseReturnValue:
    """Book one open slot (the database refuses a full one)."""

    def action(org: Organization, invitation: Invitation, seen: int) -> str:
        zone = request.form.get("time_zone")
        booking.book(org, invitation, _slot_id(), zone, expected=seen)
        return zone

    return _change(token, "booked", action)


@bp.get("/i/<token>/reschedule")
def reschedule_page(token: str) -> ResponseReturnValue:
    rate_limit()
    invitation = _slots_invitation(token)
    return page(invitation, mode="reschedule") if invitation else gone()


@bp.post("/i/<token>/reschedule")
def reschedule(token: str) -> ResponseReturnValue:
    """Move the booking to another open slot (the old place is released in the same commit)."""

    def action(org: Organization, invitation: Invitation, seen: int) -> str:
        zone = request.form.get("time_zone")
        booking.reschedule(org, invitation, _slot_id(), zone, expected=seen)
        return zone

    return _change(token, "moved", action)


@bp.get("/i/<token>/cancel")
def cancel_page(token: str) -> ResponseReturnValue:
    rate_limit()
    invitation = _slots_invitation(token)
    return page(invitation, mode="cancel") if invitation else gone()


@bp.post("/i/<token>/cancel")
def cancel(token: str) -> ResponseReturnValue:
    def action(org: Organization, invitation: Invitation, seen: int) -> str | None:
        booking.cancel(org, invitation, expected=seen)
        return _form_zone()

    return _change(token, "cancelled", action)


@bp.post("/i/<token>/none-fit")
def none_fit(token: str) -> ResponseReturnValue:
    """'None of these times work': the candidate's short message goes to the recruiter."""

    def action(org: Organization, invitation: Invitation, seen: int) -> str | None:
        booking.no_slot_fits(org, invitation, request.form.get("note", ""))
        return _form_zone()

    return _change(token, "noted", action)


@bp.get("/i/<token>/calendar.ics")
def calendar(token: str) -> ResponseReturnValue:
    """'Add to calendar' on the confirmation page: the booking's current entry."""
    rate_limit()
    invitation = _slots_invitation(token)
    current = booking.active_booking(invitation) if invitation else None
    if current is None:
        return gone()
    org = db.session.get(Organization, invitation.org_id)
    body = booking_mail.calendar_file(org, current)
    return (
        body,
        200,
        {
            "Content-Type": "text/calendar; charset=utf-8; method=REQUEST",
            "Content-Disposition": 'attachment; filename="interview.ics"',
            "Cache-Control": "no-store",
        },
    )
