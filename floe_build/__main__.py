"""``python -m floe_build host-prep|node-image|cluster-smoke|ready``: see the package docstring."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m floe_build", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("host-prep", help="prepare Docker on this host for kind (only what is detected missing)")
    node = sub.add_parser("node-image", help="build the Kind node image for the pinned Kubernetes version")
    node.add_argument(
        "--only",
        choices=("binaries", "rootfs", "base", "images", "node"),
        action="append",
        help="stop after this step (earlier steps are checked or built first; default: all)",
    )
    smoke_cmd = sub.add_parser("cluster-smoke", help="create a Kind cluster from the node image, check it, delete it")
    smoke_cmd.add_argument("--nodes", type=int, choices=(1, 3), default=1)
    smoke_cmd.add_argument("--keep", action="store_true", help="keep the cluster afterwards")
    smoke_cmd.add_argument("--netpol", action="store_true", help="also check NetworkPolicy allow/deny")
    sub.add_parser("ready", help="can the air-gapped make test-k8s run here without downloads? (only looks)")
    args = parser.parse_args(argv)
    if args.command == "ready":
        from floe_build.ready import main as ready

        return ready()
    if args.command == "host-prep":
        from floe_build.hostprep import main as host_prep

        return int(host_prep())
    if args.command == "cluster-smoke":
        from floe_build._run import AirgapError, log
        from floe_build.cluster_smoke import smoke

        try:
            seconds = smoke(args.nodes, args.keep, netpol=args.netpol)
        except AirgapError as exc:
            log(f"FAILED: {exc}")
            return 1
        log(f"cluster-smoke: {args.nodes} node(s) created in {seconds:.0f}s")
        return 0
    from floe_build.nodeimage import main as node_image

    return int(node_image(args.only))


if __name__ == "__main__":
    from floe_test._private.entry import module_main

    sys.exit(module_main(main, "python -m floe_build"))
