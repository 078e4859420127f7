"""A campaign's sending health: a campaign whose bounce or complaint rate crosses the line
pauses itself to protect the org's sender reputation; an admin resumes it. Provider events
(bounces, complaints) ask after each one."""

from __future__ import annotations

from flask import current_app
from sqlalchemy import func, select

from app.extensions import db
from app.models import Campaign, CampaignStatus, Message
from app.tenancy import ALL_ORGS


def check_health(campaign_id: int | None) -> bool:
    """Pause a campaign whose bounce or complaint rate crossed the line (after a minimum
    sample): True when this call paused it. An admin resumes it."""
    if campaign_id is None:
        return False
    cfg = current_app.config
    row = db.session.execute(
        select(
            func.count().filter(Message.sent_at.is_not(None)),
            func.count().filter(Message.bounce_type == "hard"),
            func.count().filter(Message.complained_at.is_not(None)),
        )
        .where(Message.campaign_id == campaign_id)
        .execution_options(**ALL_ORGS)
    ).one()
    sent, bounced, complained = row
    if sent < cfg["HEALTH_MIN_SAMPLE"]:
        return False
    reason = None
    if bounced / sent > cfg["HEALTH_MAX_BOUNCE_RATE"]:
        reason = f"Bounce rate {bounced / sent:.1%} is over {cfg['HEALTH_MAX_BOUNCE_RATE']:.0%}"
    elif complained / sent > cfg["HEALTH_MAX_COMPLAINT_RATE"]:
        reason = (
            f"Complaint rate {complained / sent:.2%} is over {cfg['HEALTH_MAX_COMPLAINT_RATE']:.1%}"
        )
    if reason is None:
        return False
    campaign = db.session.scalar(
        select(Campaign)
        .where(Campaign.id == campaign_id)
        .with_for_update()
        .execution_options(**ALL_ORGS)
    )
    if campaign.status not in (CampaignStatus.SENDING, CampaignStatus.SCHEDULED):
        return False
    campaign.status = CampaignStatus.PAUSED
    campaign.paused_reason = (
        f"{reason} after {sent} emails, so Herald paused this campaign to protect your "
        "sender reputation. Check the list, then an admin can resume it."
    )
    return True
