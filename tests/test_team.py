"""Teammates: invite by email (signed, 7 days, single use), roles enforced, last owner kept."""

from __future__ import annotations

import re

from sqlalchemy import select

from app import clock
from app.extensions import db
from app.models import AuditEntry, Membership, Message, Role, TeamInvite, User
from tests.factories import PASSWORD


def _invite_link(email: str) -> str:
    mail = db.session.scalars(
        select(Message)
        .where(Message.kind == "team_invite", Message.to_email == email)
        .order_by(Message.id.desc())
    ).first()
    from app.mail import links

    return links.resolve(dict(mail.context))["accept_url"].replace("http://127.0.0.1:5000", "")


def _admin(factories, login_as, role=Role.ADMIN):
    org = factories.make_org("Acme")
    admin = factories.make_user(org, role, name="Ada Admin")
    login_as(admin, org)
    return org, admin


def test_invite_and_accept_as_new_user(
    app, ctx, client, factories, login_as, post, sink, run_worker
):
    org, _ = _admin(factories, login_as)
    response = post("/team/invites", {"email": "New.Person@Example.com", "role": "recruiter"})
    assert response.status_code == 302
    run_worker()
    assert sink.messages[0]["to"] == ["new.person@example.com"]
    assert b"Ada Admin invited you to Acme" in sink.messages[0]["data"]

    link = _invite_link("new.person@example.com")
    guest = app.test_client()
    page = guest.get(link).get_data(as_text=True)
    assert "Join Acme on Herald" in page and "Recruiter" in page
    from tests.conftest import csrf_token

    token = csrf_token(guest)
    response = guest.post(
        link, data={"name": "Nia", "password": "new-user-password", "csrf_token": token}
    )
    assert response.status_code == 302
    user = db.session.scalars(select(User).where(User.email == "new.person@example.com")).one()
    membership = db.session.scalars(select(Membership).where(Membership.user_id == user.id)).one()
    assert membership.org_id == org.id and membership.role == Role.RECRUITER
    assert "Acme" in guest.get("/").get_data(as_text=True)

    reused = app.test_client().get(link)
    assert reused.status_code == 410 and "already used" in reused.get_data(as_text=True)
    actions = db.session.scalars(select(AuditEntry.action)).all()
    assert "invite.sent" in actions and "invite.accepted" in actions


def test_existing_user_joins_with_their_password(app, ctx, factories, login_as, post):
    other_org = factories.make_org("Other")
    existing = factories.make_user(other_org, email="sam@example.com")
    org, _ = _admin(factories, login_as)
    post("/team/invites", {"email": "sam@example.com", "role": "viewer"})
    link = _invite_link("sam@example.com")
    guest = app.test_client()
    from tests.conftest import csrf_token

    wrong = guest.post(link, data={"password": "not-my-password", "csrf_token": csrf_token(guest)})
    assert wrong.status_code == 400 and "doesn&#39;t match" in wrong.get_data(as_text=True)
    ok = guest.post(link, data={"password": PASSWORD, "csrf_token": csrf_token(guest)})
    assert ok.status_code == 302
    roles = {
        m.org_id: m.role
        for m in db.session.scalars(select(Membership).where(Membership.user_id == existing.id))
    }
    assert roles == {other_org.id: Role.OWNER, org.id: Role.VIEWER}


def test_bad_and_expired_invite_links(app, ctx, client, factories, login_as, post):
    _admin(factories, login_as)
    post("/team/invites", {"email": "late@example.com", "role": "recruiter"})
    link = _invite_link("late@example.com")
    guest = app.test_client()
    assert guest.get("/join/not-a-real-token").status_code == 404
    assert guest.get(link[:-3] + "abc").status_code == 404  # tampered signature

    frozen = clock.FrozenClock()
    frozen.advance(8 * 24 * 3600)
    clock.set_clock(frozen)
    expired = guest.get(link)
    assert expired.status_code == 410 and "expired" in expired.get_data(as_text=True)


def test_withdrawn_and_superseded_invites_stop_working(app, ctx, factories, login_as, post):
    _admin(factories, login_as)
    post("/team/invites", {"email": "x@example.com", "role": "recruiter"})
    first = _invite_link("x@example.com")
    post("/team/invites", {"email": "x@example.com", "role": "viewer"})
    second = _invite_link("x@example.com")
    guest = app.test_client()
    assert guest.get(first).status_code == 410
    assert guest.get(second).status_code == 200
    invite = db.session.scalars(select(TeamInvite).where(TeamInvite.revoked_at.is_(None))).one()
    post(f"/team/invites/{invite.id}/revoke")
    assert guest.get(second).status_code == 410


