"""Extension objects, created unbound; create_app() binds them. Nothing here imports the app."""

from __future__ import annotations

from flask import Flask, current_app
from flask_htmx import HTMX
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from redis import Redis
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    """Declarative base for every model."""


class RedisClient:
    """One Redis connection pool per app, from REDIS_URL."""

    def init_app(self, app: Flask) -> None:
        app.extensions["redis"] = Redis.from_url(app.config["REDIS_URL"])

    @property
    def client(self) -> Redis:
        return current_app.extensions["redis"]


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()
htmx = HTMX()
redis = RedisClient()
