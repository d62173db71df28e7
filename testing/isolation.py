"""Isolation and cleanup (REQ-645): one namespace per test, kept only on failure, swept by label.

Every namespace made here is called ``<prefix>-<uuid8>`` and labelled::

    app.kubernetes.io/managed-by=floe-testinfra
    floe.dev/run-id=<run id>          # shared by every xdist worker of one run
    floe.dev/test-id=<sanitised test> # the full node id is in the floe.dev/test-nodeid annotation
    pod-security.kubernetes.io/enforce=restricted (enforce-version latest)

Inside the test Job the runner then binds its sandbox role there (:mod:`testing.sandbox`).

A passing test's namespace is deleted and waited for (bounded); a failing one is deleted too unless
keep-failed is on, in which case it gets ``floe.dev/expires-at=<unix seconds>`` and the exact
``kubectl`` commands to inspect it are printed. :func:`sweep_namespaces` deletes leftovers of crashed
runs (and kept namespaces past their expiry).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from testing.errors import ConfigError

if TYPE_CHECKING:
    from testing.k8s_client import KubeClient

__all__ = [
    "DEFAULT_KEEP_TTL",
    "DEFAULT_SWEEP_MAX_AGE",
    "EXPIRES_AT_LABEL",
    "MANAGED_BY_LABEL",
    "MANAGED_BY_VALUE",
    "RUN_ID_LABEL",
    "SWEEP_SELECTOR",
    "TEST_ID_LABEL",
    "IsolatedNamespace",
    "SweptNamespace",
    "debug_commands",
    "namespace_labels",
    "new_namespace_name",
    "new_run_id",
    "sanitize_label_value",
    "sweep_namespaces",
]

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE = "floe-testinfra"
RUN_ID_LABEL = "floe.dev/run-id"
TEST_ID_LABEL = "floe.dev/test-id"
EXPIRES_AT_LABEL = "floe.dev/expires-at"
NODEID_ANNOTATION = "floe.dev/test-nodeid"
#: Only per-test namespaces carry a test id, so the sweeper can never touch the platform namespace.
SWEEP_SELECTOR = f"{MANAGED_BY_LABEL}={MANAGED_BY_VALUE},{TEST_ID_LABEL}"
#: How long a kept failed namespace lives before the sweeper may delete it.
DEFAULT_KEEP_TTL = 24 * 3600.0
#: Namespaces without an expiry older than this are leftovers of crashed runs.
DEFAULT_SWEEP_MAX_AGE = 2 * 3600.0
#: Bound of the wait for a deleted namespace to be gone.
DEFAULT_DELETE_TIMEOUT = 180.0

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_LABEL_VALUE_MAX = 63
_PREFIX_MAX = _LABEL_VALUE_MAX - 9  # "-" + 8 hex


def new_run_id() -> str:
    """A fresh run id: ``YYYYmmddTHHMMSS-<hex6>`` (sortable, unique, a valid label value)."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    return f"{stamp}-{uuid.uuid4().hex[:6]}"


def new_namespace_name(prefix: str) -> str:
    """``<prefix>-<uuid8>``; the prefix must be a DNS label of at most 54 characters."""
    if not _DNS_LABEL.match(prefix) or len(prefix) > _PREFIX_MAX:
        raise ConfigError(
            f"namespace prefix {prefix!r} must be lower-case letters, digits and '-', start and end "
            f"alphanumeric, at most {_PREFIX_MAX} characters (e.g. 'floe-it')"
        )
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def sanitize_label_value(text: str) -> str:
    """A valid label value (≤63 chars of ``[A-Za-z0-9._-]``, alphanumeric ends) naming ``text``.

    Long values keep their tail (the test name) and get a hash of the whole, so distinct ids stay
    distinct.
    """
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", text)
    cleaned = re.sub(r"_+", "_", cleaned).strip("._-")
    if len(cleaned) > _LABEL_VALUE_MAX:
        digest = hashlib.sha256(text.encode()).hexdigest()[:8]
        tail = cleaned[-(_LABEL_VALUE_MAX - 9) :].lstrip("._-")
        cleaned = f"{digest}-{tail}"
    return cleaned or "unknown"


def namespace_labels(run_id: str, test_id: str) -> dict[str, str]:
    """The labels of a per-test namespace: whose it is, and the restricted pod security level (the
    test runner's admission fence accepts no other namespace)."""
    from testing.sandbox import PSA_LABELS

    return {
        MANAGED_BY_LABEL: MANAGED_BY_VALUE,
        RUN_ID_LABEL: sanitize_label_value(run_id),
        TEST_ID_LABEL: sanitize_label_value(test_id),
        **PSA_LABELS,
    }


