"""The data an invitation mail is rendered with. Fan-out stores only each recipient's own part
(with a `_campaign` marker); what every recipient shares is frozen once on the campaign, and the
two are joined here when the mail is rendered, so 100,000 rows do not each carry a copy."""

from __future__ import annotations

from app.models import Campaign


def full_context(campaign: Campaign, own: dict) -> dict:
    """Shared campaign data with the recipient's own on top."""
    merged = {k: dict(v) if isinstance(v, dict) else v for k, v in campaign.context.items()}
    merged.update(own)
    return merged
