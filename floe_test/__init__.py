"""floe-test: the command line and the Pulumi program of floe-testinfra."""
