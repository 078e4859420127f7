"""The app exactly as gunicorn serves it, plus one bare endpoint for bench/tracking.py's baseline.

`GET /bench/bare` touches neither PostgreSQL nor Redis, but goes through the same WSGI app,
routing, before-request hooks (NUL guard, tenant resolution) and after-request headers as the
tracking endpoints, so pixel_rps / bare_rps is the cost of the tracking work itself.
Served with `gunicorn bench._tracking_app:app` from the project root.
"""

from __future__ import annotations

from app import create_app

app = create_app()


@app.get("/bench/bare")
def bare() -> str:
    return "ok"
