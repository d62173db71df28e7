"""Can this machine run the air-gapped ``make test-k8s`` right now, without any download?

CI (``.ci/run``) asks before it starts a cluster run: the answer is "yes", or every missing piece
with the command that provides it. Nothing is built or started here: the checks only look.
"""

from __future__ import annotations

from floe_build._run import AirgapError
from floe_build.cluster_smoke import node_image_tag
from floe_build.service_images import image_exists, recipes
from floe_model.proc import docker_running
from floe_model.versions import Versions, load_versions


def missing(versions: Versions | None = None) -> list[str]:
    """What is missing for an offline cluster run (empty: ready)."""
    from floe_build.toolchain import TOOLS, Toolchain

    pins = versions or load_versions()
    chain = Toolchain()
    problems = [
        f"{tool} {chain.pinned(tool)} is not in the tool cache (make tools)"
        for tool in TOOLS
        if not chain.status(tool, probe=False).matches_pin
    ]
    reason = docker_running()
    if reason:
        return [*problems, f"Docker: {reason}"]
    try:
        node = node_image_tag(pins.kubernetes)
    except AirgapError as exc:
        problems.append(str(exc))
    else:
        if not image_exists(node):
            problems.append(f"node image {node} is recorded but not in Docker (make node-image)")
    problems += [
        f"image {pins.images[r.key].ref} is not in Docker (make airgapped-images)"
        for r in recipes(pins)
        if not image_exists(pins.images[r.key].ref)
    ]
    return problems + missing_charts(pins)


def missing_charts(pins: Versions) -> list[str]:
    """Pinned charts of the offline integration run that neither the chart cache nor the offline chart
    repository holds (a run would have to pull them)."""
    from components.charts import ChartCache
    from floe_model.profiles import load_profile
    from testing.errors import ConfigError

    profile = load_profile("integration", pins, variant="airgapped")
    cache = ChartCache(allow_pull=False)
    problems = []
    for service in profile.enabled_services:
        pin = service.chart.pinned
        if pin is None:
            continue
        key = next(k for k, v in pins.charts.items() if v == pin)
        try:
            cache.get(key, pin)
        except ConfigError as exc:
            problems += [p.problem.split(" (")[0] + " nor in the offline chart repository" for p in exc.problems]
    return problems


def main() -> int:
    problems = missing()
    if problems:
        print("not ready: " + "; ".join(problems))
        return 1
    print("ready: tools, node image, air-gapped images and charts are all on this machine")
    return 0
