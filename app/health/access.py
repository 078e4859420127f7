"""Who may see the operator figures of /healthz and /metrics: a scraper with METRICS_TOKEN, or,
without one, a client on this machine. The client address is the one werkzeug's ProxyFix
resolved through TRUSTED_PROXY_COUNT, so a forged X-Forwarded-For counts for nothing."""

from __future__ import annotations

import hmac
import ipaddress

from flask import current_app, request


def _loopback(address: str | None) -> bool:
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return (mapped or ip).is_loopback


def operator() -> bool:
    """True when this request may see queue depths, workers, breakers and the metrics."""
    token = current_app.config["METRICS_TOKEN"]
    if token:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        return hmac.compare_digest(given.encode(), token.encode())
    if current_app.config["HERALD_ENV"] == "production":
        return False  # a local proxy that is not declared would make every request look local
    return _loopback(request.remote_addr)
