"""Send jobs: one job sends a batch, never one message per job."""

from __future__ import annotations

from collections import Counter

from flask import current_app

from app.jobs import with_app_context
from app.mail import sending


@with_app_context
def send_messages(message_ids: list[int]) -> dict[str, int]:
    """Claim these messages (those still queued and due) and send them."""
    claimed, token = sending.claim(len(message_ids), ids=message_ids)
    return sending.send_claimed(claimed, token)


@with_app_context
def dispatch_due(max_batches: int = 50) -> dict[str, int]:
    """Claim due messages in batches and send them until none are left (or max_batches)."""
    from app.jobs.sweep import dispatcher_alive

    totals: Counter[str] = Counter()
    for _ in range(max_batches):
        dispatcher_alive()
        claimed, token = sending.claim(current_app.config["SEND_BATCH_SIZE"])
        if not claimed:
            break
        totals.update(sending.send_claimed(claimed, token))
    _finish_campaigns()
    return dict(totals)


def _finish_campaigns() -> None:
    """A campaign whose last message was just handled shows as sent now, not at the next
    periodic check (which remains the safety net)."""
    from app.campaigns.services import finish_done

    finish_done()