def test_invite_bad_input(ctx, factories, login_as, post):
    org, _ = _admin(factories, login_as)
    member = factories.make_user(org, Role.VIEWER, email="member@example.com")
    response = post("/team/invites", {"email": "nope", "role": "recruiter"})
    assert response.status_code == 400 and "must have an @-sign" in response.get_data(as_text=True)
    response = post("/team/invites", {"email": member.email, "role": "recruiter"})
    assert response.status_code == 400 and "already a member" in response.get_data(as_text=True)
    response = post("/team/invites", {"email": "a@example.com", "role": "emperor"})
    assert response.status_code == 400
    response = post("/team/invites", {"email": "a@example.com", "role": "owner"})
    assert "Only an owner can make someone an owner" in response.get_data(as_text=True)
    assert db.session.scalars(select(TeamInvite)).all() == []


def test_roles_are_enforced(client, ctx, factories, login_as, post):
    org = factories.make_org()
    viewer = factories.make_user(org, Role.VIEWER)
    recruiter = factories.make_user(org, Role.RECRUITER)
    login_as(viewer, org)
    assert post("/test-email").status_code == 403
    assert client.get("/team/").status_code == 200
    login_as(recruiter, org)
    assert post("/test-email").status_code == 302
    assert client.get("/settings").status_code == 403
    assert post("/settings", {"name": "Hacked", "timezone": "UTC"}).status_code == 403
    assert post("/team/invites", {"email": "a@example.com", "role": "viewer"}).status_code == 403
    membership = db.session.scalars(select(Membership).where(Membership.user_id == viewer.id)).one()
    assert post(f"/team/members/{membership.id}/role", {"role": "owner"}).status_code == 403
    db.session.expire_all()
    assert org.name != "Hacked" and membership.role == Role.VIEWER


def test_admin_changes_roles_but_the_last_owner_stays(client, ctx, factories, login_as, post):
    org = factories.make_org()
    owner = factories.make_user(org, Role.OWNER)
    viewer = factories.make_user(org, Role.VIEWER)
    login_as(owner, org)
    memberships = {m.user_id: m for m in db.session.scalars(select(Membership))}
    assert (
        post(f"/team/members/{memberships[viewer.id].id}/role", {"role": "admin"}).status_code
        == 302
    )
    response = post(
        f"/team/members/{memberships[owner.id].id}/role", {"role": "viewer"}, follow_redirects=True
    )
    assert "Every organization needs an owner" in response.get_data(as_text=True)
    db.session.expire_all()
    assert memberships[viewer.id].role == Role.ADMIN and memberships[owner.id].role == Role.OWNER
    changed = db.session.scalars(
        select(AuditEntry).where(AuditEntry.action == "member.role_changed")
    )
    assert [(a.detail["old"], a.detail["new"]) for a in changed] == [("viewer", "admin")]


def test_admin_saves_settings(client, ctx, factories, login_as, post):
    org, _ = _admin(factories, login_as)
    response = post(
        "/settings",
        {
            "name": "Acme Talent",
            "timezone": "America/New_York",
            "s-send_rate_per_minute": 600,
            "s-invitation_ttl_days": 7,
            "s-candidate_daily_cap": 2,
            "s-max_retries": 5,
            "s-soft_bounce_threshold": 3,
            "s-soft_bounce_days": 7,
            "s-event_retention_days": 90,
            "r-hours": "48, 1.5",
            "r-business_hours": "y",
        },
    )
    assert response.status_code == 302
    db.session.expire_all()
    assert (org.name, org.timezone) == ("Acme Talent", "America/New_York")
    assert (org.send_rate_per_minute, org.invitation_ttl_days, org.candidate_daily_cap) == (
        600,
        7,
        2,
    )
    assert org.reminder_offsets == [2880, 90] and org.reminders_business_hours
    assert org.event_retention_days == 90
    bad = post("/settings", {"name": "", "timezone": "Mars/Olympus"})
    assert bad.status_code == 400
    assert "“Mars/Olympus” is not a time zone. Type a city, like Paris" in bad.text
    assert '<datalist id="timezone-zones"><option value="Africa/Abidjan">' in bad.text
    db.session.expire_all()
    assert org.name == "Acme Talent"
    vague = post("/settings", {"name": "Acme Talent", "timezone": "America"})
    assert vague.status_code == 400 and "time zones (America/" in vague.text


