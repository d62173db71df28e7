"""TestNamespace: the unique namespace one test run's Job and resources live in."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components._private.labels import TYPE_PREFIX, common_labels
from components._private.validation import Problems


@dataclass(frozen=True, kw_only=True)
class TestNamespaceArgs:
    """Inputs of :class:`TestNamespace`."""

    run_id: str
    """Identifies the run; the namespace is ``<prefix>-<run_id>`` and carries it as a label for sweeping."""
    prefix: str = "floe-test"
    """Namespace name prefix."""
    stack: str = ""
    """Stack name, recorded as a label."""


class TestNamespace(pulumi.ComponentResource):
    """A namespace under the "restricted" pod security profile, labelled for the sweeper."""

    __test__ = False  # not a pytest test class, despite the name

    namespace: pulumi.Output[str]
    """The namespace name."""

    def __init__(self, name: str, args: TestNamespaceArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"{TYPE_PREFIX}:TestNamespace", name, None, opts)
        _validate(args)
        ns_name = f"{args.prefix}-{args.run_id}"
        labels = {
            **common_labels(run_id=args.run_id, stack=args.stack or None, component="test-run"),
            # Everything in a test namespace runs under the "restricted" profile, enforced by the API server.
            "pod-security.kubernetes.io/enforce": "restricted",
            "pod-security.kubernetes.io/enforce-version": "latest",
        }
        ns = k8s.core.v1.Namespace(
            f"{name}-ns", metadata={"name": ns_name, "labels": labels}, opts=pulumi.ResourceOptions(parent=self)
        )
        self.namespace = ns.metadata.apply(lambda m: str(m["name"]) if m and m.get("name") else ns_name)
        self.register_outputs({"namespace": self.namespace})


def _validate(args: TestNamespaceArgs) -> None:
    problems = Problems("TestNamespace")
    problems.dns_label("prefix", args.prefix, max_len=30)
    problems.dns_label("run_id", args.run_id, max_len=32)
    problems.raise_if_any()
