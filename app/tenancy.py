"""The one way routes read tenant rows: scoped to the current organization.

`current_org` is resolved once per request (cached on `g`) from the session's chosen org and the
user's memberships. `get_for_org_or_404` answers 404 for another org's id, never 403 or data. A
safety net adds `org_id = current_org` to every ORM query on a tenant model during a request, so a
forgotten filter fails safe; code that must cross orgs (the org switcher, invite acceptance) says so
with `execution_options(all_orgs=True)`.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import Flask, abort, flash, g, has_request_context, redirect, session, url_for
from flask_login import current_user
from sqlalchemy import BigInteger, event, select
from sqlalchemy.orm import ORMExecuteState, Session, with_loader_criteria
from werkzeug.local import LocalProxy

from app.extensions import db
from app.models import Membership, Organization, Role
from app.models.mixins import TenantMixin

T = TypeVar("T")
ALL_ORGS = {"all_orgs": True}
NO_ORG = 0  # no organization has this id: tenant reads see nothing (fail closed)
INT4_MAX = 2**31 - 1
INT8_MAX = 2**63 - 1


def _membership() -> Membership | None:
    """The current user's membership in the org chosen in the session (or their first org)."""
    if "current_membership" in g:
        return g.current_membership
    membership = None
    if current_user.is_authenticated:
        query = (
            select(Membership)
            .where(Membership.user_id == current_user.id)
            .order_by(Membership.id)
            .execution_options(**ALL_ORGS)
        )
        memberships = db.session.scalars(query).all()
        wanted = session.get("org_id")
        membership = next((m for m in memberships if m.org_id == wanted), None)
        membership = membership or (memberships[0] if memberships else None)
    g.current_membership = membership
    g.tenant_org_id = membership.org_id if membership else NO_ORG
    return membership


def _org() -> Organization | None:
    membership = _membership()
    return membership.org if membership else None


current_membership: Membership | None = LocalProxy(_membership)  # type: ignore[assignment]
current_org: Organization = LocalProxy(_org)  # type: ignore[assignment]


def current_role() -> Role | None:
    """The current user's role in the current org."""
    membership = _membership()
    return membership.role_enum if membership else None


def user_memberships() -> list[Membership]:
    """Every org the current user belongs to (for the org switcher)."""
    query = (
        select(Membership)
        .where(Membership.user_id == current_user.id)
        .order_by(Membership.id)
        .execution_options(**ALL_ORGS)
    )
    return list(db.session.scalars(query))


def scoped(model: type[T]) -> Any:
    """A SELECT of `model` limited to the current org."""
    return select(model).where(model.org_id == current_org.id)  # type: ignore[attr-defined]


def get_for_org_or_404(model: type[T], object_id: int) -> T:
    """Fetch one tenant row of the current org by id, or answer 404."""
    id_type = model.__table__.c.id.type  # type: ignore[attr-defined]
    if object_id > INT8_MAX or (object_id > INT4_MAX and not isinstance(id_type, BigInteger)):
        abort(404)  # no such row, and PostgreSQL would refuse the number itself
    obj = db.session.scalar(scoped(model).where(model.id == object_id))  # type: ignore[attr-defined]
    if obj is None:
        abort(404)
    return obj


def role_required(role: Role) -> Callable:
    """Route decorator: logged in, member of an org, and at least `role` there; else 403."""

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if not current_user.is_authenticated:
                return redirect(url_for("auth.login"))
            membership = _membership()
            if membership is None:
                flash("You are not a member of any organization yet. Create one to start.")
                return redirect(url_for("orgs.new"))
            if not membership.role_enum.at_least(role):
                abort(403, description=f"This needs the {role.label} role or higher.")
            return view(*args, **kwargs)

        return wrapped

    return decorator


@event.listens_for(Session, "do_orm_execute")
def _scope_tenant_queries(state: ORMExecuteState) -> None:
    """Safety net: during a request, every ORM read of a tenant model is limited to current_org
    (resolved before the view runs); with no current org such reads see nothing."""
    if not (state.is_select and has_request_context()):
        return
    if state.execution_options.get("all_orgs"):
        return
    org_id = g.get("tenant_org_id", NO_ORG)
    state.statement = state.statement.options(
        with_loader_criteria(TenantMixin, lambda cls: cls.org_id == org_id, include_aliases=True)
    )


def init_app(app: Flask) -> None:
    """Resolve the tenant before every view, so the safety net is on from the first query."""

    @app.before_request
    def _resolve_tenant() -> None:
        _membership()
