"""A campaign that offers slots, candidates with known invitation links, and the candidate's forms
as a browser would fill them (the signed form state read from the page)."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select

from app import clock
from app.crypto import encrypt
from app.extensions import db
from app.models import Booking, Campaign, InterviewSlot, Invitation, Organization, Role
from tests import factories


@dataclass
class SlotCampaign:
    """An org (Europe/Berlin) with a recruiter and a slots campaign."""

    org: Organization
    campaign: Campaign
    recruiter_email: str
    tokens: dict[int, str] = field(default_factory=dict)  # invitation id -> its token

    def slot(self, starts: datetime | timedelta = timedelta(days=3), **kw) -> InterviewSlot:
        """A slot at a UTC time, or that far from now."""
        if isinstance(starts, datetime):
            kw["starts_in"] = starts - clock.now().replace(second=0, microsecond=0)
        else:
            kw["starts_in"] = starts
        return factories.make_interview_slot(self.org, self.campaign, **kw)

    def invite(self, email: str | None = None, zone: str | None = None) -> tuple[Invitation, str]:
        """A pending invitation of the campaign with a link we know."""
        candidate = factories.make_candidate(self.org, email=email)
        candidate.timezone = zone
        token = secrets.token_urlsafe(32)
        invitation = Invitation(
            org_id=self.org.id,
            campaign_id=self.campaign.id,
            candidate_id=candidate.id,
            job_id=self.campaign.job_id,
            token_hash=hashlib.sha256(token.encode()).digest(),
            token_encrypted=encrypt(token),
            expires_at=clock.now() + timedelta(days=14),
        )
        db.session.add(invitation)
        db.session.commit()
        self.tokens[invitation.id] = token
        return invitation, token


def slot_campaign(name: str = "Acme") -> SlotCampaign:
    org = factories.make_org(name)
    org.timezone = "Europe/Berlin"
    recruiter = factories.make_user(org, Role.RECRUITER)
    campaign = factories.make_campaign(org)
    campaign.scheduling, campaign.created_by_id = "slots", recruiter.id
    campaign.status = "sent"
    db.session.commit()
    return SlotCampaign(org, campaign, recruiter.email)


def form_state(client, url: str) -> dict[str, str]:
    """The hidden fields of the page's booking forms (CSRF token, signed state, zone)."""
    html = client.get(url).get_data(as_text=True)
    found = {}
    for name in ("csrf_token", "state", "time_zone"):
        match = re.search(rf'name="{name}" value="([^"]*)"', html)
        assert match, f"no {name} on {url}"
        found[name] = match.group(1)
    return found


def submit(client, token: str, action: str, data: dict | None = None, page: str = ""):
    """POST one of the page's forms the way the page would (fresh state unless given)."""
    fields = form_state(client, f"/i/{token}{page}")
    fields.update(data or {})
    return client.post(f"/i/{token}/{action}", data=fields)


def counts(slot_id: int) -> tuple[int, int]:
    """(the slot's counter, its active bookings) as PostgreSQL has them."""
    db.session.expire_all()
    booked = db.session.scalar(select(InterviewSlot.booked).where(InterviewSlot.id == slot_id))
    active = db.session.scalar(
        select(func.count())
        .select_from(Booking)
        .where(Booking.slot_id == slot_id, Booking.status == "active")
    )
    return booked, active
