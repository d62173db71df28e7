"""YAML as we read our own input files: a mapping that names a key twice is an error, not "last wins".

PyYAML keeps the last of two equal keys without a word, so a second ``checksums:`` block (or a
repeated service in a profile) silently replaced the first. Every input file of floe-testinfra is
read through :func:`load`.
"""

from __future__ import annotations

from typing import Any

import yaml

__all__ = ["load"]


class _UniqueKeyLoader(yaml.SafeLoader):
    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, yaml.Node] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key: PyYAML reports it itself below
                continue
            if first is not None:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"found duplicate key {key!r} (first at line {first.start_mark.line + 1})",
                    key_node.start_mark,
                )
            seen[key] = key_node
        return super().construct_mapping(node, deep=deep)


def load(text: str) -> Any:
    """Parse one YAML document like ``yaml.safe_load``, refusing duplicate mapping keys."""
    return yaml.load(text, Loader=_UniqueKeyLoader)
