"""Views of the candidate's invitation page: a person's view counted once per message, machines
kept and flagged under the click rules, the dashboard funnel's "Viewed invitation" step from the
rollups (and the rebuild agreeing), the campaign page's figure."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, text

from app import clock
from app.extensions import db
from app.invitations.tokens import reveal
from app.models import COUNTERS, Event, Invitation, Message, Role
from app.tracking import rollups

pytestmark = pytest.mark.usefixtures("ctx")
HUMAN = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/130 Safari"}
SCANNER = {"User-Agent": "Googlebot/2.1 (+http://www.google.com/bot.html)"}


@pytest.fixture
def invited(factories):
    """Two invitations of a campaign, their emails sent a minute ago, delivered."""
    org = factories.make_org("Acme")
    campaign = factories.launch_campaign(org, 2)
    for message in db.session.scalars(select(Message)):
        message.status, message.sent_at = "sent", clock.now() - timedelta(minutes=1)
        message.delivery = "delivered"
        db.session.add(Event(org_id=org.id, message_id=message.id, type="sent"))
    db.session.commit()
    invitations = db.session.scalars(select(Invitation).order_by(Invitation.id)).all()
    return org, campaign, invitations


def _page(invitation: Invitation) -> str:
    return f"/i/{reveal(invitation.token_encrypted)}"


def _views() -> list[Event]:
    db.session.expire_all()
    return db.session.scalars(select(Event).where(Event.type == "viewed").order_by(Event.id)).all()


def _message(invitation: Invitation) -> Message:
    return db.session.scalars(select(Message).where(Message.invitation_id == invitation.id)).one()


def test_a_persons_views_and_machines_views_are_told_apart(app, invited):
    org, campaign, (first, second) = invited
    client = app.test_client()
    assert client.get(_page(first), headers=HUMAN).status_code == 200
    client.get(_page(first), headers=HUMAN)
    client.get(_page(first), headers=SCANNER)
    client.head(_page(first), headers=HUMAN)
    client.get(_page(second), headers=SCANNER)
    views = _views()
    assert [(v.message_id, v.machine, v.machine_reason, v.first, v.first_human) for v in views] == [
        (_message(first).id, False, None, True, True),
        (_message(first).id, False, None, False, False),
        (_message(first).id, True, "scanner_agent", False, False),
        (_message(first).id, True, "head_request", False, False),
        (_message(second).id, True, "scanner_agent", True, False),
    ]
    assert views[2].detail["rules"]  # a machine's event names the rules that judged it
    seen = _message(first)
    assert seen.human_viewed_at is not None and seen.delivery == "delivered"  # status kept
    machine_only = _message(second)
    assert machine_only.viewed_at is not None and machine_only.human_viewed_at is None
    assert client.get("/i/" + "x" * 43, headers=HUMAN).status_code == 404
    assert len(_views()) == 5  # a bad link records nothing


def test_a_view_right_after_sending_is_a_link_scanner(app, invited):
    org, campaign, (first, _) = invited
    message = _message(first)
    message.sent_at = clock.now()
    db.session.commit()
    app.test_client().get(_page(first), headers=HUMAN)
    [view] = _views()
    assert view.machine and view.machine_reason == "click_right_after_send"
    assert _message(first).human_viewed_at is None


def test_no_views_are_recorded_when_the_campaign_does_not_track(app, invited):
    org, campaign, (first, _) = invited
    campaign.tracking_enabled = False
    db.session.commit()
    assert app.test_client().get(_page(first), headers=HUMAN).status_code == 200
    assert _views() == []


def _totals(org_id: int) -> dict:
    columns = ", ".join(f"sum({c})" for c in COUNTERS)
    row = db.session.execute(
        text(f"SELECT {columns} FROM rollups WHERE org_id = :o"), {"o": org_id}
    ).one()
    return {c: int(v or 0) for c, v in zip(COUNTERS, row, strict=True)}


def test_the_funnel_gets_a_viewed_invitation_step_and_the_rebuild_agrees(
    app, invited, factories, login_as, client
):
    org, campaign, (first, second) = invited
    candidate = app.test_client()
    rollups.flush()
    db.session.commit()
    candidate.get(_page(first), headers=HUMAN)
    candidate.get(_page(first), headers=HUMAN)
    candidate.get(_page(second), headers=SCANNER)
    rollups.flush()
    db.session.commit()
    totals = _totals(org.id)
    assert (totals["views"], totals["views_human"]) == (3, 2)
    assert (totals["unique_views"], totals["unique_views_human"]) == (2, 1)
    rollups.rebuild([org.id])
    db.session.commit()
    assert _totals(org.id) == totals

    login_as(factories.make_user(org, Role.VIEWER), org)
    page = client.get("/dashboard").get_data(as_text=True)
    funnel = page[page.index('id="funnel"') :]
    labels = ["Sent", "Delivered", "Opened", "Clicked", "Viewed invitation", "Accepted"]
    positions = [funnel.index(f'funnel-label">{label}<') for label in labels]
    assert positions == sorted(positions)
    step = funnel[positions[4] :]
    assert step[step.index('funnel-n">') :].startswith('funnel-n">1<')
    machines = client.get("/dashboard?machines=1").get_data(as_text=True)
    step = machines[machines.index('funnel-label">Viewed invitation<') :]
    assert step[step.index('funnel-n">') :].startswith('funnel-n">2<')

    show = client.get(f"/campaigns/{campaign.id}").get_data(as_text=True)
    assert 'id="figure-viewed">1<' in show and "1 more were opened only by link scanners" in show
