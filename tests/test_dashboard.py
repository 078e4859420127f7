"""The dashboard reads rollups: rates, funnel, series, campaigns and templates, human by default,
CSV export, bad filters tolerated, another org's figures never shown."""

from __future__ import annotations

import re
from datetime import UTC

import pytest
from sqlalchemy import select

from app.extensions import db
from app.mail.tracked_links import click_path, pixel_path
from app.models import Event, Invitation, Message, Role
from app.tracking import rollups

pytestmark = pytest.mark.usefixtures("ctx")
HUMAN = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/130 Safari/537.36"}


@pytest.fixture
def busy_org(app, factories, sink, run_worker, login_as):
    org = factories.make_org("Acme")
    campaign = factories.launch_campaign(org, 4)
    factories.make_message(org)  # Herald's own mail to the team: not in the candidates' rates
    run_worker()  # sent (and, over SMTP, delivered)
    messages = db.session.scalars(select(Message).order_by(Message.id)).all()
    for m in messages:  # sent a while ago, so clicks are not "right after sending"
        m.sent_at = m.sent_at.replace(year=m.sent_at.year - 1)
    db.session.commit()
    client = app.test_client()
    client.get(pixel_path(messages[0].id), headers=HUMAN)
    client.get(pixel_path(messages[1].id), headers={"User-Agent": "Mozilla/5.0"})  # Apple MPP
    client.get(click_path(messages[0].id, "https://example.com/job"), headers=HUMAN)
    invitation = db.session.scalars(select(Invitation).order_by(Invitation.id)).first()
    invitation.status = "accepted"
    db.session.add(Event(org_id=org.id, message_id=messages[0].id, type="accepted"))
    db.session.commit()
    rollups.flush()
    db.session.commit()
    login_as(factories.make_user(org, Role.VIEWER), org)
    return org, campaign


def _kpi(html: str, name: str) -> str:
    return re.search(rf'id="kpi-{name}">([^<]+)<', html).group(1)


def test_dashboard_shows_rates_funnel_and_tables(busy_org, client):
    org, campaign = busy_org
    html = client.get("/dashboard").get_data(as_text=True)
    assert _kpi(html, "sent") == "4" and _kpi(html, "delivered") == "100.0%"  # not the 5th
    assert _kpi(html, "open") == "25.0%"  # the Apple prefetch is not a person
    assert _kpi(html, "click") == "25.0%" and _kpi(html, "accept") == "25.0%"
    assert campaign.name in html and 'id="series-data"' in html
    assert "Templates compared" in html
    everything = client.get("/dashboard?machines=1").get_data(as_text=True)
    assert _kpi(everything, "open") == "50.0%"


def test_dashboard_filters_exports_and_isolates_orgs(busy_org, client, factories):
    org, campaign = busy_org
    other = factories.make_org("Other")
    other_campaign = factories.launch_campaign(other, 2, tag="x")
    one = client.get(f"/dashboard?campaign={campaign.id}&sort=open").get_data(as_text=True)
    assert _kpi(one, "sent") == "4"
    empty = client.get("/dashboard?from=2001-01-01&to=2001-01-31").get_data(as_text=True)
    assert _kpi(empty, "sent") == "0" and "Nothing was sent in these dates" in empty
    for bad in ("from=yesterday", "to=2026-13-45", "campaign=²", "sort=drop", "job=99999999999"):
        assert client.get(f"/dashboard?{bad}").status_code == 200, bad
    theirs = client.get(f"/dashboard?campaign={other_campaign.id}").get_data(as_text=True)
    assert "The campaign asked for is not one of this organization" in theirs
    assert _kpi(theirs, "sent") == "4"  # this org's figures, all of them: not the other's
    for far in ("to=9999-12-31", "from=9999-12-31", "to=0001-01-01", "from=0001-01-01"):
        for url in (f"/dashboard?{far}", f"/dashboard.csv?{far}"):
            assert client.get(url).status_code == 200, url  # (these were 500s)
    odd = client.get("/dashboard?to=9999-12-31").get_data(as_text=True)
    assert "is out of range" in odd and "9999-12-31" in odd
    swapped = client.get("/dashboard?from=2026-03-10&to=2026-03-01").get_data(as_text=True)
    assert "From was after To: the two were swapped." in swapped
    csv = client.get("/dashboard.csv").get_data(as_text=True)
    assert csv.splitlines()[0].startswith("campaign,sent,delivered")
    assert campaign.name in csv and "All campaigns and mail,4," in csv
    assert csv.splitlines()[0].startswith(
        "campaign,sent,delivered,bounced,opened,clicked,accepted,declined,complained"
    )
    one = client.get(f"/dashboard.csv?campaign={campaign.id}").get_data(as_text=True)
    assert "Total for these filters,4," in one and "All campaigns and mail" not in one
    by_decline = client.get("/dashboard?sort=decline").get_data(as_text=True)
    table = by_decline.split('id="campaign-table"')[1].split("</table>")[0]
    assert 'aria-sort="descending"' in table and ">Declined" in table  # as templates have it
    part = client.get("/dashboard", headers={"HX-Request": "true", "HX-Target": "dashboard"})
    assert part.get_data(as_text=True).lstrip().startswith('<div id="dashboard"')


