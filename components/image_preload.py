"""ImagePreload: every image a stack uses, loaded into all Kind nodes before anything is deployed."""

from __future__ import annotations

import json
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_command as command

from components._private.labels import TYPE_PREFIX
from components._private.validation import Problems


@dataclass(frozen=True, kw_only=True)
class TestRunnerBuild:
    """How to build the test-runner image when it is not in the local Docker store."""

    __test__ = False  # not a pytest test class, despite the name

    dockerfile: Path
    context: Path
    build_args: tuple[tuple[str, str], ...] = ()
    """``docker build --build-arg`` pairs (the base image, for mirrors or locally built bases)."""


@dataclass(frozen=True, kw_only=True)
class ImageBuild:
    """Another image built here when the local Docker store lacks it (e.g. a Dagster code location)."""

    ref: str
    dockerfile: Path
    context: Path
    build_args: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, kw_only=True)
class ImagePreloadArgs:
    """Inputs of :class:`ImagePreload`."""

    cluster_name: pulumi.Input[str]
    """The kind cluster whose nodes get the images."""
    images: Sequence[str]
    """Every image reference the stack's releases and Job use (pinned tags/digests)."""
    test_runner_image: str | None = None
    """The test-runner reference among ``images``; built (not pulled) when missing locally."""
    test_runner_build: TestRunnerBuild | None = None
    """Dockerfile and context for the test-runner image; ``None`` takes the given tag as it is."""
    builds: Sequence[ImageBuild] = ()
    """More images among ``images`` to build (never pull) when missing locally."""
    timeout_seconds: int = 1800
    """Bound on the whole preload."""


class ImagePreload(pulumi.ComponentResource):
    """Loads images into every node, skipping those already present; never pulls what Docker has."""

    images: pulumi.Output[list[str]]
    """The images that are on every node once this component is done."""
    report: pulumi.Output[str]
    """JSON: per image, whether it was already present or loaded (and from where)."""

    def __init__(self, name: str, args: ImagePreloadArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"{TYPE_PREFIX}:ImagePreload", name, None, opts)
        _validate(args)
        images = list(dict.fromkeys(args.images))
        parts = [shlex.quote(sys.executable), "-m", "components.preload_steps", "--cluster", "{cluster}"]
        for image in images:
            parts += ["--image", shlex.quote(image)]
        if args.test_runner_image and args.test_runner_build:
            parts += [
                "--build-ref",
                shlex.quote(args.test_runner_image),
                "--dockerfile",
                shlex.quote(str(args.test_runner_build.dockerfile)),
                "--context",
                shlex.quote(str(args.test_runner_build.context)),
            ]
            for key, value in args.test_runner_build.build_args:
                parts += ["--build-arg", shlex.quote(f"{key}={value}")]
        for build in args.builds:
            spec = {
                "ref": build.ref,
                "dockerfile": str(build.dockerfile),
                "context": str(build.context),
                "build_args": [f"{k}={v}" for k, v in build.build_args],
            }
            parts += ["--build", shlex.quote(json.dumps(spec, separators=(",", ":")))]
        template = " ".join(parts)
        create = pulumi.Output.from_input(args.cluster_name).apply(
            lambda cluster: template.replace("{cluster}", shlex.quote(cluster))
        )
        load = command.local.Command(
            f"{name}-load",
            create=create,
            triggers=images,
            opts=pulumi.ResourceOptions(
                parent=self, custom_timeouts=pulumi.CustomTimeouts(create=f"{args.timeout_seconds}s")
            ),
        )
        self.images = pulumi.Output.from_input(images)
        self.report = load.stdout.apply(lambda out: out if out else json.dumps([]))
        self.register_outputs({"images": self.images, "report": self.report})


def _validate(args: ImagePreloadArgs) -> None:
    problems = Problems("ImagePreload")
    if not args.images:
        problems.add("images", "must list at least one image (the test runner)")
    for image in args.images:
        if not image or any(c.isspace() for c in image) or (":" not in image.rsplit("/", 1)[-1] and "@" not in image):
            problems.add("images", f"{image!r} must be a full reference with a tag or digest (never implicit latest)")
        elif image.endswith(":latest"):
            problems.add("images", f"{image!r} uses the mutable tag 'latest'; pin a version")
    if args.test_runner_image and args.test_runner_image not in args.images:
        problems.add("test_runner_image", f"{args.test_runner_image!r} is not among images")
    for build in args.builds:
        if build.ref not in args.images:
            problems.add("builds", f"{build.ref!r} is not among images")
        if not build.dockerfile.is_file():
            problems.add("builds", f"{build.dockerfile} does not exist")
    if args.test_runner_build and not args.test_runner_build.dockerfile.is_file():
        problems.add("test_runner_build.dockerfile", f"{args.test_runner_build.dockerfile} does not exist")
    problems.positive("timeout_seconds", args.timeout_seconds, maximum=7200)
    problems.raise_if_any()
