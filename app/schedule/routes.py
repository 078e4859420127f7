"""Schedule routes: a campaign's slots by day (org's zone) with who is booked; recruiters
generate or add slots, close, reopen or cancel one, and move a candidate to another slot.
HTMX posts get the schedule fragment back; plain posts redirect to the page."""

from __future__ import annotations

from datetime import datetime

from flask import abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user
from wtforms.fields.choices import SelectChoice

from app import clock
from app.extensions import db, htmx
from app.ids import id_from
from app.models import Booking, Campaign, InterviewSlot, Membership, Role, User
from app.schedule import bp, services, views
from app.schedule.forms import AddSlotForm, GenerateForm
from app.schedule.windows import Plan, WindowError, generate, zone_info
from app.tenancy import current_org, current_role, get_for_org_or_404, role_required


def _teammates(*forms: AddSlotForm | GenerateForm) -> None:
    members = db.session.execute(
        db.select(User.id, User.name, User.email)
        .join(Membership, Membership.user_id == User.id)
        .where(Membership.org_id == current_org.id)
        .order_by(User.name, User.email)
    ).all()
    for form in forms:
        form.teammates.choices = [SelectChoice(m.id, m.name or m.email) for m in members]


def _page(campaign: Campaign, status: int = 200, **extra) -> ResponseReturnValue:  # noqa: ANN003
    """The schedule page, or only its slots fragment for an HTMX request."""
    generate_form = extra.pop("generate_form", None) or GenerateForm(formdata=None, prefix="gen")
    add_form = extra.pop("add_form", None) or AddSlotForm(formdata=None, prefix="add")
    _teammates(generate_form, add_form)
    context = views.schedule(current_org, campaign) | {
        "campaign": campaign,
        "generate_form": generate_form,
        "add_form": add_form,
        "can_edit": current_role().at_least(Role.RECRUITER),
        **extra,
    }
    template = "schedule/_days.html" if htmx and not extra.get("full") else "schedule/show.html"
    headers = {"Vary": "HX-Request"}
    if status >= 400 and template == "schedule/_days.html":
        headers["HX-Refusal"] = "1"  # app.js swaps it in, so the reason is shown
    return render_template(template, **context), status, headers


def _campaign(campaign_id: int) -> Campaign:
    return get_for_org_or_404(Campaign, campaign_id)


def _slot(campaign: Campaign, slot_id: int) -> InterviewSlot:
    slot = get_for_org_or_404(InterviewSlot, slot_id)
    if slot.campaign_id != campaign.id:
        abort(404)
    return slot


@bp.get("/<int:campaign_id>/schedule")
@role_required(Role.VIEWER)
def show(campaign_id: int) -> ResponseReturnValue:
    return _page(_campaign(campaign_id))


def _done(campaign: Campaign, message: str) -> ResponseReturnValue:
    """Committed: the fragment with a notice (HTMX), else a redirect to the page."""
    db.session.commit()
    if htmx:
        return _page(campaign, notice=message)
    flash(message, "success")
    return redirect(url_for("schedule.show", campaign_id=campaign.id), 303)


def _refused(campaign: Campaign, message: str, **forms) -> ResponseReturnValue:  # noqa: ANN003
    """Nothing written: the page (or fragment) again with the reason, answered 400 or 409."""
    db.session.rollback()
    status = 409 if forms.pop("conflict", False) else 400
    where = "gen" if "generate_form" in forms else "add" if "add_form" in forms else None
    return _page(campaign, status, error=message, full=bool(forms), error_form=where, **forms)


def _generated_pairs(form: GenerateForm) -> tuple[list[tuple[datetime, datetime]], list]:
    windows = tuple(w for row in form.windows for w in [row.form.window()] if w is not None)
    plan = Plan(
        windows=windows,
        first_day=form.first_day.data,
        last_day=form.last_day.data,
        duration_minutes=form.duration.data,
        buffer_minutes=form.buffer.data or 0,
        zone=current_org.timezone,
    )
    result = generate(plan, not_before=clock.now())
    return result.slots, result.clock_changes


