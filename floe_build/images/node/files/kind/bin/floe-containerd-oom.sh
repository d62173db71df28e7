#!/bin/bash
# floe-testinfra: ExecStartPre of containerd (10-floe-oom.conf).
#
# Where the node's capability bounding set lacks CAP_SYS_RESOURCE (some VMs: Docker cannot grant it even
# to --privileged containers), the kernel refuses negative oom_score_adj values, and containerd fails to
# start pods whose kubelet-chosen score is negative. containerd then has to clamp the scores:
# restrict_oom_score_adj = true (kind's rootless setting). Detected at every start, so the same image
# works unchanged on hosts that have the capability. Idempotent.
set -o errexit -o nounset -o pipefail

config=/etc/containerd/config.toml
cap_sys_resource=24
bounding=$(awk '/^CapBnd:/ {print $2}' /proc/self/status)
if (( (16#${bounding} >> cap_sys_resource) & 1 )); then
  exit 0  # the capability is there: nothing to clamp
fi
if grep -Eq '^\s*restrict_oom_score_adj\s*=\s*true' "${config}"; then
  exit 0
fi
if grep -Eq '^\s*restrict_oom_score_adj\s*=' "${config}"; then
  sed -i -E 's/^(\s*restrict_oom_score_adj\s*=\s*).*/\1true/' "${config}"
elif grep -q '^\[plugins\."io\.containerd\.grpc\.v1\.cri"\]$' "${config}"; then
  # Inside the existing table: TOML forbids defining a table twice.
  sed -i '/^\[plugins\."io\.containerd\.grpc\.v1\.cri"\]$/a\  restrict_oom_score_adj = true' "${config}"
else
  printf '\n[plugins."io.containerd.grpc.v1.cri"]\n  restrict_oom_score_adj = true\n' >>"${config}"
fi
echo "floe-containerd-oom: no CAP_SYS_RESOURCE in the bounding set; set restrict_oom_score_adj = true in ${config}"
