"""A campaign's results: every recipient with one state, filters, search, pages, HTMX rows, the
CSV export, tenancy, and the figures on the campaign page."""

from __future__ import annotations

import csv
import io

import pytest
from sqlalchemy import select

from app import clock
from app.extensions import db
from app.models import Invitation, Message, Role, Suppression

pytestmark = pytest.mark.usefixtures("ctx")


@pytest.fixture
def sent(factories, login_as):
    """A sent campaign to 60 people, the recruiter logged in; a few answered in every way."""
    org = factories.make_org("Acme")
    user = factories.make_user(org, Role.RECRUITER)
    campaign = factories.launch_campaign(org, 60, user=user)
    login_as(user, org)
    invitations = sorted(  # by the candidate's number: round0@, round1@, ...
        db.session.scalars(select(Invitation).where(Invitation.campaign_id == campaign.id)),
        key=lambda i: int(i.candidate.email.removeprefix("round").split("@")[0]),
    )
    messages = {
        m.invitation_id: m
        for m in db.session.scalars(select(Message).where(Message.campaign_id == campaign.id))
    }
    now = clock.now()
    for n in (0, 1, 2):
        invitations[n].status, invitations[n].responded_at = "accepted", now
    invitations[3].status, invitations[3].responded_at = "declined", now
    invitations[3].decline_reason, invitations[3].decline_note = "another_offer", "=1+1"
    invitations[4].no_slot_fits_note = "Only mornings, please"
    invitations[5].status = "revoked"
    messages[invitations[6].id].bounced_at = now
    db.session.add(Suppression(org_id=org.id, email="round7@example.com", reason="unsubscribed"))
    db.session.add(Suppression(org_id=org.id, email="round9@example.com", reason="hard_bounce"))
    invitations[8].candidate.first_name = "=HYPERLINK(1)"
    db.session.commit()
    return org, campaign, invitations


def _url(campaign, suffix: str = "") -> str:
    return f"/campaigns/{campaign.id}/results{suffix}"


def test_every_recipient_in_one_state_paged_filtered_and_searched(client, sent):
    org, campaign, invitations = sent
    page = client.get(_url(campaign))
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "HX-Request" in page.headers["Vary"]
    assert html.count('id="recipient-') == 50 and "Page 1 of 2" in html
    assert "Not yet answered (51)" in html and "Booked or accepted (3)" in html
    for label in ("Declined (1)", "No slot fits (1)", "Cancelled (1)", "Bounced (2)"):
        assert label in html
    assert "Unsubscribed (1)" in html
    second = client.get(_url(campaign, "?page=2")).get_data(as_text=True)
    assert second.count('id="recipient-') == 10

    declined = client.get(_url(campaign, "?state=declined")).get_data(as_text=True)
    assert declined.count('id="recipient-') == 1 and f"recipient-{invitations[3].id}" in declined
    assert "Accepted another offer: “=1+1”" in declined
    no_slot = client.get(_url(campaign, "?state=no_slot_fits")).get_data(as_text=True)
    assert "Only mornings, please" in no_slot

    found = client.get(_url(campaign, "?q=ROUND12%40"), headers={"HX-Request": "true"})
    rows = found.get_data(as_text=True)
    assert found.status_code == 200 and "round12@example.com" in rows
    assert rows.count('id="recipient-') == 1  # round12 only
    fragment = client.get(
        _url(campaign, "?state=booked"),
        headers={"HX-Request": "true", "HX-Target": "results-rows"},
    ).get_data(as_text=True)
    assert "<html" not in fragment and fragment.count('id="recipient-') == 3
    assert f'href="/campaigns/{campaign.id}/results.csv?state=booked"' in fragment

    nobody = client.get(_url(campaign, "?state=booked&q=nobody")).get_data(as_text=True)
    assert "No recipient matches" in nobody and "Show everyone" in nobody
    assert client.get(_url(campaign, "?state=everything")).status_code == 400
    assert client.get(_url(campaign, "?q=%25_%5C")).status_code == 200  # LIKE characters


