"""Redaction of secret values from everything the collector writes.

Two layers, both applied to every collected text:

* **Known values**: every value read from a Secret of the collected namespaces, every literal value
  of a container env var whose name looks secret (``*PASSWORD*``, ``*TOKEN*``, ``*SECRET*``,
  ``*KEY*``, ``*CREDENTIAL*``), every credential field of the kubeconfig, and the process's own
  ``FLOE_*PASSWORD*``-style variables. Each is replaced, as is its base64 form.
* **Patterns**: things that look like credentials even when their value is unknown: ``password=...``
  and ``"token": "..."`` assignments, ``Authorization: Bearer ...``, JWTs, PEM private keys.

Values shorter than :data:`MIN_SECRET_LENGTH` are not replaced as bare strings (a secret "1" would
otherwise blank every digit); they still disappear where a pattern matches their assignment.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["MASK", "MIN_SECRET_LENGTH", "Redactor", "secret_like_name"]

MASK = "***REDACTED***"
MIN_SECRET_LENGTH = 4
_SECRET_NAME = re.compile(r"PASSWORD|PASSWD|TOKEN|SECRET|CREDENTIAL|API_?KEY|PRIVATE_?KEY|ACCESS_?KEY", re.I)
_KUBECONFIG_FIELDS = ("client-key-data", "client-certificate-data", "token", "password", "certificate-authority-data")
# A value runs until whitespace, a quote or an XML/HTML delimiter, so the surrounding markup survives.
_VALUE = r"[^\s\"'<>&,;]+"
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.S), MASK),
    (re.compile(r"(?i)(authorization:\s*(?:bearer|basic)\s+)" + _VALUE), r"\1" + MASK),
    (re.compile(r"(?i)(\bbearer\s+)[A-Za-z0-9._~+/=-]{8,}"), r"\1" + MASK),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"), MASK),
    # key=value / key: value / "key": "value" where the key names a credential; a value that opens a
    # JSON/YAML object or list is structure, not a credential (a test named "..._secrets_..." in perf.json).
    (
        re.compile(
            r"(?i)([\"']?[A-Za-z0-9_.-]*(?:password|passwd|token|secret|credential|api[_-]?key|access[_-]?key)"
            r"[A-Za-z0-9_.-]*[\"']?\s*[=:]\s*[\"']?)(?!\*\*\*)(?![{\[])" + _VALUE
        ),
        r"\1" + MASK,
    ),
    # postgresql://user:password@host
    (re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://[^\s:/@\"'<>]+:)[^\s@/\"'<>]+(@)"), r"\1" + MASK + r"\2"),
)


def secret_like_name(name: str) -> bool:
    """True for environment variable / key names that hold credentials."""
    return bool(_SECRET_NAME.search(name))


class Redactor:
    """Replaces known secret values and credential-looking patterns."""

    def __init__(self, values: Iterable[str] = ()) -> None:
        self._values: set[str] = set()
        self._regex: re.Pattern[str] | None = None
        self.add(values)

    @property
    def known(self) -> int:
        return len(self._values)

    def add(self, values: Iterable[str | bytes | None]) -> None:
        for value in values:
            if value is None:
                continue
            text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
            for candidate in {text, text.strip()}:
                if len(candidate) < MIN_SECRET_LENGTH:
                    continue
                self._values.add(candidate)
                self._values.add(base64.b64encode(candidate.encode()).decode())
                # Multi-line secrets (keys, kubeconfigs) also leak line by line.
                self._values.update(
                    line.strip() for line in candidate.splitlines() if len(line.strip()) >= 2 * MIN_SECRET_LENGTH
                )
        self._regex = None

    def add_secret_data(self, data: Mapping[str, str] | None, *, encoded: bool = True) -> None:
        """The values of a Secret's ``data`` (base64, as the API returns) or ``string_data``."""
        for raw in (data or {}).values():
            if raw is None:
                continue
            if encoded:
                try:
                    decoded = base64.b64decode(raw, validate=False)
                except ValueError:
                    decoded = raw.encode()
                self.add([decoded, raw])
            else:
                self.add([raw])

    def add_kubeconfig(self, kubeconfig: Mapping[str, Any] | None) -> None:
        """Credential fields of a kubeconfig (users' keys, certificates and tokens; CA data)."""

        def walk(node: Any) -> None:
            if isinstance(node, Mapping):
                for key, value in node.items():
                    if key in _KUBECONFIG_FIELDS and isinstance(value, str):
                        self.add([value])
                        with contextlib.suppress(ValueError):
                            self.add([base64.b64decode(value)])
                    else:
                        walk(value)
            elif isinstance(node, list):
                for item in node:
                    walk(item)

        walk(kubeconfig)

    def add_environ(self, environ: Mapping[str, str] | None = None) -> None:
        """Secret-looking variables of this process (``FLOE_*PASSWORD*``, tokens)."""
        env = os.environ if environ is None else environ
        self.add(value for name, value in env.items() if secret_like_name(name))

    def add_pod_env(self, pods: Iterable[Any]) -> None:
        """Literal values of secret-looking env vars in pod specs (``valueFrom`` ones live in Secrets)."""
        for pod in pods:
            spec = getattr(pod, "spec", None)
            containers = [*(getattr(spec, "containers", None) or []), *(getattr(spec, "init_containers", None) or [])]
            for container in containers:
                for env in container.env or []:
                    if env.value and secret_like_name(env.name or ""):
                        self.add([env.value])

    def _compiled(self) -> re.Pattern[str] | None:
        if self._regex is None and self._values:
            ordered = sorted(self._values, key=len, reverse=True)
            self._regex = re.compile("|".join(re.escape(v) for v in ordered))
        return self._regex

    def text(self, text: str) -> str:
        regex = self._compiled()
        if regex is not None:
            text = regex.sub(MASK, text)
        for pattern, replacement in _PATTERNS:
            text = pattern.sub(replacement, text)
        return text

    def bytes(self, data: bytes) -> bytes | None:
        """Redacted UTF-8 text, or the bytes unchanged when binary and clean; ``None``: binary with a secret."""
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            regex = self._compiled()
            if regex is not None and regex.search(data.decode("latin-1")):
                return None
            return data
        return self.text(text).encode("utf-8")

    def leaks(self, text: str) -> list[str]:
        """Known values still present in ``text`` (for checks; the values themselves are not returned)."""
        regex = self._compiled()
        return [f"{len(m.group(0))}-char secret at offset {m.start()}" for m in regex.finditer(text)] if regex else []
