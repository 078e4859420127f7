"""The variables an email template may use, with what each means and a sample value.

The editor shows this catalogue (click to insert); validation checks templates against it; the
preview renders with the sample values, overridden by the user's own sample data.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any


@dataclass(frozen=True)
class Variable:
    """One documented template variable."""

    path: str
    description: str
    sample: Any
    group: str


def _soon(days: int, hour: int) -> str:
    moment = datetime.now(UTC).replace(hour=hour, minute=0, second=0, microsecond=0)
    return (moment + timedelta(days=days)).isoformat()


CATALOGUE: list[Variable] = [
    Variable("candidate.first_name", "First name", "Ada", "Candidate"),
    Variable("candidate.last_name", "Last name", "Lovelace", "Candidate"),
    Variable("candidate.full_name", "First and last name", "Ada Lovelace", "Candidate"),
    Variable("candidate.email", "Email address", "ada@example.com", "Candidate"),
    Variable("candidate.phone", "Phone number", "+44 20 7946 0000", "Candidate"),
    Variable(
        "candidate.custom.portfolio",
        "A custom field (any name after custom.)",
        "https://ada.example.com",
        "Candidate",
    ),
    Variable("job.title", "Position title", "Senior Data Engineer", "Job"),
    Variable("job.department", "Department", "Engineering", "Job"),
    Variable("job.location", "Location", "London (hybrid)", "Job"),
    Variable("job.interview_format", "Interview format", "Video call", "Job"),
    Variable("job.duration_minutes", "Interview length in minutes", 45, "Job"),
    Variable("job.hiring_manager", "Hiring manager", "Grace Hopper", "Job"),
    Variable(
        "interview.starts_at", "Start; use |datetime, |date or |time", _soon(7, 13), "Interview"
    ),
    Variable("interview.ends_at", "End; use |time", _soon(7, 14), "Interview"),
    Variable(
        "interview.location",
        "Where, or the video link",
        "https://meet.example.com/abc",
        "Interview",
    ),
    Variable(
        "invitation.url",
        "The candidate's own link to accept or decline",
        "https://herald.example.com/i/sample-token",
        "Invitation",
    ),
    Variable(
        "invitation.expires_at",
        "When the link stops working; use |date",
        _soon(14, 17),
        "Invitation",
    ),
    Variable(
        "reminder.kind",
        "In a reminder: interview (accepted or booked) or pick_a_time (not answered yet)",
        "interview",
        "Invitation",
    ),
    Variable("recruiter.name", "The recruiter sending it", "Rita Recruiter", "Sender"),
    Variable("recruiter.email", "The recruiter's email", "rita@example.com", "Sender"),
    Variable("org.name", "Your organization's name", "Acme", "Organization"),
    Variable(
        "org.address", "Your postal address (from branding)", "1 Example Street", "Organization"
    ),
    Variable(
        "unsubscribe_url",
        "One-click unsubscribe link (required in bulk mail)",
        "https://herald.example.com/u/sample",
        "Links",
    ),
]

ROOTS = {v.path.split(".")[0] for v in CATALOGUE}
SAMPLE_EDITABLE = {v.path for v in CATALOGUE if not v.path.endswith("url")} | {"recipient_timezone"}
KNOWN_PATHS = {v.path for v in CATALOGUE}


def is_sample_editable(path: str) -> bool:
    """Plain documented values (and custom fields) only: never links or private keys."""
    custom = path.startswith("candidate.custom.") and path.count(".") == 2
    return path in SAMPLE_EDITABLE or (custom and path.replace(".", "").replace("_", "").isalnum())


FREE_PREFIXES = ("candidate.custom.", "job.")  # custom fields (candidates' and jobs'): any name


class CustomFields(dict):
    """Custom fields in sample data: any field the template names shows as [name]."""

    def __missing__(self, key: str) -> str:
        return f"[{key}]"


def sample_context(overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Nested sample values for every catalogue variable, with the user's overrides applied."""
    context: dict[str, Any] = {}
    values = {v.path: v.sample for v in CATALOGUE} | (overrides or {})
    for path, value in values.items():
        node = context
        parts = path.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    context["candidate"]["custom"] = CustomFields(context["candidate"].get("custom", {}))
    context["job"] = CustomFields(context["job"])  # a job's own custom fields show as [name]
    return context


def is_known(path: str) -> bool:
    """Whether a dotted variable path is in the catalogue (or under a free prefix)."""
    if path in KNOWN_PATHS or any(path.startswith(p) for p in FREE_PREFIXES):
        return True
    return any(known.startswith(path + ".") for known in KNOWN_PATHS)
