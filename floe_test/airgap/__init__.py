"""Air-gapped mode: host preparation and a Kind node image built from package mirrors and Go modules.

``python -m floe_test.airgap host-prep``   prepare Docker on this host (only what is detected missing)
``python -m floe_test.airgap node-image``  build the Kind node image for the pinned Kubernetes version
"""

from floe_test.airgap._run import AirgapError

__all__ = ["AirgapError"]