def test_the_csv_export_streams_the_filtered_rows_with_the_injection_guard(client, sent):
    org, campaign, invitations = sent
    response = client.get(_url(campaign, ".csv"))
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert response.is_streamed
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    header, body = rows[0], rows[1:]
    assert header[:3] == ["name", "email", "state"] and len(body) == 60
    by_email = {r[1]: dict(zip(header, r, strict=True)) for r in body}
    assert by_email["round8@example.com"]["name"].startswith("'=HYPERLINK(1)")
    assert by_email["round0@example.com"]["state"] == "Booked or accepted"
    assert by_email["round0@example.com"]["answered_at"].endswith(("+01:00", "+02:00"))
    assert by_email["round4@example.com"]["no_slot_fits_note"] == "Only mornings, please"
    declined_row = by_email["round3@example.com"]
    assert (declined_row["decline_reason"], declined_row["decline_note"]) == (
        "Accepted another offer",
        "'=1+1",
    )
    assert by_email["round6@example.com"]["state"] == "Bounced"
    assert by_email["round7@example.com"]["state"] == "Unsubscribed"
    assert by_email["round9@example.com"]["state"] == "Bounced"  # a hard bounce's suppression
    assert by_email["round5@example.com"]["state"] == "Cancelled"

    declined = client.get(_url(campaign, ".csv?state=declined")).get_data(as_text=True)
    assert [r[1] for r in csv.reader(io.StringIO(declined))][1:] == ["round3@example.com"]
    assert client.get(_url(campaign, ".csv?state=nope")).status_code == 400


def test_another_orgs_campaign_results_are_404(client, sent, factories, login_as, post):
    org, campaign, invitations = sent
    other = factories.make_org("Globex")
    login_as(factories.make_user(other, Role.OWNER), other)
    assert client.get(_url(campaign)).status_code == 404
    assert client.get(_url(campaign, ".csv")).status_code == 404
    mark = f"/campaigns/{campaign.id}/results/{invitations[0].id}/attendance"
    assert post(mark, {"attended": "attended"}).status_code == 404
    follow = f"/campaigns/{campaign.id}/follow-up"
    assert post(follow, {"template_id": "", "hours": "24"}).status_code == 404
    mine = factories.launch_campaign(other, 1, tag="globex")  # their invitation, my campaign
    theirs = f"/campaigns/{mine.id}/results/{invitations[0].id}/attendance"
    assert post(theirs, {"attended": "attended"}).status_code == 404


def test_campaign_page_shows_views_bookings_and_no_replies_beside_delivery(client, sent):
    org, campaign, invitations = sent
    html = client.get(f"/campaigns/{campaign.id}").get_data(as_text=True)
    assert 'id="campaign-progress"' in html and 'id="campaign-answers"' in html
    assert 'id="figure-booked"' in html and ">3</a>" in html
    assert f'href="/campaigns/{campaign.id}/results"' in html
    assert "Viewed invitation" in html and ">51</a>" in html  # no reply yet


def test_a_viewer_reads_and_exports_but_cannot_mark_or_change_the_follow_up(
    client, sent, factories, login_as, post
):
    org, campaign, invitations = sent
    login_as(factories.make_user(org, Role.VIEWER), org)
    assert client.get(_url(campaign)).status_code == 200
    assert client.get(_url(campaign, ".csv")).status_code == 200
    follow = f"/campaigns/{campaign.id}/follow-up"
    assert post(follow, {"template_id": "", "hours": "24"}).status_code == 403


def test_a_draft_has_an_empty_results_list(client, factories, login_as):
    org = factories.make_org()
    user = factories.make_user(org, Role.RECRUITER)
    login_as(user, org)
    campaign = factories.make_campaign(org)
    html = client.get(_url(campaign)).get_data(as_text=True)
    assert "Not sent yet" in html and 'id="export"' not in html
    campaign.status = "sent"
    db.session.commit()
    assert "This campaign invited no one" in client.get(_url(campaign)).get_data(as_text=True)
