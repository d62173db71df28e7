// Build recipe for kubectl: our own three-line main around the published k8s.io/kubectl module.
// Versions: k8s.io/* v0.34.0 are the published twins of Kubernetes v1.34.0 (versions.yaml tools.kubectl).
module floe.dev/testinfra/gobuild/kubectl

go 1.24.0

require (
	k8s.io/component-base v0.34.0
	k8s.io/kubectl v0.34.0
)
