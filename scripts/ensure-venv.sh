#!/bin/sh
# `python3 -m venv` needs Debian's python3-venv package; install it when we can.
PYTHON="$1"; VENV="$2"
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
  echo "python3 -m venv is unavailable; installing python3-venv with apt-get" >&2
  apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null && exec "$PYTHON" -m venv "$VENV"
fi
echo "python3 -m venv is unavailable. Install it (Debian: sudo apt-get install python3-venv) and re-run." >&2
exit 1
