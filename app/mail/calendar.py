"""Calendar invitations (.ics, icalendar): METHOD:REQUEST with a stable UID per invitation, a
higher SEQUENCE for every change, METHOD:CANCEL when the interview is cancelled."""

from __future__ import annotations

from datetime import datetime

from icalendar import Calendar, Event, vCalAddress, vText

from app import clock


def invitation_ics(
    *,
    uid: str,
    sequence: int,
    starts_at: datetime,
    ends_at: datetime,
    summary: str,
    location: str,
    description: str,
    organizer_name: str,
    organizer_email: str,
    attendee_name: str,
    attendee_email: str,
    cancel: bool = False,
) -> bytes:
    """One VEVENT for one candidate."""
    cal = Calendar()
    cal.add("prodid", "-//Herald//Interview invitations//EN")
    cal.add("version", "2.0")
    cal.add("method", "CANCEL" if cancel else "REQUEST")
    event = Event()
    event.add("uid", uid)
    event.add("sequence", sequence)
    event.add("dtstamp", clock.now())
    event.add("dtstart", starts_at)
    event.add("dtend", ends_at)
    event.add("summary", summary)
    if location:
        event.add("location", location)
    event.add("description", description)
    event.add("status", "CANCELLED" if cancel else "CONFIRMED")
    organizer = vCalAddress(f"mailto:{organizer_email}")
    organizer.params["cn"] = vText(organizer_name)
    event["organizer"] = organizer
    attendee = vCalAddress(f"mailto:{attendee_email}")
    attendee.params["cn"] = vText(attendee_name)
    attendee.params["role"] = vText("REQ-PARTICIPANT")
    # the candidate answers on their invitation page: a calendar's own Yes/No would go to an
    # address nobody reads, so the calendar is told that no reply is expected
    attendee.params["rsvp"] = vText("FALSE")
    event.add("attendee", attendee, encode=0)
    cal.add_component(event)
    return cal.to_ical()
