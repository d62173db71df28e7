"""Container image references by the OCI distribution grammar, and their normalised (pullable) form.

Transcribed from distribution/reference (``regexp.go``, ``normalize.go``), the grammar containerd and
Docker parse with; written here because the one Python port on PyPI is little used. A reference a pod
spec carries is valid only if it matches :data:`REFERENCE` (``/quay.io/x:1`` does not: kubelet reports
``InvalidImageName``). :func:`normalize` spells a reference the way containerd stores it after a load
(``busybox:1.37`` -> ``docker.io/library/busybox:1.37``), so preload lists and pod specs compare exactly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN_NAME = rf"{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*"
_HOST = rf"(?:{_DOMAIN_NAME}|\[[a-fA-F0-9:]+\])"
_DOMAIN = rf"{_HOST}(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_NAME = rf"(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
#: ``name[:tag][@digest]``, anchored (distribution's ``ReferenceRegexp``).
REFERENCE = re.compile(rf"^(?P<name>{_NAME})(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?$")
_NAME_MAX = 255
DEFAULT_DOMAIN = "docker.io"


@dataclass(frozen=True)
class ImageRef:
    domain: str
    path: str
    tag: str | None
    digest: str | None

    @property
    def name(self) -> str:
        return f"{self.domain}/{self.path}"

    def __str__(self) -> str:
        return self.name + (f":{self.tag}" if self.tag else "") + (f"@{self.digest}" if self.digest else "")


class InvalidReference(ValueError):
    """Not a reference by the distribution grammar; the message says why."""


def parse(reference: str) -> ImageRef:
    """Parse and normalise ``reference``; :class:`InvalidReference` when the grammar rejects it."""
    match = REFERENCE.match(reference)
    if not match:
        raise InvalidReference(f"{reference!r} is not a valid image reference (OCI distribution grammar)")
    name = match["name"]
    if len(name) > _NAME_MAX:
        raise InvalidReference(f"{reference!r}: the repository name is longer than {_NAME_MAX} characters")
    domain, path = split_domain(name)
    return ImageRef(domain, path, match["tag"], match["digest"])


def split_domain(name: str) -> tuple[str, str]:
    """distribution's ``splitDockerDomain``: the registry host (docker.io when implicit) and the path
    in it (``library/`` added for Docker Hub's official images)."""
    first, _, rest = name.partition("/")
    if not rest or (not any(c in first for c in ".:") and first != "localhost" and first.lower() == first):
        domain, path = DEFAULT_DOMAIN, name
    else:
        domain, path = first, rest
    if domain == "index.docker.io":
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in path:
        path = f"library/{path}"
    return domain, path


def normalize(reference: str) -> str:
    """The fully qualified spelling of ``reference`` (raises :class:`InvalidReference`)."""
    return str(parse(reference))


def is_valid(reference: str) -> bool:
    try:
        parse(reference)
    except InvalidReference:
        return False
    return True
