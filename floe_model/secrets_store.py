"""Per-stack generated secrets for a checkout that has not set its own.

``pulumi up -s integration`` must work with no manual step, yet passwords must never be committed or
fixed in code. When a stack secret (``pulumi config set --secret floe-testinfra:NAME``) is not set, a
random value is generated once per checkout and stack into the ignored state folder (mode 0600); the
program wraps it as a Pulumi secret, so it is encrypted in the state and redacted in output.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from floe_model.paths import STATE_DIR


def generated_secret(stack: str, name: str, *, root: Path = STATE_DIR) -> str:
    path = root / "secrets" / f"{stack}.json"
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    values: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    if name not in values:
        values[name] = secrets.token_urlsafe(24)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(values, handle)
    return values[name]
