"""Models, one module per aggregate. Importing this package registers them all."""

from app.models.audit import AuditEntry
from app.models.campaign import (
    DECLINE_REASONS,
    Campaign,
    CampaignStatus,
    Invitation,
    InvitationStatus,
    Reminder,
    Suppression,
)
from app.models.candidate import (
    Candidate,
    CandidateImport,
    CandidateImportAddress,
    CandidateImportChunk,
    CandidateImportProblem,
    Job,
)
from app.models.message import (
    ACCOUNT_MAIL_KINDS,
    TEMPLATE_TEST,
    Event,
    Lane,
    Message,
    MessageStatus,
    lane_for,
)
from app.models.org import ROLE_HELP, Membership, Organization, Role, TeamInvite
from app.models.provider import ProviderAccount, ProviderKind
from app.models.rollup import COUNTERS, Rollup, RollupMark
from app.models.scheduling import (
    Booking,
    BookingStatus,
    InterviewSlot,
    SlotInterviewer,
    SlotStatus,
)
from app.models.template import (
    BULK_KINDS,
    EmailTemplate,
    TemplateKind,
    TemplateVersion,
    default_template,
)
from app.models.user import User, UserSession
from app.models.webhook_token import WebhookToken

__all__ = [
    "ACCOUNT_MAIL_KINDS",
    "Lane",
    "lane_for",
    "AuditEntry",
    "Booking",
    "BookingStatus",
    "InterviewSlot",
    "SlotInterviewer",
    "SlotStatus",
    "Campaign",
    "DECLINE_REASONS",
    "CampaignStatus",
    "Candidate",
    "CandidateImport",
    "CandidateImportAddress",
    "CandidateImportChunk",
    "CandidateImportProblem",
    "Invitation",
    "InvitationStatus",
    "Job",
    "Reminder",
    "Suppression",
    "BULK_KINDS",
    "EmailTemplate",
    "TemplateKind",
    "TemplateVersion",
    "default_template",
    "Event",
    "Membership",
    "Message",
    "MessageStatus",
    "TEMPLATE_TEST",
    "Organization",
    "ProviderAccount",
    "COUNTERS",
    "Rollup",
    "RollupMark",
    "ProviderKind",
    "ROLE_HELP",
    "Role",
    "TeamInvite",
    "User",
    "UserSession",
    "WebhookToken",
]
