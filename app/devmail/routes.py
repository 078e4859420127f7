"""Dev mailbox pages: list, one mail (HTML in a sandboxed iframe, text, headers), clear."""

from __future__ import annotations

import re

from flask import (
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user, login_required

from app.devmail import bp, store
from app.devmail.services import Reader, visible
from app.devmail.store import StoredMail
from app.tenancy import current_org

MAIL_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data: http: https:; "
    "frame-ancestors 'self'"
)


@bp.before_request
def only_when_enabled() -> None:
    """The mailbox exists only where DEVMAIL_ENABLED is on (development); production gets 404."""
    if not current_app.config["DEVMAIL_ENABLED"]:
        abort(404)


def _mine(mails: list[StoredMail]) -> list[StoredMail]:
    """The mails the logged-in person may read (services.visible)."""
    org_id = current_org.id if current_org else None
    return visible(mails, Reader(current_user.id, current_user.email, org_id))


def _mail_or_404(mail_key: str) -> StoredMail:
    """One mail the logged-in person may read; another org's (or person's) mail is a 404."""
    mail = store.get_mail(current_app.config["DEVMAIL_DIR"], mail_key)
    if mail is None or not _mine([mail]):
        abort(404)
    return mail


@bp.get("/")
@login_required
def index() -> str:
    """The mails the sink received that are this org's or this person's, newest first, a page
    at a time (Newer/Older)."""
    page = store.list_mails(
        current_app.config["DEVMAIL_DIR"],
        before=request.args.get("before", "")[:60] or None,
        after=request.args.get("after", "")[:60] or None,
        keep=_mine,
    )
    return render_template("devmail/index.html", mails=page.mails, page=page)


@bp.get("/<mail_key>")
@login_required
def show(mail_key: str) -> str:
    """One mail with tabs for the rendered HTML, the text part and the headers."""
    mail = _mail_or_404(mail_key)
    return render_template("devmail/show.html", mail=mail, safe_name=safe_name)


_DOCTYPE = re.compile(r"\s*<!doctype[^>]*>", re.IGNORECASE)


@bp.get("/<mail_key>/html")
@login_required
def html(mail_key: str) -> Response:
    """The mail's HTML part alone, for the sandboxed iframe; scripts cannot run in it."""
    mail = _mail_or_404(mail_key)
    body = mail.html or "<p>(This mail has no HTML part.)</p>"
    # links open outside the frame; after the mail's doctype, or it would render in quirks mode
    doctype = _DOCTYPE.match(body)
    at = doctype.end() if doctype else 0
    body = body[:at] + '<base target="_blank">' + body[at:]
    response = Response(body, mimetype="text/html")
    response.headers["Content-Security-Policy"] = MAIL_CSP
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    return response


@bp.get("/<mail_key>/attachments/<name>")
@login_required
def attachment(mail_key: str, name: str) -> Response:
    """One attachment of a mail by its (cleaned) file name, as a download (never inline)."""
    mail = _mail_or_404(mail_key)
    for item in mail.attachments:
        if safe_name(item.filename) == name:
            return Response(
                item.data,
                mimetype="application/octet-stream",
                headers={"Content-Disposition": f'attachment; filename="{name}"'},
            )
    abort(404)


def safe_name(name: str) -> str:
    """A file name for the download header: letters, digits, dot, dash and underscore."""
    cleaned = "".join(c if c.isalnum() or c in "._-" else "_" for c in name)[:100]
    return cleaned.strip(".") or "attachment"


@bp.post("/clear")
@login_required
def clear() -> Response:
    """Delete the mails this person sees (other orgs' mail stays theirs)."""
    directory = current_app.config["DEVMAIL_DIR"]
    count = store.delete(
        directory, [m.key for m in store.list_mails(directory, size=10**9, keep=_mine).mails]
    )
    flash(f"Deleted {count} mail{'s' if count != 1 else ''} from the dev mailbox.", "success")
    return redirect(url_for("devmail.index"))
