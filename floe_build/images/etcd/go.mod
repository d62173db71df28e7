// Build recipe for etcd: our own main around the published go.etcd.io/etcd/server/v3 module (the
// repository's root module replaces its siblings with directories, so it cannot be built as published).
// The version is set by floe_build.node_parts (`go mod edit -require`) from kubeadm's etcd tag.
module floe.dev/testinfra/images/etcd

go 1.24.0

require go.etcd.io/etcd/server/v3 v3.6.4
