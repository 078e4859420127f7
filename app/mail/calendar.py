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


CALENDAR_FIELDS = ("uid", "sequence", "summary", "location", "description", "cancel")


def calendar_spec(
    *,
    uid: str,
    sequence: int,
    starts_at: datetime,
    ends_at: datetime,
    summary: str,
    location: str,
    description: str,
    attendee_name: str,
    attendee_email: str,
    cancel: bool = False,
) -> dict:
    """What a message's context keeps (`_calendar`) to build its .ics when it is sent: plain
    JSON, so a retry builds the same calendar entry; the organizer is the sender then."""
    return {
        "uid": uid,
        "sequence": sequence,
        "starts_at": starts_at.isoformat(),
        "ends_at": ends_at.isoformat(),
        "summary": summary,
        "location": location,
        "description": description,
        "attendee_name": attendee_name,
        "attendee_email": attendee_email,
        "cancel": cancel,
    }


def event_from_context(spec: dict, organizer_name: str, organizer_email: str) -> bytes:
    """The .ics a `calendar_spec` describes, organised by the message's sender."""
    return invitation_ics(
        **{key: spec[key] for key in CALENDAR_FIELDS},
        starts_at=datetime.fromisoformat(spec["starts_at"]),
        ends_at=datetime.fromisoformat(spec["ends_at"]),
        organizer_name=organizer_name,
        organizer_email=organizer_email,
        attendee_name=spec["attendee_name"],
        attendee_email=spec["attendee_email"],
    )
