"""Providers and DKIM pages (admins). Secrets are write-only: the page never shows them back."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user

from app.audit import audit
from app.extensions import db
from app.mail.delivery import DEFAULT_KEY, breaker
from app.models import ProviderAccount, ProviderKind, Role
from app.settings import bp
from app.settings import services as svc
from app.tenancy import current_org, get_for_org_or_404, role_required

FIELDS = ("label", "host", "port", "security", "username", "domain", "region", "secret")


def _page(status: int = 200, **extra: object) -> ResponseReturnValue:
    accounts = svc.ordered(current_org)
    return render_template(
        "settings/providers.html",
        accounts=accounts,
        states=svc.breaker_states(accounts),
        default_state=breaker().state(DEFAULT_KEY),
        kinds=list(ProviderKind),
        values=extra.pop("values", {}),
        **extra,
    ), status


@bp.get("/settings/providers")
@role_required(Role.ADMIN)
def providers() -> ResponseReturnValue:
    return _page()


def _values() -> dict:
    return {name: request.form.get(name, "") for name in FIELDS}


@bp.post("/settings/providers")
@role_required(Role.ADMIN)
def add_provider() -> ResponseReturnValue:
    values, kind = _values(), request.form.get("kind", "")
    try:
        account = svc.save_account(current_org, current_user, kind, values)
    except svc.ProviderError as exc:
        db.session.rollback()
        values.pop("secret")
        return _page(400, error=str(exc), field=exc.field, values=values, open_kind=kind)
    db.session.commit()
    flash(f"{account.label} added. Test its connection before relying on it.", "success")
    return redirect(url_for(".providers") + f"#provider-{account.id}")


@bp.route("/settings/providers/<int:provider_account_id>", methods=["GET", "POST"])
@role_required(Role.ADMIN)
def edit_provider(provider_account_id: int) -> ResponseReturnValue:
    account = get_for_org_or_404(ProviderAccount, provider_account_id)
    error = field = None
    if request.method == "POST":
        try:
            svc.save_account(current_org, current_user, account.kind, _values(), account)
            db.session.commit()
            flash(f"{account.label} saved.", "success")
            return redirect(url_for(".providers"))
        except svc.ProviderError as exc:
            db.session.rollback()
            error, field = str(exc), exc.field
    return render_template(
        "settings/edit.html", account=account, error=error, field=field
    ), 400 if error else 200


@bp.post(
    "/settings/providers/<int:provider_account_id>/<any(up,down,enable,disable,remove):action>"
)
@role_required(Role.ADMIN)
def change_provider(provider_account_id: int, action: str) -> ResponseReturnValue:
    account = get_for_org_or_404(ProviderAccount, provider_account_id)
    if action in ("up", "down"):
        svc.move(current_org, current_user, account, -1 if action == "up" else 1)
    elif action in ("enable", "disable"):
        svc.set_enabled(current_org, current_user, account, action == "enable")
    else:
        svc.remove(current_org, current_user, account)
        flash(f"{account.label} removed.", "info")
    db.session.commit()
    return redirect(url_for(".providers"))


@bp.post("/settings/providers/<int:provider_account_id>/test")
@role_required(Role.ADMIN)
def test_provider(provider_account_id: int) -> ResponseReturnValue:
    """Test the connection; HTMX swaps in the result line and the badge, a plain POST reloads
    the page."""
    account = get_for_org_or_404(ProviderAccount, provider_account_id)
    svc.test_connection(account)
    db.session.commit()
    if request.headers.get("HX-Request"):  # the result line, and the badge beside the name
        state = breaker().state(account.key)
        return render_template("settings/_check.html", account=account) + render_template(
            "settings/_badge.html", account=account, state=state, oob=True
        )
    return redirect(url_for(".providers"))


@bp.post("/settings/providers/<int:provider_account_id>/reset")
@role_required(Role.ADMIN)
def reset_breaker(provider_account_id: int) -> ResponseReturnValue:
    account = get_for_org_or_404(ProviderAccount, provider_account_id)
    breaker().reset(account.key)
    audit(current_org.id, current_user, "provider.breaker_reset", provider=account.label)
    db.session.commit()
    flash(f"{account.label} will be tried again.", "info")
    return redirect(url_for(".providers"))


@bp.get("/settings/dkim")
@role_required(Role.ADMIN)
def dkim_page(status: int = 200, error: str | None = None) -> ResponseReturnValue:
    return render_template(
        "settings/dkim.html", record=svc.dkim_record(current_org), error=error
    ), status


@bp.post("/settings/dkim/<any(generate,import,check,enable,disable):action>")
@role_required(Role.ADMIN)
def dkim_action(action: str) -> ResponseReturnValue:
    org = current_org._get_current_object()
    try:
        if action in ("generate", "import"):
            pem = request.form.get("private_key", "") if action == "import" else None
            if action == "import" and not (pem or "").strip():
                raise svc.ProviderError("Paste a PEM private key, or generate one instead.")
            svc.set_dkim_key(org, current_user, request.form.get("selector", ""), pem)
            flash("DKIM key saved. Publish the DNS record below, then check it.", "success")
        elif action == "check":
            result = svc.check_dkim(org)
            flash(result.message, "success" if result.ok else "error")
        else:
            svc.set_dkim_enabled(org, current_user, action == "enable")
            flash("DKIM signing is on." if action == "enable" else "DKIM signing is off.", "info")
    except svc.ProviderError as exc:
        db.session.rollback()
        return dkim_page(400, str(exc))
    db.session.commit()
    return redirect(url_for(".dkim_page"))


@bp.post("/settings/providers/webhook-key")
@role_required(Role.ADMIN)
def webhook_key() -> ResponseReturnValue:
    """Save (or, with action=remove, clear) the Mailgun webhook signing key; stored encrypted."""
    key = request.form.get("signing_key", "").strip()
    if request.form.get("action") == "remove":
        key = ""
        if current_org.mailgun_signing_key_encrypted is None:
            return redirect(url_for(".providers") + "#webhooks")  # nothing to remove
    elif not key:
        return _page(400, webhook_error="Paste the HTTP webhook signing key from Mailgun first.")
    svc.set_webhook_key(current_org._get_current_object(), current_user, key)
    db.session.commit()
    flash("Webhook signing key saved." if key else "Webhook signing key removed.", "success")
    return redirect(url_for(".providers") + "#webhooks")
