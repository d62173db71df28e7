"""pytest plugin for floe-testinfra (minimal placeholder; filled in below)."""

from __future__ import annotations
