"""The model of a floe-testinfra run: settings, profiles, versions, kind config, image tags, the plan.

It depends on nothing above it (only :mod:`testing.errors`, the one error root).
"""
