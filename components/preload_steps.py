"""Image preload steps run by the ImagePreload component (REQ-637).

For every image: skip it when every node already has it; otherwise make sure the local Docker store
has it (build the test-runner image from its Dockerfile, pull others only when absent locally) and
``kind load docker-image`` it into all nodes. Prints a JSON report on stdout; progress on stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from floe_model.image_tag import CONTENT_TAG_PREFIX
from floe_model.proc import docker_running, run
from testing.errors import InfraError, PrerequisiteError


def log(message: str) -> None:
    print(f"[image-preload] {message}", file=sys.stderr, flush=True)


def nodes(cluster: str) -> list[str]:
    out = run(["kind", "get", "nodes", "--name", cluster], timeout=60, what=f"listing nodes of {cluster}").stdout
    return [n.strip() for n in out.splitlines() if n.strip()]


def node_images(node: str) -> set[str]:
    """Image references (name:tag and name@digest forms) present in a node's containerd.

    ``ctr`` rather than ``crictl``: every kind node image has containerd's own client (kind imports
    images with it), while crictl is an extra that locally built node images may lack.
    """
    out = run(
        ["docker", "exec", node, "ctr", "--namespace=k8s.io", "images", "list", "--quiet"],
        timeout=60,
        what=f"listing images on node {node}",
    ).stdout
    return {line.strip() for line in out.splitlines() if line.strip()}


def normalize(ref: str) -> set[str]:
    """The forms a reference takes inside containerd (docker.io/library/ prefixes, digest-only)."""
    name = ref.split("@", 1)[0]
    forms = {ref, name}
    for candidate in list(forms):
        first = candidate.split("/", 1)[0]
        if "/" not in candidate:
            forms.add(f"docker.io/library/{candidate}")
        elif "." not in first and ":" not in first and first != "localhost":
            forms.add(f"docker.io/{candidate}")
    return forms


def local_image_present(ref: str) -> bool:
    return run(["docker", "image", "inspect", ref], timeout=60, what=f"inspecting {ref}", check=False).returncode == 0


def prune_older_builds(ref: str) -> None:
    """Untag the earlier content-tagged builds of ``ref``'s repository (``c-<hash>``).

    Every source change makes a new ~600 MB image; without this, a developer's Docker store fills up.
    Layers still shared with the new build stay; clusters keep their own copies in containerd.
    """
    repository, tag = ref.rsplit(":", 1)
    if not tag.startswith(CONTENT_TAG_PREFIX):
        return
    listed = run(
        ["docker", "image", "ls", repository, "--format", "{{.Tag}}"], timeout=60, what="listing builds", check=False
    )
    older = [f"{repository}:{t}" for t in listed.stdout.split() if t.startswith(CONTENT_TAG_PREFIX) and t != tag]
    if older:
        log(f"Removing {len(older)} earlier build(s) of {repository}")
        run(["docker", "image", "rm", *older], timeout=300, what="removing earlier builds", check=False)


def ensure_local(ref: str, *, build: dict[str, Any] | None) -> str:
    if local_image_present(ref):
        return "local"
    if build is not None:
        log(f"Building {ref} from {build['dockerfile']}")
        run(
            [
                "docker",
                "build",
                "-f",
                build["dockerfile"],
                "-t",
                ref,
                *(f"--build-arg={arg}" for arg in build.get("build_args", [])),
                build["context"],
            ],
            timeout=1800,
            what=f"building the image {ref} from {build['dockerfile']}",
        )
        prune_older_builds(ref)
        return "built"
    log(f"Pulling {ref} (not in the local Docker store)")
    run(["docker", "pull", ref], timeout=900, what=f"pulling {ref}")
    return "pulled"


def preload(
    cluster: str,
    images: list[str],
    *,
    build_ref: str | None,
    build: dict[str, Any] | None,
    builds: dict[str, dict[str, Any]] | None = None,
) -> list[dict[str, object]]:
    """Load ``images`` into every node of ``cluster``; ``build_ref`` and ``builds`` (ref -> recipe) are built,
    never pulled, when the local Docker store lacks them."""
    recipes = {**(builds or {}), **({build_ref: build} if build_ref and build else {})}
    reason = docker_running()
    if reason:
        raise PrerequisiteError(reason)
    node_list = nodes(cluster)
    if not node_list:
        raise InfraError(
            f"kind cluster {cluster} has no nodes to load images into; is it running? (`kind get clusters`)"
        )
    present = {node: node_images(node) for node in node_list}
    report: list[dict[str, object]] = []
    for ref in images:
        started = time.monotonic()
        missing = [n for n in node_list if not (normalize(ref) & present[n])]
        if not missing:
            report.append({"image": ref, "action": "present", "seconds": 0.0})
            log(f"{ref}: already on all {len(node_list)} node(s)")
            continue
        source = ensure_local(ref, build=recipes.get(ref))
        log(f"{ref}: loading into {', '.join(missing)}")
        run(
            ["kind", "load", "docker-image", "--name", cluster, "--nodes", ",".join(missing), ref],
            timeout=1200,
            what=f"loading image {ref} into nodes {', '.join(missing)} of {cluster}",
        )
        report.append(
            {
                "image": ref,
                "action": "loaded",
                "source": source,
                "nodes": missing,
                "seconds": round(time.monotonic() - started, 1),
            }
        )
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m components.preload_steps", description=__doc__)
    parser.add_argument("--cluster", required=True)
    parser.add_argument("--image", action="append", default=[], help="image reference to preload (repeatable)")
    parser.add_argument("--build-ref", help="the image built locally rather than pulled")
    parser.add_argument("--dockerfile")
    parser.add_argument("--context")
    parser.add_argument("--build-arg", action="append", default=[], help="NAME=VALUE for docker build (repeatable)")
    parser.add_argument(
        "--build",
        action="append",
        default=[],
        type=json.loads,
        help='another image to build when missing: JSON {"ref", "dockerfile", "context", "build_args"} (repeatable)',
    )
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    build = (
        {"dockerfile": args.dockerfile, "context": args.context, "build_args": args.build_arg}
        if args.build_ref
        else None
    )
    try:
        builds = {spec["ref"]: spec for spec in args.build}
        print(json.dumps(preload(args.cluster, args.image, build_ref=args.build_ref, build=build, builds=builds)))
    except InfraError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    from floe_test._private.entry import module_main

    raise SystemExit(module_main(main, "python -m components.preload_steps"))
