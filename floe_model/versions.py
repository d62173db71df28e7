"""The pinned versions of everything (``versions.yaml``), typed and validated.

``python -m floe_model.versions get kind.version`` prints one pin for the Makefile and CI, so no
version is ever written twice.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from floe_model.paths import VERSIONS_FILE, display
from floe_model.yamlfile import load_mapping
from testing.errors import ConfigError, ConfigProblem

_SEMVER = re.compile(r"^v\d+\.\d+\.\d+$")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


@dataclass(frozen=True)
class ImagePin:
    repository: str
    tag: str
    digest: str | None = None

    @property
    def tag_with_digest(self) -> str:
        """The tag as charts that build ``repository:tag`` need it: with the digest appended."""
        return f"{self.tag}@{self.digest}" if self.digest else self.tag

    @property
    def ref(self) -> str:
        return f"{self.repository}:{self.tag_with_digest}"

    @property
    def registry(self) -> str:
        """The registry host, for charts that take it apart from the repository (docker.io when implicit)."""
        from floe_model.image_ref import split_domain

        return split_domain(self.repository)[0]

    @property
    def path(self) -> str:
        """The repository within :attr:`registry` (``library/postgres`` for Docker Hub's ``postgres``)."""
        from floe_model.image_ref import split_domain

        return split_domain(self.repository)[1]


@dataclass(frozen=True)
class ChartPin:
    repo: str
    name: str
    version: str


@dataclass(frozen=True)
class Versions:
    kind: str
    node_image: str
    kubernetes: str
    tools: dict[str, str]
    charts: dict[str, ChartPin]
    images: dict[str, ImagePin]
    raw: dict[str, Any]

    @property
    def kubernetes_schema_version(self) -> str:
        """The version string kubernetes-validate knows (``1.34.0``)."""
        return self.kubernetes.removeprefix("v")

    def get(self, dotted: str) -> str:
        node: Any = self.raw
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node:
                raise KeyError(f"{display(VERSIONS_FILE)} has no key {dotted!r}")
            node = node[part]
        if isinstance(node, dict):
            raise KeyError(f"{dotted!r} is a section, not a value; name one of: {', '.join(node)}")
        return str(node)


def parse_versions(data: dict[str, Any], source: str) -> Versions:
    problems: list[ConfigProblem] = []

    def need(section: str, key: str) -> str:
        value = (data.get(section) or {}).get(key)
        if not isinstance(value, str) or not value:
            problems.append(ConfigProblem(source, f"{section}.{key}", "required string is missing"))
            return ""
        return value

    kind = need("kind", "version")
    node_image = need("kind", "node_image")
    kubernetes = need("kubernetes", "version")
    for field, value in (("kind.version", kind), ("kubernetes.version", kubernetes)):
        if value and not _SEMVER.match(value):
            problems.append(ConfigProblem(source, field, f"{value!r} is not of the form vMAJOR.MINOR.PATCH"))
    if node_image:
        name, _, digest = node_image.partition("@")
        if not _DIGEST.match(digest):
            problems.append(ConfigProblem(source, "kind.node_image", "must be pinned by digest (IMAGE:TAG@sha256:...)"))
        elif kubernetes and not name.endswith(f":{kubernetes}"):
            problems.append(
                ConfigProblem(
                    source, "kind.node_image", f"tag of {name!r} differs from kubernetes.version {kubernetes}"
                )
            )
    tools = {str(k): str(v) for k, v in (data.get("tools") or {}).items()}
    charts: dict[str, ChartPin] = {}
    for key, chart in (data.get("charts") or {}).items():
        if not isinstance(chart, dict) or not all(isinstance(chart.get(f), str) for f in ("repo", "name", "version")):
            problems.append(ConfigProblem(source, f"charts.{key}", "needs string fields repo, name and version"))
            continue
        charts[key] = ChartPin(chart["repo"], chart["name"], chart["version"])
    images: dict[str, ImagePin] = {}
    for key, image in (data.get("images") or {}).items():
        if not isinstance(image, dict) or not isinstance(image.get("repository"), str) or "tag" not in image:
            problems.append(ConfigProblem(source, f"images.{key}", "needs fields repository and tag"))
            continue
        image_digest = image.get("digest")
        if image_digest is not None and not _DIGEST.match(str(image_digest)):
            problems.append(ConfigProblem(source, f"images.{key}.digest", "must look like sha256:<64 hex>"))
        images[key] = ImagePin(image["repository"], str(image["tag"]), str(image_digest) if image_digest else None)
    if problems:
        raise ConfigError(problems)
    return Versions(kind, node_image, kubernetes, tools, charts, images, data)


@cache
def load_versions(path: Path = VERSIONS_FILE) -> Versions:
    return parse_versions(load_mapping(path), display(path))


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or args[0] != "get":
        print("usage: python -m floe_model.versions get KEY   (e.g. kind.version)", file=sys.stderr)
        return 2
    try:
        print(load_versions().get(args[1]))
    except (KeyError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    from floe_test._private.entry import module_main

    raise SystemExit(module_main(main, "python -m floe_model.versions"))
