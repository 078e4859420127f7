"""Event retention: old events go, counted ones only; messages, dashboard figures and the
rollup rebuild stay right; the setting is an admin's, audited, and a bad value changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from app import clock
from app.extensions import db
from app.jobs.retention import purge_events
from app.models import AuditEntry, Event, Message, Role, Rollup
from app.tracking import rollups

pytestmark = pytest.mark.usefixtures("ctx")
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def _sums(org_id: int) -> tuple[int, int]:
    return db.session.execute(
        select(func.sum(Rollup.sent), func.sum(Rollup.opens)).where(Rollup.org_id == org_id)
    ).one()


def _candidate_mail(factories, org):  # noqa: ANN001, ANN202
    """A message the dashboard counts (made from the org's templates, not Herald's own mail)."""
    message = factories.make_message(org)
    message.template = "version"
    return message


def test_old_events_are_deleted_and_the_figures_stay(factories):
    org = factories.make_org()
    org.event_retention_days = 30
    keep_all = factories.make_org()
    keep_all.event_retention_days = 0
    db.session.commit()
    ages = (400, 45, 31, 29, 1)  # days: the first three are past 30 days
    for owner in (org, keep_all):
        for days in ages:
            message = _candidate_mail(factories, owner)
            message.status, message.sent_at = "sent", NOW - timedelta(days=days)
            for kind in ("sent", "opened"):
                db.session.add(
                    Event(
                        org_id=owner.id,
                        message_id=message.id,
                        type=kind,
                        created_at=NOW - timedelta(days=days),
                    )
                )
    db.session.commit()
    rollups.flush()
    db.session.commit()
    before = _sums(org.id)
    assert before == (5, 5)
    late = _candidate_mail(factories, org)  # not yet counted by the rollups: never deleted
    db.session.add(
        Event(org_id=org.id, message_id=late.id, type="sent", created_at=NOW - timedelta(days=90))
    )
    db.session.commit()

    deleted = purge_events(NOW)

    cut = datetime(2026, 10, 31, tzinfo=UTC)  # 30 days before, at UTC midnight
    left = db.session.scalars(
        select(Event.created_at).where(Event.org_id == org.id, Event.type.in_(["sent", "opened"]))
    ).all()
    assert deleted == 6 and sorted({d >= cut for d in left}) == [False, True]
    assert len([d for d in left if d < cut]) == 1  # the one the rollups had not counted yet
    kept = select(func.count()).where(Event.org_id == keep_all.id, Event.type != "queued")
    assert db.session.scalar(kept) == 10
    assert db.session.scalar(select(func.count(Message.id)).where(Message.org_id == org.id)) == 6
    db.session.expire_all()
    assert org.events_purged_before == cut
    assert _sums(org.id) == before  # the dashboard keeps its counts

    rollups.flush()
    db.session.commit()
    rollups.rebuild([org.id])  # keeps the purged days, recomputes the rest: agrees
    db.session.commit()
    assert _sums(org.id) == (before[0] + 1, before[1])


def test_timeline_says_older_events_were_deleted(factories, login_as, client):
    org = factories.make_org()
    message = factories.make_message(org)
    message.created_at = clock.now() - timedelta(days=60)
    org.event_retention_days = 30
    org.events_purged_before = clock.now() - timedelta(days=30)
    db.session.commit()
    login_as(factories.make_user(org, Role.VIEWER), org)
    html = client.get(f"/messages/{message.id}").get_data(as_text=True)
    assert "were deleted" in html and "30 days" in html


def _settings(org, **changes) -> dict:  # noqa: ANN001
    """The settings form as the page posts it, with `changes` (s-… fields)."""
    form = {
        "name": org.name,
        "timezone": "Europe/Paris",
        "s-send_rate_per_minute": 60,
        "s-invitation_ttl_days": 14,
        "s-candidate_daily_cap": 3,
        "s-max_retries": 3,
        "s-soft_bounce_threshold": 3,
        "s-soft_bounce_days": 7,
        "r-hours": "24",
    }
    return form | {f"s-{key}": value for key, value in changes.items()}


def test_only_admins_change_retention_and_bad_values_change_nothing(factories, login_as, post):
    org = factories.make_org()
    form = _settings(org)
    login_as(factories.make_user(org, Role.RECRUITER), org)
    assert post("/settings", {**form, "s-event_retention_days": 30}).status_code == 403
    login_as(factories.make_user(org, Role.ADMIN), org)
    assert post("/settings", {**form, "s-event_retention_days": 7}).status_code == 400
    assert post("/settings", {**form, "s-event_retention_days": "forever"}).status_code == 400
    db.session.expire_all()
    assert org.event_retention_days == 365
    assert post("/settings", {**form, "s-event_retention_days": 30}).status_code == 302
    db.session.expire_all()
    assert org.event_retention_days == 30
    entry = db.session.scalars(
        select(AuditEntry).where(AuditEntry.action == "settings.retention_changed")
    ).one()
    assert entry.detail == {"days": 30, "was": 365}


def test_retention_shorter_than_the_soft_bounce_window_is_refused(factories, login_as, post):
    """Soft bounces are counted from events: keeping them less long would lose the count."""
    org = factories.make_org()
    login_as(factories.make_user(org, Role.ADMIN), org)
    response = post("/settings", _settings(org, soft_bounce_days=60, event_retention_days=30))
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "at least as long as soft bounces are counted" in page
    assert "Nothing was saved" in page  # said at the top, not only beside the field
    db.session.expire_all()
    assert (org.event_retention_days, org.soft_bounce_days) == (365, 7)


def test_a_failed_email_keeps_its_attempts(factories):
    org = factories.make_org()
    org.event_retention_days = 30
    message = factories.make_message(org)
    message.status = "failed"
    db.session.add(
        Event(org_id=org.id, message_id=message.id, type="failed", created_at=NOW - timedelta(60))
    )
    db.session.commit()
    rollups.flush()
    db.session.commit()
    purge_events(NOW)
    kinds = db.session.scalars(select(Event.type).where(Event.message_id == message.id)).all()
    assert "failed" in kinds
