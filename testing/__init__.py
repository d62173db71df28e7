"""floe-testinfra's testing library: waiting, probes, health checks, isolation and the pytest plugin.

Importing this package is cheap on purpose (the pytest plugin loads it in every run): the
Kubernetes client is imported only by the modules that talk to a cluster, and only when used.

Public modules:

- :mod:`testing.polling` — ``wait_for_condition``, the one waiting primitive.
- :mod:`testing.errors` — the exception hierarchy (``InfraError`` and subclasses).
- :mod:`testing.endpoints` — service endpoints from the test Job's ``FLOE_*`` variables.
- :mod:`testing.probes` — HTTP/TCP/PostgreSQL probes and ``wait_for_service``.
- :mod:`testing.health` — concurrent health checks of required services.
- :mod:`testing.k8s_client` — a small kubectl-like wrapper over the official client.
- :mod:`testing.cluster` — ``require_cluster()``: the client, or a skip naming what is missing.
- :mod:`testing.connectivity` — DNS/TCP/HTTP hops, NetworkPolicy allow/deny, connection reuse.
- :mod:`testing.isolation` — per-test namespaces, keep-on-failure and the sweeper.
- :mod:`testing.base_classes` — ``IntegrationTestBase``, ``PluginTestBase``, ``AdapterTestBase``.
- :mod:`testing.plugin` — the pytest plugin (entry point ``floe_testing``).
"""

from __future__ import annotations

__all__: list[str] = []
