# ruff: noqa: E501 - template text reads best unwrapped
"""Candidate notices Herald writes itself, in the org's branding and from its sender: the
confirmation after accepting an interview time (with the calendar entry) and the note that takes
it off the candidate's calendar (declined, or replaced by a newer invitation). Transactional:
no unsubscribe link, no per-candidate cap."""

from __future__ import annotations

_DETAILS = """<table class="details" role="presentation">
  <tr><td class="label">Position</td><td>{{ job.title }}</td></tr>
  {% if interview.starts_at %}<tr><td class="label">When</td><td>{{ interview.starts_at|datetime }}</td></tr>{% endif %}
  {% if interview.location %}<tr><td class="label">Where</td><td>{{ interview.location|link }}</td></tr>{% endif %}
</table>"""

NOTICES: dict[str, tuple[str, str]] = {
    "interview_confirmed": (
        "Confirmed: your {{ job.title }} interview",
        """<h1>See you there, {{ candidate.first_name }}</h1>
<p>Thank you for accepting the interview for <strong>{{ job.title }}</strong>. The calendar entry is attached.</p>
"""
        + _DETAILS
        + """
<p><a class="button" href="{{ invitation.url }}">Change your answer</a></p>
<p>Best regards,<br>{{ recruiter.name }}<br>{{ org.name }}</p>""",
    ),
    "interview_removed": (
        "Removed from your calendar: {{ job.title }} interview",
        """<h1>Hi {{ candidate.first_name }},</h1>
{% if why == 'replaced' %}<p>You have a newer invitation for <strong>{{ job.title }}</strong>, so the earlier interview below is taken off your calendar. Please answer the newer invitation.</p>
{% else %}<p>You declined the interview for <strong>{{ job.title }}</strong>, so it is taken off your calendar.{% if invitation.url is defined %} Changed your mind? <a href="{{ invitation.url }}">Open your invitation</a> before the reply-by time.{% endif %}</p>{% endif %}
"""
        + _DETAILS
        + """
<p>Best regards,<br>{{ recruiter.name }}<br>{{ org.name }}</p>""",
    ),
}

KINDS = {"interview_confirmed": "booking_confirmation", "interview_removed": "booking_cancelled"}
