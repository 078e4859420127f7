"""The suite flushes one Redis DB after every test: the one it was told to use, never another."""

from __future__ import annotations

import os

from redis.connection import parse_url

from app.extensions import redis
from tests.conftest import GIVEN_REDIS_URL


def test_the_app_under_test_uses_the_redis_db_the_suite_was_given(ctx):
    wanted = os.environ.get("HERALD_TEST_REDIS_DB") or parse_url(GIVEN_REDIS_URL).get("db", 0)
    assert redis.client.client_info()["db"] == int(wanted)  # as the server sees the connection
