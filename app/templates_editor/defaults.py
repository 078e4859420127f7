# ruff: noqa: E501 - template text reads best unwrapped
"""The templates every new organization starts with, one per kind. They use the base layout's
classes (button, muted, details) so the org's branding applies without editing them."""

from __future__ import annotations

from app.models import TemplateKind

_DETAILS = """<table class="details" role="presentation">
  <tr><td class="label">Position</td><td>{{ job.title }}</td></tr>
  <tr><td class="label">Format</td><td>{{ job.interview_format }}, {{ job.duration_minutes }} minutes</td></tr>
  {% if interview.starts_at is defined and interview.starts_at %}<tr><td class="label">When</td><td>{{ interview.starts_at|datetime }}</td></tr>{% endif %}
  <tr><td class="label">Where</td><td>{{ interview.location|link }}</td></tr>
</table>"""

DEFAULTS: dict[TemplateKind, tuple[str, str, str]] = {
    TemplateKind.INVITATION: (
        "Interview invitation",
        "Interview invitation: {{ job.title }} at {{ org.name }}",
        """<h1>Hi {{ candidate.first_name }},</h1>
<p>Thank you for applying for <strong>{{ job.title }}</strong>. We'd like to invite you to an interview.</p>
"""
        + _DETAILS
        + """
<p><a class="button" href="{{ invitation.url }}">Accept or decline</a></p>
<p class="muted">Please reply by {{ invitation.expires_at|datetime }}. This link is personal to you.</p>
<p>Best regards,<br>{{ recruiter.name }}<br>{{ org.name }}</p>""",
    ),
    TemplateKind.REMINDER: (
        "Interview reminder",
        "Reminder: your interview for {{ job.title }}",
        """{% if reminder.kind == 'pick_a_time' %}<h1>Hi {{ candidate.first_name }},</h1>
<p>We haven't heard from you yet about the interview for <strong>{{ job.title }}</strong>. Please answer, or pick a time, by {{ invitation.expires_at|datetime }}.</p>
{% else %}<h1>See you soon, {{ candidate.first_name }}</h1>
<p>This is a friendly reminder of your interview for <strong>{{ job.title }}</strong>.</p>{% endif %}
"""
        + _DETAILS
        + """
<p><a class="button" href="{{ invitation.url }}">{% if reminder.kind == 'pick_a_time' %}Answer or pick a time{% else %}Reschedule or cancel{% endif %}</a></p>
<p>Best regards,<br>{{ recruiter.name }}</p>""",
    ),
    TemplateKind.RESCHEDULED: (
        "Interview rescheduled",
        "New time for your {{ job.title }} interview",
        """<h1>Your interview has moved</h1>
<p>Hi {{ candidate.first_name }}, the time of your interview for <strong>{{ job.title }}</strong> has changed. Here are the new details:</p>
"""
        + _DETAILS
        + """
<p><a class="button" href="{{ invitation.url }}">Confirm the new time</a></p>
<p>Sorry for the change, and thank you for your flexibility.<br>{{ recruiter.name }}</p>""",
    ),
    TemplateKind.CANCELLED: (
        "Interview cancelled",
        "Your {{ job.title }} interview is cancelled",
        """<h1>Your interview is cancelled</h1>
<p>Hi {{ candidate.first_name }}, we're sorry to let you know that your interview for <strong>{{ job.title }}</strong> has been cancelled.</p>
<p>{{ recruiter.name }} will be in touch if there is a new date. You can reply to this email with any questions.</p>
<p>Best regards,<br>{{ org.name }}</p>""",
    ),
    TemplateKind.FOLLOW_UP: (
        "Follow-up after the interview",
        "Thank you for interviewing with {{ org.name }}",
        """<h1>Thank you, {{ candidate.first_name }}</h1>
<p>Thank you for taking the time to interview for <strong>{{ job.title }}</strong>. We enjoyed meeting you.</p>
<p>We'll get back to you with next steps soon.</p>
<p>Best regards,<br>{{ recruiter.name }}<br>{{ org.name }}</p>""",
    ),
    TemplateKind.CUSTOM: (
        "Custom message",
        "A message from {{ org.name }}",
        """<h1>Hello {{ candidate.first_name }},</h1>
<p>Write your message here.</p>
<p><a class="button" href="{{ invitation.url }}">Open your invitation</a></p>
<p>Best regards,<br>{{ recruiter.name }}</p>""",
    ),
}
