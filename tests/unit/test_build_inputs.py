"""Every file an image build copies or runs is in git, and the image's content hash covers it.

A fresh clone builds from what git tracks: a file that only a developer's work tree has (an ignore
rule that matched too much once kept the node's start scripts out) builds nodes that cannot start.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from floe_build.nodeimage import NODE_RECIPE, base_inputs
from floe_build.recipes import IMAGES_DIR
from floe_model.paths import REPO_ROOT

pytestmark = pytest.mark.skipif(
    shutil.which("git") is None or not (REPO_ROOT / ".git").exists(), reason="not a git checkout (git or .git missing)"
)

#: Folders whose files go into images or builds.
BUILD_INPUTS = ("images", "floe_build", "charts", "testing")
NODE_FILES = NODE_RECIPE / "files"


def git(*args: str) -> list[str]:
    out = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, check=True, timeout=60)
    return [line for line in out.stdout.splitlines() if line]


def tracked(folder: Path) -> set[str]:
    return {str((REPO_ROOT / p).relative_to(folder)) for p in git("ls-files", "--", str(folder.relative_to(REPO_ROOT)))}


def test_no_file_of_a_build_input_folder_is_ignored_by_git():
    ignored = git("ls-files", "--others", "--ignored", "--exclude-standard", "--", *BUILD_INPUTS)
    ignored = [p for p in ignored if "__pycache__" not in p and not p.endswith(".pyc")]
    assert ignored == [], f"ignored by .gitignore, so a fresh clone builds without them: {ignored}"


def node_unit_commands() -> dict[str, list[str]]:
    """unit file -> the /kind/bin/ scripts its Exec* lines run."""
    found: dict[str, list[str]] = {}
    for unit in sorted(NODE_FILES.rglob("*")):
        if unit.suffix in {".conf", ".service"}:
            scripts = re.findall(r"^Exec\w+=-?(/kind/bin/[\w.-]+)", unit.read_text(), re.M)
            if scripts:
                found[str(unit.relative_to(NODE_FILES))] = scripts
    return found


def test_the_node_drop_ins_run_scripts_of_ours():
    units = node_unit_commands()
    assert units, "no systemd unit of the node recipe runs a /kind/bin script: the check below would be empty"
    assert {Path(u).name for u in units} >= {"10-floe-oom.conf", "12-floe-cgroup-v1.conf"}


@pytest.mark.parametrize("unit_and_script", [(u, s) for u, ss in node_unit_commands().items() for s in ss], ids=str)
def test_every_script_a_node_unit_runs_is_tracked_and_executable(unit_and_script):
    unit, script = unit_and_script
    path = NODE_FILES / script.lstrip("/")
    assert path.is_file(), f"{unit} runs {script}, which floe_build/images/node/files does not have"
    assert str(path.relative_to(NODE_FILES)) in tracked(NODE_FILES), f"{script} ({unit}) is not tracked by git"
    assert path.stat().st_mode & 0o111, f"{script} is not executable"
    mode = git("ls-files", "--stage", "--", str(path.relative_to(REPO_ROOT)))[0].split()[0]
    assert mode == "100755", f"git records {script} as {mode}, so a clone checks it out without its executable bit"


def test_the_node_base_hash_covers_every_tracked_file_of_the_recipe(tmp_path):
    kind_files = tmp_path / "kind-files"
    kind_files.mkdir()
    inputs = base_inputs("rootfs:1", kind_files, "pause:3.10")
    assert set(inputs["files"]) == tracked(NODE_FILES)  # type: ignore[arg-type]
    assert "Dockerfile" in tracked(NODE_RECIPE)


def test_a_script_change_or_a_lost_executable_bit_changes_the_node_base_inputs(tmp_path):
    recipe = tmp_path / "node"
    shutil.copytree(NODE_RECIPE, recipe)
    kind_files = tmp_path / "kind-files"
    kind_files.mkdir()
    before = base_inputs("rootfs:1", kind_files, "pause:3.10", recipe)
    script = recipe / "files" / "kind" / "bin" / "floe-cgroup-v1-roots.sh"
    script.chmod(0o644)
    without_x = base_inputs("rootfs:1", kind_files, "pause:3.10", recipe)
    script.write_text(script.read_text() + "\n# changed\n")
    changed = base_inputs("rootfs:1", kind_files, "pause:3.10", recipe)
    assert before != without_x != changed != before


def dockerfile_sources(dockerfile: Path) -> list[str]:
    sources = []
    for line in dockerfile.read_text().splitlines():
        match = re.match(r"^\s*(COPY|ADD)\s+(?!--from)(?:--\S+\s+)*(.+)$", line)
        if match:
            *srcs, _dest = match.group(2).split()
            sources += srcs
    return sources


def artifact_destinations() -> dict[str, set[str]]:
    """Recipe folder -> the context paths its build adds from outside git (binaries, a jar)."""
    from floe_build.service_images import all_recipes
    from floe_model.versions import load_versions

    found: dict[str, set[str]] = {}
    for recipe in all_recipes(load_versions(), e2e=True):
        found.setdefault(recipe.recipe, set()).update(recipe.files)
    return found


AIRGAPPED_RECIPES = sorted(p.parent for p in (IMAGES_DIR / "airgapped").glob("*/Dockerfile"))


@pytest.mark.parametrize("recipe", AIRGAPPED_RECIPES, ids=lambda p: p.name)
def test_every_file_a_service_image_recipe_copies_is_tracked(recipe):
    files = tracked(recipe)
    made_outside = artifact_destinations().get(recipe.name, set())
    for source in dockerfile_sources(recipe / "Dockerfile"):
        if source.startswith("extra-ca"):  # the host's CA certificates, added to the context at build time
            continue
        if source in made_outside:  # a Go binary or a jar the build adds to the context (Recipe.files)
            continue
        matches = [f for f in files if f == source.rstrip("/") or f.startswith(source.rstrip("/") + "/")]
        assert matches, f"{recipe.name}/Dockerfile copies {source}, which git does not track in {recipe.name}/"
