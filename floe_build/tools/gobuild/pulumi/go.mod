// Build recipe for the Pulumi CLI (versions.yaml tools.pulumi): upstream pkg/go.mod has replace
// directives, so `go install` refuses it; this module requires pkg/v3 and sdk/v3 at the same version
// and builds github.com/pulumi/pulumi/pkg/v3/cmd/pulumi (see floe_build/toolchain.py for the flags).
module floe.dev/testinfra/gobuild/pulumi

go 1.25.0

// Copied from upstream pkg/go.mod (the sdk/v3 => ../sdk replace is expressed by the require below).
replace github.com/atotto/clipboard => github.com/tgummerer/clipboard v0.0.0-20241001131231-d02d263e614e

require (
	github.com/pulumi/pulumi/pkg/v3 v3.259.0
	github.com/pulumi/pulumi/sdk/v3 v3.259.0
)
