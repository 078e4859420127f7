"""Roles on every route: a viewer can change nothing in the org; the walk grows with url_map."""

from __future__ import annotations

from app.models import Role
from tests.factories import TENANT_FACTORIES
from tests.test_tenancy import _snake, any_choices

# State-changing routes a viewer may use: they act on the viewer's own session or account.
PERSONAL = {
    "auth.logout",
    "auth.logout_everywhere",
    "auth.change_password",
    "auth.login",
    "auth.signup",
    "auth.forgot",
    "auth.reset",
    "auth.join",
    "auth.resend_verification",
    "orgs.new",
    "orgs.switch",
    "devmail.clear",  # development-only tool, not org data
    "public.respond",  # candidates' pages: a token, not a login, decides
    "public.unsubscribe",
    "public.unsubscribe_preferences",
    "provider_events.mailgun",  # a provider, verified by signature
}


def test_a_viewer_is_refused_every_state_changing_org_route(app, client, factories, login_as):
    org = factories.make_org()
    viewer = factories.make_user(org, Role.VIEWER)
    own = {model: TENANT_FACTORIES[model](org).id for model in TENANT_FACTORIES}
    by_arg = {f"{_snake(model.__name__)}_id": object_id for model, object_id in own.items()}
    login_as(viewer, org)
    from tests.conftest import csrf_token

    token = csrf_token(client)
    refused = []
    for rule in app.url_map.iter_rules():
        if "POST" not in rule.methods or rule.endpoint in PERSONAL:
            continue
        for extra in any_choices(rule):
            ids = {arg: by_arg[arg] for arg in rule.arguments if arg not in extra}
            url = rule.build({**ids, **extra})[1]
            response = client.post(url, data={"csrf_token": token})
            assert response.status_code == 403, f"viewer POST {url} answered {response.status_code}"
            refused.append(rule.endpoint)
    assert {"messages.test_email", "team.invite", "orgs.settings"} <= set(refused)


def test_recruiter_cannot_manage_team_or_settings(app, client, factories, login_as, post):
    org = factories.make_org()
    login_as(factories.make_user(org, Role.RECRUITER), org)
    for url in ("/settings", "/team/invites"):
        assert post(url, {}).status_code == 403
    assert client.get("/settings").status_code == 403
    page = client.get("/team/").get_data(as_text=True)
    assert "Invite a teammate" not in page and "Settings" not in client.get("/").get_data(
        as_text=True
    )
