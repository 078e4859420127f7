"""Requests a careful attacker would try: a login `next` off the site, NUL bytes, ids too large
for the database. Each gets a 4xx or stays on the site, never a 500."""

from __future__ import annotations

import pytest

from tests.factories import PASSWORD


@pytest.mark.parametrize(
    "target",
    [
        "/%09/evil.example",
        "//evil.example",
        "https://evil.example",
        "/\\evil.example",
        "/%0A/evil.example",
    ],
)
def test_login_next_never_leaves_the_site(client, factories, post, target):
    factories.make_user(factories.make_org(), email="li@example.com")
    response = post(f"/login?next={target}", {"email": "li@example.com", "password": PASSWORD})
    assert response.status_code == 302 and response.location == "/"


def test_nul_bytes_and_huge_ids_are_4xx(client, factories, login_as, post):
    org = factories.make_org()
    login_as(factories.make_user(org), org)
    response = post("/settings", {"name": "Acme\x00", "timezone": "UTC"})
    assert response.status_code == 400 and "NUL" in response.get_data(as_text=True)
    assert client.get("/messages/99999999999999999999999").status_code == 404
    assert post("/team/members/99999999999/role", {"role": "viewer"}).status_code == 404
