#!/bin/bash
# floe-testinfra: ExecStartPre of the kubelet (12-floe-cgroup-v1.conf), on cgroup v1 nodes only.
#
# kind's entrypoint creates the kubelet's cgroup roots (/kubelet, /kubelet.slice) in every v1 hierarchy
# mounted when the container starts. On hosts where some enabled controllers are mounted nowhere
# (hugetlb, perf_event, net_cls/net_prio on our VMs: hierarchy 0 in /proc/cgroups), the node's systemd
# mounts them itself while it boots, after the entrypoint: those hierarchies then lack the roots and the
# kubelet refuses to start ("cgroup [kubelet] has some missing paths: /sys/fs/cgroup/hugetlb/kubelet.slice").
# This does what kind's mount_kubelet_cgroup_root_subsystem does, for every v1 hierarchy mounted now.
# Idempotent; a no-op on cgroup v2 and where the entrypoint already made every root.
set -o errexit -o nounset -o pipefail

if [[ -f /sys/fs/cgroup/cgroup.controllers ]]; then
  exit 0  # cgroup v2: kind's create-kubelet-cgroup-v2.sh does this
fi

made=()
while read -r target; do
  # Hierarchy roots only: the roots kind (and this script) bind-mount onto themselves are cgroup mounts
  # too, and must not get roots of their own.
  [[ "$(dirname "${target}")" == /sys/fs/cgroup ]] || continue
  for root in kubelet kubelet.slice; do
    dir="${target}/${root}"
    [[ -d "${dir}" ]] && continue
    mkdir -p "${dir}"
    if [[ "${target}" == /sys/fs/cgroup/cpuset ]]; then
      # Otherwise assigning a process to the new cgroup fails with ENOSPC.
      cat "${target}/cpuset.cpus" >"${dir}/cpuset.cpus"
      cat "${target}/cpuset.mems" >"${dir}/cpuset.mems"
    fi
    # As kind does: systemd may otherwise remove the empty cgroup before the kubelet starts.
    mount --bind "${dir}" "${dir}"
    made+=("${dir}")
  done
done < <(findmnt -lun -o target -t cgroup)

if ((${#made[@]})); then
  echo "floe-cgroup-v1-roots: created kubelet cgroup roots ${made[*]}"
fi
