"""Server-side sessions. The signed cookie carries only a random token; its row in PostgreSQL
says whether it is live, so logging out, a password change and "log out everywhere" end sessions
for good: a copied cookie dies with its row, and Redis holds nothing a flush could bring back.

flask-login's user loader is `user_for` (one primary-key lookup joined to the user per request).
Nothing here commits: the route that logs in or out owns the commit.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import delete, select, update

from app import clock
from app.extensions import db
from app.models import User, UserSession

MAX_TOKEN_LENGTH = 64  # token_urlsafe(32) is 43 characters; anything longer is not ours


def _key(token: str) -> str:
    """The row id for a token: its SHA-256, so the table alone cannot be turned into cookies."""
    return hashlib.sha256(token.encode()).hexdigest()


def begin(user: User, user_agent: str = "") -> None:
    """Open a session for `user` (a row in the caller's transaction) and attach its token, which
    `user.get_id()` hands to flask-login's `login_user`."""
    token = secrets.token_urlsafe(32)
    now = clock.now()
    db.session.add(
        UserSession(
            id=_key(token),
            user_id=user.id,
            created_at=now,
            last_seen_at=now,
            user_agent=user_agent[:200],
        )
    )
    user.session_id = token


def user_for(token: str) -> User | None:
    """The user of a live session, else None (revoked, idle too long, or an unknown token)."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    cfg = current_app.config
    now = clock.now()
    found = db.session.execute(
        select(UserSession.last_seen_at, User)
        .join(User, User.id == UserSession.user_id)
        .where(
            UserSession.id == _key(token),
            UserSession.revoked_at.is_(None),
            UserSession.last_seen_at > now - timedelta(seconds=cfg["SESSION_IDLE_SECONDS"]),
        )
    ).first()
    if found is None:
        return None
    last_seen, user = found
    touch_after = timedelta(seconds=cfg["SESSION_TOUCH_SECONDS"])
    if now - last_seen >= touch_after:
        _touch(_key(token), now, now - touch_after)
    user.session_id = token
    return user


def _touch(key: str, now: datetime, older_than: datetime) -> None:
    """Record that the session was seen, at most once per SESSION_TOUCH_SECONDS, in a short
    transaction of its own: the request's unit of work is neither committed nor delayed."""
    with db.engine.begin() as conn:
        conn.execute(
            update(UserSession)
            .where(UserSession.id == key, UserSession.last_seen_at < older_than)
            .values(last_seen_at=now)
        )


def end(token: str | None) -> None:
    """End one session (log out)."""
    if token:
        db.session.execute(
            update(UserSession)
            .where(UserSession.id == _key(token), UserSession.revoked_at.is_(None))
            .values(revoked_at=clock.now())
        )


def end_all(user: User, keep: str | None = None) -> None:
    """End every live session of `user`, except the one whose token is `keep` (the browser that
    changed its password stays logged in)."""
    query = update(UserSession).where(
        UserSession.user_id == user.id, UserSession.revoked_at.is_(None)
    )
    if keep:
        query = query.where(UserSession.id != _key(keep))
    db.session.execute(query.values(revoked_at=clock.now()))


def purge(older_than: timedelta) -> int:
    """Delete sessions that ended (revoked or idle past SESSION_IDLE_SECONDS) more than
    `older_than` ago: the table keeps live sessions and recent history, not every login ever."""
    cutoff = clock.now() - older_than
    idle = timedelta(seconds=current_app.config["SESSION_IDLE_SECONDS"])
    result = db.session.execute(
        delete(UserSession).where(
            (UserSession.revoked_at < cutoff) | (UserSession.last_seen_at < cutoff - idle)
        )
    )
    return result.rowcount or 0
