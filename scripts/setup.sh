#!/usr/bin/env bash
# Create ./.venv if it is missing and install the project with every extra (tests, baselines, competitors, Ray).
# Idempotent: a second run only checks that everything is installed.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[dev,baselines,competitors,distributed]"
