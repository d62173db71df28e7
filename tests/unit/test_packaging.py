"""Every third-party module the shipped packages import is a runtime dependency.

The test-runner image installs the runtime dependencies only (``uv sync --no-dev``). A module that
only the dev group provides works on a developer's machine and fails inside the cluster: the
PostgreSQL probe's psycopg did exactly that, and the smoke gate waited out the test timeout.
A module imported under ``except ImportError`` somewhere in a file is optional there, and exempt.
"""

from __future__ import annotations

import ast
import sys
import tomllib
from collections.abc import Iterator
from importlib.metadata import PackageNotFoundError, packages_distributions, requires
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ("components", "floe_build", "floe_model", "floe_test", "testing")


def _top(node: ast.Import | ast.ImportFrom) -> list[str]:
    if isinstance(node, ast.Import):
        return [a.name.split(".")[0] for a in node.names]
    return [node.module.split(".")[0]] if node.level == 0 and node.module else []


def _guarded(tree: ast.AST) -> set[str]:
    """Top-level modules imported inside ``try`` blocks that handle ImportError (optional ones)."""
    modules: set[str] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Try):
            continue
        handled = {ast.unparse(h.type) for h in node.handlers if h.type is not None}
        if handled & {"ImportError", "ModuleNotFoundError"}:
            for stmt in node.body:
                for n in ast.walk(stmt):
                    if isinstance(n, ast.Import | ast.ImportFrom):
                        modules.update(_top(n))
    return modules


def _imports() -> Iterator[tuple[str, str]]:
    """(top-level module, file:line) of every unguarded third-party import in the shipped packages."""
    for package in SHIPPED:
        for path in sorted((ROOT / package).rglob("*.py")):
            if path.is_relative_to(ROOT / "floe_build" / "images"):  # programs of the images, run inside them
                continue
            tree = ast.parse(path.read_text(), str(path))
            guarded = _guarded(tree)
            for node in ast.walk(tree):
                if not isinstance(node, ast.Import | ast.ImportFrom):
                    continue
                for top in _top(node):
                    if top not in sys.stdlib_module_names and top not in SHIPPED and top not in guarded:
                        yield top, f"{path.relative_to(ROOT)}:{node.lineno}"


def _runtime_closure() -> set[str]:
    """Canonical names of the runtime dependencies and everything they require (with their extras)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    todo = [Requirement(r) for r in project["dependencies"]]
    seen: set[str] = set()
    while todo:
        req = todo.pop()
        name = canonicalize_name(req.name)
        if name in seen:
            continue
        seen.add(name)
        try:
            children = requires(req.name) or []
        except PackageNotFoundError:
            continue
        for text in children:
            child = Requirement(text)
            if child.marker is None or any(child.marker.evaluate({"extra": e}) for e in (req.extras or {""})):
                todo.append(child)
    return seen


def test_shipped_code_imports_only_runtime_dependencies() -> None:
    distributions = packages_distributions()
    runtime = _runtime_closure()
    missing = sorted(
        f"{where}: imports {module} ({', '.join(distributions.get(module, ['not installed']))})"
        for module, where in _imports()
        if not any(canonicalize_name(d) in runtime for d in distributions.get(module, []))
    )
    assert not missing, (
        "modules that the test-runner image (runtime dependencies only) would not have; add them to "
        "[project.dependencies] or guard the import with `except ImportError`:\n" + "\n".join(missing)
    )


def test_the_check_sees_a_dev_only_import(tmp_path: Path) -> None:
    tree = ast.parse("try:\n    import matplotlib\nexcept ImportError:\n    pass\nimport ruff\n")
    assert _guarded(tree) == {"matplotlib"}
    assert "ruff" not in _runtime_closure()


def test_the_image_build_context_is_exactly_what_the_image_tag_hashes():
    # A file outside the context (run state rewritten during a build) can no longer break the build,
    # and nothing the image is built from is left out of its content tag.
    from floe_model.image_tag import IMAGE_INPUTS
    from floe_model.paths import REPO_ROOT

    lines = [line.strip() for line in (REPO_ROOT / ".dockerignore").read_text().splitlines()]
    assert "*" in lines  # everything else is excluded
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    assert allowed == set(IMAGE_INPUTS)
