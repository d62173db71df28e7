"""``python -m floe_test.airgap host-prep|node-image|status``: see the package docstring."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m floe_test.airgap", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("host-prep", help="prepare Docker on this host for kind (only what is detected missing)")
    node = sub.add_parser("node-image", help="build the Kind node image for the pinned Kubernetes version")
    node.add_argument(
        "--only",
        choices=("binaries", "rootfs", "images", "node"),
        action="append",
        help="build only these parts (default: everything)",
    )
    args = parser.parse_args(argv)
    if args.command == "host-prep":
        from floe_test.airgap.hostprep import main as host_prep

        return int(host_prep())
    from floe_test.airgap.nodeimage import main as node_image

    return int(node_image(args.only))


if __name__ == "__main__":
    sys.exit(main())
