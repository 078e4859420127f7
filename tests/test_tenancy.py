"""Tenant isolation, route by route: every route that takes an id answers 404 for another org's id.

The walk reads app.url_map, so new routes are covered as they are added. A route argument named
`<model>_id` must name a tenant model that has a factory in tests/factories.py.
"""

from __future__ import annotations

import re
from itertools import product

from sqlalchemy import select
from werkzeug.routing import IntegerConverter
from werkzeug.routing.converters import AnyConverter

from app import sessions
from app.extensions import db
from app.models import Membership, Message, Role, TeamInvite
from app.models.mixins import TenantMixin
from tests.conftest import csrf_token
from tests.factories import TENANT_FACTORIES


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def tenant_models() -> list[type]:
    return [m.class_ for m in db.Model.registry.mappers if issubclass(m.class_, TenantMixin)]


def test_every_tenant_model_has_a_factory(ctx):
    missing = [m.__name__ for m in tenant_models() if m not in TENANT_FACTORIES]
    assert missing == [], f"add a maker to tests/factories.py TENANT_FACTORIES for {missing}"


def any_choices(rule: object) -> list[dict[str, str]]:
    """Every combination of the rule's any(...) arguments (one empty dict when none)."""
    choices: list[dict[str, str]] = [{}]
    for arg, converter in rule._converters.items():
        if isinstance(converter, AnyConverter):
            choices = [dict(c, **{arg: item}) for c in choices for item in sorted(converter.items)]
    return choices


def test_every_route_with_an_id_answers_404_for_another_orgs_row(app, client, factories, login_as):
    org_a, org_b = factories.make_org("A"), factories.make_org("B")
    owner_a = factories.make_user(org_a, Role.OWNER)
    theirs = {model: TENANT_FACTORIES[model](org_b).id for model in tenant_models()}
    ours = {model: TENANT_FACTORIES[model](org_a).id for model in tenant_models()}
    by_arg = {f"{_snake(model.__name__)}_id": model for model in tenant_models()}
    login_as(owner_a, org_a)
    token = csrf_token(client)

    walked = []
    for rule in app.url_map.iter_rules():
        int_args = [a for a, c in rule._converters.items() if isinstance(c, IntegerConverter)]
        for arg in int_args:
            assert arg in by_arg, f"{rule.rule}: name int argument {arg!r} after a tenant model"
        if not int_args:
            continue
        choices = any_choices(rule)
        assert set(rule.arguments) == set(int_args) | set(choices[0]), (
            f"{rule.rule}: mixed arguments, extend the walk"
        )
        for method, extra in product(sorted(rule.methods - {"HEAD", "OPTIONS"}), choices):
            url = rule.build({**{a: theirs[by_arg[a]] for a in int_args}, **extra})[1]
            response = client.open(url, method=method, data={"csrf_token": token})
            assert response.status_code == 404, f"{method} {url} answered {response.status_code}"
            assert b"Org B" not in response.data
            if method == "GET":
                own = rule.build({**{a: ours[by_arg[a]] for a in int_args}, **extra})[1]
                assert client.get(own).status_code == 200, f"GET {own} should work for its own org"
            walked.append(f"{method} {url}")
    assert len(walked) >= 5, walked

    db.session.expire_all()
    invite_b = db.session.get(TeamInvite, theirs[TeamInvite])
    assert invite_b.revoked_at is None and invite_b.nonce.isdigit()  # not revoked nor resent
    member_b = db.session.get(Membership, theirs[Membership])
    assert member_b is not None and member_b.role == Role.RECRUITER


def test_safety_net_scopes_unfiltered_queries_to_the_current_org(app, factories):
    org_a, org_b = factories.make_org("A"), factories.make_org("B")
    user = factories.make_user(org_a)
    factories.make_message(org_a)
    factories.make_message(org_b)
    from flask_login import login_user

    from app import sessions
    from app.models import Message
    from app.tenancy import current_org

    with app.test_request_context("/"):
        sessions.begin(user)
        login_user(user)
        assert current_org.id == org_a.id
        rows = db.session.scalars(select(Message)).all()  # no org filter written here
        assert {m.org_id for m in rows} == {org_a.id}


def test_switching_to_an_org_you_do_not_belong_to_is_404(client, factories, login_as, post):
    org_a, org_b = factories.make_org("A"), factories.make_org("B")
    user = factories.make_user(org_a)
    login_as(user, org_a)
    assert post("/orgs/switch", {"org_id": org_b.id}).status_code == 404
    assert b"Org B" not in client.get("/").data


def test_a_user_in_two_orgs_switches_between_them(client, factories, login_as, post):
    org_a, org_b = factories.make_org("Alpha"), factories.make_org("Beta")
    user = factories.make_user(org_a, Role.OWNER)
    db.session.add(Membership(org_id=org_b.id, user_id=user.id, role=Role.VIEWER))
    db.session.commit()
    factories.make_message(org_b, to_email="beta-candidate@example.com")
    login_as(user, org_a)
    page = client.get("/").get_data(as_text=True)
    assert "Switch to Beta" in page and "beta-candidate@example.com" not in page
    assert post("/orgs/switch", {"org_id": org_b.id}).status_code == 302
    page = client.get("/").get_data(as_text=True)
    assert "beta-candidate@example.com" in page and "Switch to Alpha" in page
    assert "Send test email" not in page  # a viewer in Beta


def test_tenant_filter_is_on_before_anything_reads_current_org(app, factories):
    org_a, org_b = factories.make_org("A"), factories.make_org("B")
    user = factories.make_user(org_a)
    factories.make_message(org_b)
    from flask_login import login_user

    with app.test_request_context("/"):
        sessions.begin(user)
        login_user(user)
        app.preprocess_request()  # before_request hooks, as for every real request
        assert db.session.scalars(select(Message)).all() == []
    with app.test_request_context("/"):  # anonymous: tenant rows are invisible
        app.preprocess_request()
        assert db.session.scalars(select(Message)).all() == []