def debug_commands(namespace: str, context: str | None = None) -> list[str]:
    """The exact kubectl commands to inspect (and finally delete) a kept namespace."""
    ctx = f" --context {context}" if context else ""
    return [
        f"kubectl{ctx} get all,pvc,configmaps,secrets,networkpolicies -n {namespace}",
        f"kubectl{ctx} get events -n {namespace} --sort-by=.lastTimestamp",
        f"kubectl{ctx} describe pods -n {namespace}",
        f"for p in $(kubectl{ctx} get pods -n {namespace} -o name); do "
        f"kubectl{ctx} logs -n {namespace} $p --all-containers --prefix --tail=200; done",
        f"kubectl{ctx} delete namespace {namespace}",
    ]


@dataclass(frozen=True)
class SweptNamespace:
    """A namespace the sweeper deleted (or would delete, in a dry run)."""

    name: str
    reason: str
    age_seconds: float
    run_id: str
    test_id: str


def _age(ns: Any, now: dt.datetime) -> float:
    created = ns.metadata.creation_timestamp
    if created is None:
        return 0.0
    if created.tzinfo is None:
        created = created.replace(tzinfo=dt.UTC)
    return float((now - created).total_seconds())


def sweep_namespaces(
    kube: KubeClient | None = None,
    *,
    max_age: float = DEFAULT_SWEEP_MAX_AGE,
    dry_run: bool = False,
    run_id: str | None = None,
    now: dt.datetime | None = None,
    context: str | None = None,
) -> list[SweptNamespace]:
    """Delete per-test namespaces left behind; return what was (or, with ``dry_run``, would be) deleted.

    A namespace goes when it carries ``floe.dev/expires-at`` in the past (a kept failure whose TTL
    ran out), or has no expiry and is older than ``max_age`` seconds (a crashed run), or belongs to
    ``run_id`` when one is given (whatever its age; expiry still protects kept failures). Namespaces
    already terminating are skipped. Only namespaces labelled ``managed-by=floe-testinfra`` AND
    carrying a ``floe.dev/test-id`` are ever considered.
    """
    if max_age < 0:
        raise ConfigError(f"max_age must be ≥ 0 seconds (got {max_age})")
    if kube is None:
        from testing.k8s_client import KubeClient

        kube = KubeClient.load(context)
    moment = now or dt.datetime.now(dt.UTC)
    selector = SWEEP_SELECTOR + (f",{RUN_ID_LABEL}={sanitize_label_value(run_id)}" if run_id else "")
    swept: list[SweptNamespace] = []
    for ns in kube.list_namespaces(selector):
        meta = ns.metadata
        labels = dict(meta.labels or {})
        if ns.status is not None and ns.status.phase == "Terminating":
            continue
        age = _age(ns, moment)
        expires = labels.get(EXPIRES_AT_LABEL, "")
        reason = ""
        if expires:
            try:
                expiry = float(expires)
            except ValueError:
                expiry = 0.0
            if expiry <= moment.timestamp():
                reason = f"kept failure expired ({EXPIRES_AT_LABEL}={expires})"
        elif run_id:
            reason = f"belongs to run {run_id}"
        elif age >= max_age:
            reason = f"older than {max_age:.0f}s ({age:.0f}s) with no expiry"
        if not reason:
            continue
        swept.append(
            SweptNamespace(meta.name, reason, age, labels.get(RUN_ID_LABEL, ""), labels.get(TEST_ID_LABEL, ""))
        )
        if not dry_run:
            kube.delete_namespace(meta.name)
    return swept


@dataclass
class IsolatedNamespace:
    """One test's namespace: ``create()``, run the test, then ``finish(failed=...)``."""

    kube: KubeClient
    prefix: str
    run_id: str
    test_id: str
    keep_failed: bool = False
    keep_ttl: float = DEFAULT_KEEP_TTL
    delete_timeout: float = DEFAULT_DELETE_TIMEOUT
    context: str | None = None
    name: str = field(default="")
    kept: bool = field(default=False)
    _now: Callable[[], float] = field(default=time.time, repr=False)

    def create(self) -> str:
        """Create the namespace and, inside the test Job, give the runner its sandbox rights there."""
        from testing.sandbox import enter

        self.name = new_namespace_name(self.prefix)
        self.kube.create_namespace(
            self.name, namespace_labels(self.run_id, self.test_id), annotations={NODEID_ANNOTATION: self.test_id}
        )
        enter(self.kube, self.name)
        return self.name

    def finish(self, *, failed: bool) -> list[str]:
        """Delete the namespace (waiting until gone), or keep it when it failed and keep-failed is on.

        Returns the lines to show the user (empty when deleted).
        """
        if not self.name:
            return []
        if failed and self.keep_failed:
            expires = int(self._now() + self.keep_ttl)
            self.kube.label_namespace(self.name, {EXPIRES_AT_LABEL: str(expires)})
            self.kept = True
            when = dt.datetime.fromtimestamp(expires, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
            return [
                f"kept namespace {self.name} of failed test {self.test_id} until {when} "
                f"({EXPIRES_AT_LABEL}={expires}); inspect it with:"
            ] + [f"  {c}" for c in debug_commands(self.name, self.context)]
        self.kube.delete_namespace(self.name)
        self.kube.wait_namespace_gone(self.name, timeout=self.delete_timeout)
        return []
