"""Node-image recipes (floe_build): what is read from upstream sources and what our go.mod says.

Offline: the inputs are small excerpts in the shape of the real files (k8s.io/kubernetes go.mod, kind's
nodeimage constants, apt sources); nothing is built.
"""

from __future__ import annotations

import pytest

from floe_build import AirgapError
from floe_build.cluster_smoke import RESTRICT_OOM_PATCH, containerd_patches
from floe_build.kubernetes import KubeVersion, build_gomod, ldflags, staging_modules
from floe_build.node_parts import go_manifest, go_string_consts
from floe_build.nodeimage import _normalize
from floe_build.rootfs import host_mirror

UPSTREAM_GOMOD = """\
module k8s.io/kubernetes

go 1.24.0

godebug default=go1.24

require (
\tgithub.com/blang/semver/v4 v4.0.0
\tk8s.io/api v0.0.0
)

replace (
\tk8s.io/api => ./staging/src/k8s.io/api
\tk8s.io/client-go => ./staging/src/k8s.io/client-go
\tk8s.io/component-base => ./staging/src/k8s.io/component-base
)
"""


def test_staging_modules_are_read_from_upstreams_replace_block() -> None:
    assert staging_modules(UPSTREAM_GOMOD) == ["k8s.io/api", "k8s.io/client-go", "k8s.io/component-base"]


def test_each_staging_module_is_replaced_by_its_published_twin() -> None:
    gomod = build_gomod(KubeVersion("v1.34.0"), UPSTREAM_GOMOD)
    assert "require k8s.io/kubernetes v1.34.0" in gomod
    assert "\tk8s.io/client-go => k8s.io/client-go v0.34.0" in gomod
    assert "./staging" not in gomod


def test_the_build_module_keeps_upstreams_go_and_godebug_lines() -> None:
    gomod = build_gomod(KubeVersion("v1.34.0"), UPSTREAM_GOMOD)
    assert "\ngo 1.24.0\n" in gomod and "\ngodebug default=go1.24\n" in gomod


def test_a_gomod_without_staging_replaces_is_refused() -> None:
    with pytest.raises(AirgapError, match=r"no \./staging"):
        build_gomod(KubeVersion("v1.34.0"), "module k8s.io/kubernetes\n\ngo 1.24.0\n")


def test_version_ldflags_stamp_both_version_packages() -> None:
    flags = ldflags(KubeVersion("v1.34.0"), "1970-01-01T00:00:00Z")
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        assert f"-X '{pkg}.gitVersion=v1.34.0'" in flags
        assert f"-X '{pkg}.gitMinor=34'" in flags
    assert flags.endswith("-s -w")


KIND_CONST_GO = """package nodeimage

const kindnetdImage = "docker.io/kindest/kindnetd:v20250512-df8de77b"

var defaultCNIImages = []string{kindnetdImage}

const defaultCNIManifest = `
kind: DaemonSet
spec:

  image: ` + kindnetdImage + `
  env: x
`
"""


def test_kind_string_constants_are_read_from_its_source() -> None:
    assert go_string_consts(KIND_CONST_GO) == {"kindnetdImage": "docker.io/kindest/kindnetd:v20250512-df8de77b"}


def test_kind_manifests_are_assembled_with_blank_lines_and_image_constants() -> None:
    text = go_manifest(KIND_CONST_GO, "defaultCNIManifest", go_string_consts(KIND_CONST_GO))
    assert text == "\nkind: DaemonSet\nspec:\n\n  image: docker.io/kindest/kindnetd:v20250512-df8de77b\n  env: x\n"


def test_a_missing_kind_constant_is_reported_by_name() -> None:
    with pytest.raises(AirgapError, match="no constant defaultStorageManifest"):
        go_manifest(KIND_CONST_GO, "defaultStorageManifest", {})


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("registry.k8s.io/pause:3.10.1", "registry.k8s.io/pause:3.10.1"),
        ("kindest/kindnetd:v1", "docker.io/kindest/kindnetd:v1"),
        ("docker.io/kindest/kindnetd:v1", "docker.io/kindest/kindnetd:v1"),
        ("busybox:1", "docker.io/library/busybox:1"),
        ("localhost/x:1", "localhost/x:1"),
    ],
    ids=["registry", "docker-hub-short", "docker-hub-full", "library", "localhost"],
)
def test_image_names_are_compared_as_containerd_spells_them(ref: str, expected: str) -> None:
    assert _normalize(ref) == expected


@pytest.mark.parametrize(
    ("sources", "expected"),
    [
        ("Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm\n", "http://mirror.example/debian"),
        ("Types: deb\nURIs: http://deb.debian.org/debian-security\n", "http://deb.debian.org/debian"),
        ("deb [arch=amd64] http://mirror.example/debian/ bookworm main\n", "http://mirror.example/debian"),
        ("", "http://deb.debian.org/debian"),
    ],
    ids=["deb822", "only-security", "one-line", "none"],
)
def test_debootstrap_uses_the_hosts_debian_mirror(sources: str, expected: str) -> None:
    assert host_mirror(sources) == expected


@pytest.mark.parametrize(
    ("capbnd", "patched"),
    [
        ("000001fffeffffff", True),
        ("000001ffffffffff", False),
    ],
    ids=["without-CAP_SYS_RESOURCE", "full-bounding-set"],
)
def test_the_oom_score_patch_is_added_only_where_nodes_cannot_lower_oom_score_adj(capbnd: str, patched: bool) -> None:
    patches = containerd_patches(f"Name:\tpython\nCapBnd:\t{capbnd}\n")
    assert patches == ([RESTRICT_OOM_PATCH] if patched else [])
