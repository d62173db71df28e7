"""Air-gapped mode: host preparation and a Kind node image built from package mirrors and Go modules.

``python -m floe_build host-prep``      prepare Docker on this host (only what is detected missing)
``python -m floe_build node-image``     build the Kind node image for the pinned Kubernetes version
``python -m floe_build cluster-smoke``  create a cluster from it with the project's kind config, check, delete

For the stack: :func:`node_image_tag` is the locally built image for a Kubernetes version (raises
:class:`AirgapError` when none was built), :func:`containerd_patches` the kind ``containerdConfigPatches``
this host needs. See docs/guides/air-gapped.md.
"""

from floe_build._run import AirgapError
from floe_build.cluster_smoke import containerd_patches, node_image_tag

__all__ = ["AirgapError", "containerd_patches", "node_image_tag"]
