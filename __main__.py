"""Pulumi entry point: everything lives in floe_test.program (testable under mocks)."""

from floe_test.program import run

run()
