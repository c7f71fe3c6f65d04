"""Shared pytest set-up. Fixture modules live beside the tests and are loaded here."""

from __future__ import annotations

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
SHARED = os.environ.get("OSQ_DBWATCH_SHARED", os.path.join(os.path.dirname(REPO), "shared"))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

# Fixture modules are added here as they land (each owned by one area).
pytest_plugins: list[str] = [
    name
    for name in ("core_standin", "dbservers")
    if os.path.exists(os.path.join(HERE, name + ".py"))
]
