"""Team pages: members and roles, pending invites, audit log."""

from __future__ import annotations

from flask import flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user

from app.auth.services import AccountError
from app.extensions import db
from app.models import ROLE_HELP, AuditEntry, Membership, Role, TeamInvite
from app.team import bp, services
from app.team.forms import ROLE_CHOICES, InviteForm, RoleForm
from app.tenancy import current_org, current_role, get_for_org_or_404, role_required, scoped


def _page(invite_form: InviteForm | None = None, status: int = 200) -> ResponseReturnValue:
    members = db.session.scalars(
        scoped(Membership).join(Membership.user).order_by(Membership.id)
    ).all()
    invites = db.session.scalars(
        scoped(TeamInvite)
        .where(TeamInvite.accepted_at.is_(None), TeamInvite.revoked_at.is_(None))
        .order_by(TeamInvite.id.desc())
    ).all()
    audit = db.session.scalars(scoped(AuditEntry).order_by(AuditEntry.id.desc()).limit(20)).all()
    return (
        render_template(
            "team/index.html",
            members=members,
            invites=invites,
            audit=audit,
            form=invite_form or InviteForm(),
            role_choices=ROLE_CHOICES,
            can_manage=current_role().at_least(Role.ADMIN),
            role_help=ROLE_HELP,
        ),
        status,
    )


@bp.get("/")
@role_required(Role.VIEWER)
def index() -> ResponseReturnValue:
    """Everyone in the org can see who else is in it."""
    return _page()


@bp.post("/invites")
@role_required(Role.ADMIN)
def invite() -> ResponseReturnValue:
    """Invite a teammate by email."""
    form = InviteForm()
    if form.validate_on_submit():
        try:
            _, replaced = services.invite(
                current_org, current_user, current_role(), form.email.data, Role(form.role.data)
            )
        except (services.TeamError, AccountError) as exc:
            db.session.rollback()
            form.email.errors.append(str(exc))
        else:
            db.session.commit()
            if replaced:
                message = "Invitation sent again with a new link; the earlier link no longer works."
            else:
                message = "Invitation sent. The link works for 7 days, once."
            flash(message, "success")
            return redirect(url_for("team.index"))
    return _page(form, 400)


@bp.post("/invites/<int:team_invite_id>/resend")
@role_required(Role.ADMIN)
def resend_invite(team_invite_id: int) -> ResponseReturnValue:
    """Send a pending invite again."""
    team_invite = get_for_org_or_404(TeamInvite, team_invite_id)
    try:
        services.resend(current_org, current_user, current_role(), team_invite)
    except services.TeamError as exc:
        db.session.rollback()
        flash(str(exc), "error")
    else:
        db.session.commit()
        flash("Invitation sent again.", "success")
    return redirect(url_for("team.index"))


@bp.post("/invites/<int:team_invite_id>/revoke")
@role_required(Role.ADMIN)
def revoke_invite(team_invite_id: int) -> ResponseReturnValue:
    """Withdraw a pending invite."""
    try:
        services.revoke(
            current_org,
            current_user,
            current_role(),
            get_for_org_or_404(TeamInvite, team_invite_id),
        )
    except services.TeamError as exc:
        db.session.rollback()
        flash(str(exc), "error")
    else:
        db.session.commit()
        flash("Invitation withdrawn; its link no longer works.", "info")
    return redirect(url_for("team.index"))


@bp.post("/members/<int:membership_id>/role")
@role_required(Role.ADMIN)
def change_role(membership_id: int) -> ResponseReturnValue:
    """Change a teammate's role."""
    membership = get_for_org_or_404(Membership, membership_id)
    form = RoleForm()
    if not form.validate_on_submit():
        flash("Choose a valid role.", "error")
        return redirect(url_for("team.index")), 303
    try:
        services.change_role(current_user, current_role(), membership, Role(form.role.data))
    except services.TeamError as exc:
        db.session.rollback()
        flash(str(exc), "error")
    else:
        db.session.commit()
        flash(f"{membership.user.name} is now {Role(form.role.data).label}.", "success")
    return redirect(url_for("team.index"))


@bp.post("/members/<int:membership_id>/remove")
@role_required(Role.ADMIN)
def remove_member(membership_id: int) -> ResponseReturnValue:
    """Remove a teammate from the organization."""
    membership = get_for_org_or_404(Membership, membership_id)
    leaving_self = membership.user_id == current_user.id
    try:
        services.remove(current_user, current_role(), membership)
    except services.TeamError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return redirect(url_for("team.index"))
    db.session.commit()
    flash("Teammate removed.", "info")
    return redirect(url_for("messages.home") if leaving_self else url_for("team.index"))
