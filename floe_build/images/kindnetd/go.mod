// floe-kindnetd: our minimal stand-in for kind's kindnetd (whose module the Go proxy here does not
// serve). Standard library only.
module floe.dev/testinfra/images/kindnetd

go 1.24.0