def test_message_search_and_timeline(busy_org, client):
    org, _ = busy_org
    message = db.session.scalars(select(Message).order_by(Message.id)).first()
    found = client.get(f"/messages/search?q={message.to_email.upper()}").get_data(as_text=True)
    assert message.message_id in found.replace("&lt;", "<").replace("&gt;", ">")
    by_id = client.get("/messages/search", query_string={"q": message.message_id.strip("<>")})
    assert f"/messages/{message.id}" in by_id.get_data(as_text=True)
    page = client.get(f"/messages/{message.id}").get_data(as_text=True)
    for step in ("sent", "delivered", "opened", "clicked", "accepted", "person"):
        assert step in page, step
    details = page.split("<h2>Details</h2>")[1].split("</dl>")[0]  # the provider as people know it
    [sent] = [e for e in message.events if e.type == "sent"]
    assert f"<dt>Provider</dt><dd>{sent.detail['provider']}</dd>" in details
    assert "<dt>Kind</dt><dd>Invitation</dd>" in details


def test_one_scan_splits_totals_days_campaigns_and_templates_in_the_org_zone(app, factories):
    """Rollup rows of two campaigns (two templates, two jobs) on both sides of local midnight in
    a zone 5:45 ahead of UTC: the days, the scopes and the tables each sum the right rows."""
    from datetime import date, datetime

    from app.dashboard import services as svc
    from app.models import Rollup

    org = factories.make_org("Kathmandu Co")
    org.timezone = "Asia/Kathmandu"
    one, two = factories.make_campaign(org), factories.make_campaign(org)
    db.session.commit()
    rows = [  # (UTC bucket, campaign, sent, delivered): 18:15 UTC is 00:00 the next day there
        (datetime(2026, 11, 10, 18, 0, tzinfo=UTC), one, 5, 4),
        (datetime(2026, 11, 10, 18, 15, tzinfo=UTC), one, 7, 7),
        (datetime(2026, 11, 10, 18, 15, tzinfo=UTC), two, 3, 1),
    ]
    for bucket, campaign, sent, delivered in rows:
        db.session.add(
            Rollup(
                org_id=org.id,
                bucket=bucket,
                campaign_id=campaign.id,
                template_id=campaign.template_id,
                job_id=campaign.job_id,
                sent=sent,
                delivered=delivered,
            )
        )
    db.session.commit()
    days = svc.Filters(start=date(2026, 11, 10), end=date(2026, 11, 11))
    seen = svc.overview(org.id, days, org.timezone)
    assert seen.figures["sent"] == 15 and seen.figures["delivered"] == 12
    assert [(p["label"], p["sent"]) for p in seen.series] == [
        ("10 Nov 23:00", 5),
        ("11 Nov 00:00", 10),
    ]
    assert [(c[0], c[2]["sent"]) for c in seen.campaigns] == [(one.id, 12), (two.id, 3)]
    assert {t[0]: t[2]["sent"] for t in seen.templates} == {
        one.template_id: 12,
        two.template_id: 3,
    }
    job = svc.Filters(days.start, days.end, job_id=two.job_id)
    assert svc.overview(org.id, job, org.timezone).figures["sent"] == 3
    week = svc.Filters(start=date(2026, 11, 5), end=date(2026, 11, 11), campaign_id=one.id)
    assert [(p["label"], p["sent"]) for p in svc.overview(org.id, week, org.timezone).series] == [
        ("Tue 10 Nov", 5),
        ("Wed 11 Nov", 7),
    ]


def test_the_empty_overview_says_the_next_step(factories, client, login_as):
    org = factories.make_org("Acme")
    login_as(factories.make_user(org, Role.RECRUITER), org)
    page = client.get("/").get_data(as_text=True)
    assert "No emails yet" in page and "import them</a>, then" in page
    factories.make_candidate(org, email="ann@example.com", first_name="Ann")
    for url in ("/", "/messages"):  # (the table's own address too)
        page = client.get(url).get_data(as_text=True)
        assert "Your candidates are in" in page and "import them" not in page, url
    stranger = factories.make_org("Other")  # another org's candidates change nothing here
    login_as(factories.make_user(stranger, Role.RECRUITER), stranger)
    assert "import them</a>, then" in client.get("/").get_data(as_text=True)


def test_a_new_orgs_dashboard_says_nothing_was_sent_yet(factories, client, login_as):
    org = factories.make_org("Fresh")
    login_as(factories.make_user(org, Role.RECRUITER), org)
    page = client.get("/dashboard").get_data(as_text=True)
    assert "Nothing sent yet" in page and 'href="/campaigns/new">Start a campaign' in page


def _emails(html: str) -> list[str]:
    return re.findall(r"<br><span class=\"muted small\">(p\d+@example\.com)</span>", html)


def test_overview_pages_through_every_email(factories, login_as, client):
    org = factories.make_org()
    for n in range(30):
        factories.make_message(org, to_email=f"p{n}@example.com")
    login_as(factories.make_user(org, Role.VIEWER), org)
    first = client.get("/").text
    assert _emails(first) == [f"p{n}@example.com" for n in range(29, 4, -1)]
    assert 'aria-label="Recent emails pages"' in first and "Newer" not in first
    older = re.search(r'href="(/\?before=\d+)" rel="next">Older', first).group(1)
    second = client.get(older).text
    assert _emails(second) == [f"p{n}@example.com" for n in range(4, -1, -1)]
    assert f'hx-get="/messages?{older[2:]}"' in second  # the poll keeps the page
    assert "Older →" not in second
    newer = re.search(r'href="(/\?after=\d+)" rel="prev">← Newer', second).group(1)
    assert _emails(client.get(newer).text) == _emails(first)  # back to the newest 25
    for odd in ("before=abc", "after=99999999999999999999999", "before=0"):
        assert client.get(f"/?{odd}").status_code == 200, odd
