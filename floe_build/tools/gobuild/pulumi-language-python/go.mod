// Build recipe for Pulumi's Python language host (same version as tools.pulumi). Its module has no tags:
// floe_build.toolchain requires it by the commit in source.json, with pkg/v3 and sdk/v3 at the CLI version.
module floe.dev/testinfra/gobuild/pulumi-language-python

go 1.25.0

// Copied from upstream sdk/python/cmd/pulumi-language-python/go.mod (its ../ replaces become requires).
replace github.com/atotto/clipboard => github.com/tgummerer/clipboard v0.0.0-20241001131231-d02d263e614e
