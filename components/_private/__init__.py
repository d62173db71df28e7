"""Helpers shared by the components; not part of the public surface."""
