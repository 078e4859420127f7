#!/bin/sh
# Inside devservices: migrate, seed the demo login, then run every process until Ctrl-C.
set -e
export FLASK_APP=wsgi
.venv/bin/flask db upgrade
.venv/bin/flask herald seed
exec .venv/bin/honcho -f Procfile.dev start