@bp.post("/<int:campaign_id>/slots/generate")
@role_required(Role.RECRUITER)
def generate_slots(campaign_id: int) -> ResponseReturnValue:
    campaign = _campaign(campaign_id)
    form = GenerateForm(prefix="gen")
    _teammates(form)
    if not form.validate():
        return _refused(campaign, views.first_error(form), generate_form=form)
    try:
        pairs, changes = _generated_pairs(form)
        details = services.SlotDetails(
            form.capacity.data,
            form.location.data or "",
            tuple(form.teammates.data or ()),
            form.outsider_list(),
        )
        slots = services.add_slots(current_org, campaign, current_user, pairs, details)
        warnings = services.overlaps(current_org, [s.id for s in slots])
    except (WindowError, services.ScheduleError) as exc:
        return _refused(campaign, str(exc), generate_form=form)
    message = f"{len(slots)} slot{'s' if len(slots) != 1 else ''} added."
    if changes:
        days = ", ".join(f"{d.day} {d:%b}" for d in changes)
        message += f" The clocks change during your hours on {days}: slots there follow real time."
    for warning in warnings:
        flash(warning, "error")
    return _done(campaign, message)


@bp.post("/<int:campaign_id>/slots")
@role_required(Role.RECRUITER)
def add_slot(campaign_id: int) -> ResponseReturnValue:
    campaign = _campaign(campaign_id)
    form = AddSlotForm(prefix="add")
    _teammates(form)
    if not form.validate():
        return _refused(campaign, views.first_error(form), add_form=form)
    try:
        zone_info(current_org.timezone)
        starts_at = views.local(form.day.data, form.start.data, current_org.timezone)
        ends_at = views.local(form.day.data, form.end.data, current_org.timezone)
        details = services.SlotDetails(
            form.capacity.data,
            form.location.data or "",
            tuple(form.teammates.data or ()),
            form.outsider_list(),
        )
        pair = [(starts_at, ends_at)]
        slots = services.add_slots(current_org, campaign, current_user, pair, details)
        warnings = services.overlaps(current_org, [slots[0].id])
    except (WindowError, services.ScheduleError) as exc:
        return _refused(campaign, str(exc), add_form=form)
    for warning in warnings:
        flash(warning, "error")
    return _done(campaign, "Slot added.")


@bp.post("/<int:campaign_id>/slots/<int:interview_slot_id>/close")
@role_required(Role.RECRUITER)
def close_slot(campaign_id: int, interview_slot_id: int) -> ResponseReturnValue:
    return _slot_action(campaign_id, interview_slot_id, "close")


@bp.post("/<int:campaign_id>/slots/<int:interview_slot_id>/reopen")
@role_required(Role.RECRUITER)
def reopen_slot(campaign_id: int, interview_slot_id: int) -> ResponseReturnValue:
    return _slot_action(campaign_id, interview_slot_id, "reopen")


@bp.post("/<int:campaign_id>/slots/<int:interview_slot_id>/cancel")
@role_required(Role.RECRUITER)
def cancel_slot(campaign_id: int, interview_slot_id: int) -> ResponseReturnValue:
    return _slot_action(campaign_id, interview_slot_id, "cancel")


def _slot_action(campaign_id: int, slot_id: int, action: str) -> ResponseReturnValue:
    campaign = _campaign(campaign_id)
    slot = _slot(campaign, slot_id)
    try:
        if action == "cancel":
            told = services.cancel_slot(current_org, slot, current_user)
            message = (
                f"Slot cancelled; {told} candidate{'s' if told != 1 else ''} told and asked to "
                "pick another time."
                if told
                else "Slot cancelled."
            )
        else:
            services.set_open(current_org, slot, current_user, action == "reopen")
            message = "Slot open again." if action == "reopen" else "Slot closed: no new bookings."
    except services.ScheduleError as exc:
        return _refused(campaign, str(exc), conflict=True)
    return _done(campaign, message)


@bp.post("/<int:campaign_id>/bookings/<int:booking_id>/move")
@role_required(Role.RECRUITER)
def move_booking(campaign_id: int, booking_id: int) -> ResponseReturnValue:
    campaign = _campaign(campaign_id)
    booking = get_for_org_or_404(Booking, booking_id)
    if booking.campaign_id != campaign.id:
        abort(404)
    raw = (request.form.get("slot_id") or "").strip()
    if not (raw.isascii() and raw.isdigit()):
        return _refused(campaign, "Pick the slot to move the candidate to.")
    slot_id = id_from(raw)
    if slot_id is None:
        abort(404)  # more digits than any slot id has
    target = _slot(campaign, slot_id)
    try:
        services.move_booking(current_org, booking, target, current_user)
    except services.ScheduleError as exc:
        return _refused(campaign, str(exc), conflict=True)
    name = booking.candidate.full_name
    return _done(campaign, f"{name} moved; they get the updated calendar entry.")