def test_settings_mark_every_bad_field_at_once(client, ctx, factories, login_as, post):
    org, _ = _admin(factories, login_as)
    response = post(
        "/settings",
        {
            "name": "",
            "timezone": "UTC",
            "s-send_rate_per_minute": "abc",
            "s-invitation_ttl_days": 7,
            "s-candidate_daily_cap": 2,
            "s-max_retries": -3,
            "s-soft_bounce_threshold": 3,
            "s-soft_bounce_days": 7,
            "s-event_retention_days": 90,
            "r-hours": "24, inf, -5",
        },
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert page.count('class="error"') >= 4, page  # name, rate, retries, reminder hours
    assert "Name your organization." in page and "Use hours like" in page
    assert 'value="abc"' in page  # what was typed stays to be corrected
    db.session.expire_all()
    assert org.name == "Acme" and org.max_retries != -3


def test_time_zones_offered_are_places_and_an_old_alias_is_kept(client, ctx, factories, login_as):
    from app.orgs.forms import TIMEZONES, ZONE_TAB

    org, _ = _admin(factories, login_as)
    if ZONE_TAB.exists():  # (Debian's tzdata: the list is one zone per place)
        assert "Europe/Amsterdam" in TIMEZONES and "UTC" in TIMEZONES
        assert not {"America/Atka", "US/Eastern", "Africa/Timbuktu"} & set(TIMEZONES)
    org.timezone = "US/Eastern"  # chosen when every alias was listed
    db.session.commit()
    page = client.get("/settings").get_data(as_text=True)
    assert re.search(r'<input [^>]*id="timezone"[^>]*value="US/Eastern"', page)


def test_recent_changes_read_as_sentences_and_every_action_has_words(
    client, ctx, factories, login_as, post
):
    import re
    from pathlib import Path

    from app.audit import ACTIONS

    org, _ = _admin(factories, login_as)
    post("/team/invites", {"email": "new@example.com", "role": "recruiter"})
    page = client.get("/team/").get_data(as_text=True)
    assert "<strong>Ada Admin</strong> invited a teammate: new@example.com" in page
    post(
        "/jobs/new", {"title": "Data Engineer", "interview_format": "Video", "duration_minutes": 30}
    )
    page = client.get("/team/").get_data(as_text=True)
    assert "<strong>Ada Admin</strong> created a job: Data Engineer" in page  # what it was about
    sources = "\n".join(p.read_text() for p in Path("app").rglob("*.py"))
    used = set(re.findall(r'(?:audit\([^)]*?|action=)"([a-z_]+\.[a-z_]+)"', sources, re.S))
    used |= set(re.findall(r'action = "([a-z_]+\.[a-z_]+)"', sources))
    used |= set(re.findall(r'"([a-z_]+\.[a-z_]+)" if [^\n]+ else "([a-z_]+\.[a-z_]+)"', sources))
    flat = {a for item in used for a in ((item,) if isinstance(item, str) else item)}
    assert "candidates.import" in flat and "campaign.scheduled" in flat  # the scan works
    assert flat - set(ACTIONS) == set(), "an audited action without words on the Team page"


def test_the_last_owner_is_told_why_they_cannot_leave(client, ctx, factories, login_as, post):
    org, owner = _admin(factories, login_as, role=Role.OWNER)
    mine = db.session.scalar(select(Membership).where(Membership.user_id == owner.id))
    response = post(f"/team/members/{mine.id}/remove", follow_redirects=True)
    assert "You can&#39;t leave: you are the last owner." in response.get_data(as_text=True)
    assert db.session.get(Membership, mine.id) is not None


def test_a_removed_teammate_is_told_and_can_log_out(app, client, ctx, factories, login_as, post):
    org, admin = _admin(factories, login_as)
    sam = factories.make_user(org, Role.RECRUITER, name="Sam")
    membership = db.session.scalar(select(Membership).where(Membership.user_id == sam.id))
    post(f"/team/members/{membership.id}/remove")
    login_as(sam, org)  # Sam's next visit
    page = client.get("/", follow_redirects=True).get_data(as_text=True)
    assert "You are not in any organization now" in page
    assert 'action="/logout"' in page and ">Log out</button>" in page


def test_a_new_org_finds_its_zone_from_a_city(client, ctx, factories, login_as, post):
    from app.models import Organization

    _admin(factories, login_as)
    page = client.get("/orgs/new").text
    assert 'list="timezone-zones"' in page and '<option value="Europe/London">' in page
    assert post("/orgs/new", {"name": "Beta", "timezone": "london"}).status_code == 302
    beta = db.session.scalars(select(Organization).where(Organization.name == "Beta")).one()
    assert beta.timezone == "Europe/London"


def test_admin_cannot_touch_owner_invites(client, factories, login_as, post):
    org = factories.make_org()
    owner_invite = factories.make_team_invite(org, role=Role.OWNER)
    login_as(factories.make_user(org, Role.ADMIN), org)
    response = post(f"/team/invites/{owner_invite.id}/revoke", follow_redirects=True)
    assert "Only an owner" in response.get_data(as_text=True)
    db.session.expire_all()
    assert owner_invite.revoked_at is None
