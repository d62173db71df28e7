// Build recipe for the pulumi-command provider plugin (versions.yaml tools.pulumi-command). The provider
// module carries no tag of its own, so floe_build.toolchain requires it by the commit in source.json.
module floe.dev/testinfra/gobuild/pulumi-resource-command

go 1.25.0
