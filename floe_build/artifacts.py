"""Files an offline service image needs that are made outside ``docker build``: Go binaries built on the host
through the module proxy, a collector built by the OpenTelemetry collector builder, a file from a Go module,
a jar from Maven Central.

Each artifact has a ``key`` that names its content without producing it (a hash of its inputs), so an image
whose content tag already exists is found without building anything; ``produce`` builds or downloads it
into the cache (itself cached by that key) and returns the path.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import yaml

from floe_build._run import AirgapError, cache_root, capture, log, run_logged
from floe_build.node_parts import Builder, GoBinary, module_dir
from floe_model.files import sha256_file


def _hash(data: object) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


def service_builder() -> Builder:
    """The Go builder of the service images: its own cache next to the node image's."""
    return Builder(cache=cache_root() / "service-images")


class Artifact(Protocol):
    @property
    def key(self) -> str:
        """Names the content (a hash of the inputs); computing it builds nothing."""
        ...

    def produce(self) -> Path:
        """The file, built or fetched into the cache when missing."""
        ...


@dataclass(frozen=True)
class GoArtifact:
    """A binary from Go modules (:class:`floe_build.node_parts.GoBinary`) built on the host."""

    spec: GoBinary
    builder: Builder = field(default_factory=service_builder, compare=False)

    @property
    def key(self) -> str:
        return self.builder.binary_path(self.spec).parent.name

    def produce(self) -> Path:
        return self.builder.go_binary(self.spec)


@dataclass(frozen=True)
class ModuleFile:
    """One file of a Go module at a version (a default config, a sampling strategy) as upstream ships it."""

    module: str
    version: str
    path: str

    @property
    def key(self) -> str:
        return _hash({"module": self.module, "version": self.version, "path": self.path})

    def produce(self) -> Path:
        root = module_dir("go", self.module, self.version, cache_root() / "service-images" / "_dl")
        found = root / self.path
        if not found.is_file():
            raise AirgapError(f"{self.module}@{self.version} has no file {self.path}")
        return found


@dataclass(frozen=True)
class CollectorArtifact:
    """An OpenTelemetry Collector distribution built by the collector builder (``ocb``) from a manifest."""

    manifest: Path
    builder_version: str
    builder: Builder = field(default_factory=service_builder, compare=False)

    @property
    def ocb(self) -> GoBinary:
        return GoBinary("ocb", "go.opentelemetry.io/collector/cmd/builder", self.builder_version)

    def _manifest(self) -> dict[str, object]:
        data = yaml.safe_load(self.manifest.read_text())
        if not isinstance(data, dict) or not isinstance(data.get("dist"), dict) or not data["dist"].get("name"):
            raise AirgapError(f"{self.manifest}: a collector builder manifest needs dist.name")
        return data

    @property
    def name(self) -> str:
        dist = self._manifest()["dist"]
        assert isinstance(dist, dict)
        return str(dist["name"])

    @property
    def key(self) -> str:
        return _hash({"manifest": self.manifest.read_text(), "ocb": self.builder.binary_path(self.ocb).parent.name})

    def produce(self) -> Path:
        out = self.builder.cache / "bin" / f"{self.name}-{self.key}" / self.name
        if out.is_file():
            log(f"{self.name}: cached binary {out}")
            return out
        ocb = self.builder.go_binary(self.ocb)
        work = self.builder.cache / "_build" / self.name
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        manifest = self._manifest()
        dist = manifest["dist"]
        assert isinstance(dist, dict)
        dist["output_path"] = str(work / "dist")
        (work / "manifest.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
        log(
            f"{self.name}: building with the collector builder {self.builder_version} (≤ 60m0s); log: "
            f"{self.builder.logfile}"
        )
        env = {k: v for k, v in os.environ.items() if k != "GOFLAGS"}
        env["GOFLAGS"] = "-buildvcs=false"
        seconds = run_logged(
            [str(ocb), "--config", str(work / "manifest.yaml")],
            logfile=self.builder.logfile,
            what=f"collector builder {self.manifest.name}",
            cwd=work,
            env=env,
            timeout=3600,
            nice=True,
        )
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(work / "dist" / self.name), out.with_name(out.name + ".partial"))
        out.with_name(out.name + ".partial").rename(out)
        shutil.rmtree(work, ignore_errors=True)
        self.builder.timings[f"build {self.name}"] = seconds
        log(f"{self.name}: built in {seconds:.0f}s")
        return out


@dataclass(frozen=True)
class MavenArtifact:
    """A file from Maven Central, checked against the sha1 Central publishes beside it and the sha256 pinned here."""

    group: str
    artifact: str
    version: str
    sha256: str
    classifier: str = ""
    base_url: str = "https://repo1.maven.org/maven2"

    @property
    def filename(self) -> str:
        return f"{self.artifact}-{self.version}{'-' + self.classifier if self.classifier else ''}.jar"

    @property
    def url(self) -> str:
        return f"{self.base_url}/{self.group.replace('.', '/')}/{self.artifact}/{self.version}/{self.filename}"

    @property
    def key(self) -> str:
        return self.sha256[:16]

    def produce(self) -> Path:
        out = cache_root() / "service-images" / "maven" / self.sha256[:16] / self.filename
        if out.is_file():
            log(f"{self.filename}: cached {out}")
            return out
        out.parent.mkdir(parents=True, exist_ok=True)
        partial = out.with_name(out.name + ".partial")
        log(f"{self.filename}: downloading {self.url}")
        try:
            with urllib.request.urlopen(self.url, timeout=60) as response, partial.open("wb") as handle:
                shutil.copyfileobj(response, handle, 1 << 20)
            with urllib.request.urlopen(self.url + ".sha1", timeout=60) as response:
                published_sha1 = response.read().decode().split()[0].strip()
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            partial.unlink(missing_ok=True)
            raise AirgapError(f"cannot download {self.url}: {getattr(exc, 'reason', exc)}") from exc
        sha1 = hashlib.sha1(partial.read_bytes(), usedforsecurity=False).hexdigest()
        sha256 = sha256_file(partial)
        if sha1 != published_sha1 or sha256 != self.sha256:
            partial.unlink(missing_ok=True)
            raise AirgapError(
                f"{self.url}: sha1 {sha1} (Maven Central publishes {published_sha1}), sha256 {sha256} "
                f"(pinned {self.sha256}); refusing it"
            )
        partial.rename(out)
        return out


def go_version(go: str = "go") -> str:
    return capture([go, "env", "GOVERSION"]).strip()
