"""Invitations, below the features that send them: tokens, closing links (revoke, supersede),
the data each invitation mail is rendered with, and reminders. Imports no feature package, so
campaigns, candidates, dead letters and mail's link resolution can all reach it."""
