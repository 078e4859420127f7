"""Operator endpoints: /healthz and /metrics."""

from flask import Blueprint

bp = Blueprint("health", __name__)

from app.health import metrics, routes  # noqa: E402,F401
