"""Periodic: delete events past each organization's retention (hourly)."""

from __future__ import annotations

from app.jobs import with_app_context


@with_app_context
def purge_events() -> int:
    """How many events were deleted."""
    from app.tracking.retention import purge

    return purge()
