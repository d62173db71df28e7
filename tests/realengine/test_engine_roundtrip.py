"""The real Pulumi engine offline: ``up`` then ``destroy`` of a tiny program on the local file backend.

Runs the CLI, the Python language host and the Command provider from the toolchain cache
(``python -m floe_build.toolchain install``) through the Automation API; skips when they are absent.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import pytest

from floe_build.toolchain import Toolchain, pulumi_env

SMOKE = Path(__file__).parent / "smoke"
REPO = Path(__file__).resolve().parents[2]
VENV = REPO / ".venv"
SECRET = "floe-smoke-s3cr3t-value"
STACK = "smoke"


def _missing(chain: Toolchain) -> list[str]:
    wanted = [chain.pulumi_root / "bin" / name
              for name in ("pulumi", "pulumi-language-python", "pulumi-language-python-exec")]
    plugins = chain.pulumi_home / "plugins"
    wanted.append(plugins / f"resource-command-{chain.pinned('pulumi-resource-command')}"
                  / "pulumi-resource-command")
    return [path.name for path in wanted if not path.is_file()]


_CHAIN = Toolchain()
_MISSING = _missing(_CHAIN)
pytestmark = pytest.mark.skipif(
    bool(_MISSING),
    reason=f"toolchain not in {_CHAIN.cache} (missing {', '.join(_MISSING)}): "
           "run `python -m floe_build.toolchain install`")


@pytest.mark.timeout(600)
def test_up_writes_encrypted_state_and_destroy_removes_it(tmp_path: Path) -> None:
    from pulumi import automation as auto

    # The program runs below the repository (in the git-ignored .state/) so the uv toolchain of the
    # Python host finds the project's uv.lock; its stack file and state never touch tracked files.
    scratch = REPO / ".state" / "realengine"
    scratch.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="smoke-", dir=scratch)) / "program"
    shutil.copytree(SMOKE, work)
    settings = (work / "Pulumi.yaml").read_text().replace("../../../.venv", str(VENV))
    (work / "Pulumi.yaml").write_text(settings)
    backend = tmp_path / "backend"
    backend.mkdir()
    env = pulumi_env(_CHAIN)
    env.update({"PULUMI_BACKEND_URL": f"file://{backend}", "PULUMI_CONFIG_PASSPHRASE": ""})
    command = auto.PulumiCommand(root=str(_CHAIN.pulumi_root))
    workspace = auto.LocalWorkspace(work_dir=str(work), pulumi_command=command, env_vars=env,
                                    pulumi_home=str(_CHAIN.pulumi_home))
    stack = auto.Stack.create(STACK, workspace)
    state_file = backend / ".pulumi" / "stacks" / "floe-smoke" / f"{STACK}.json"
    try:
        stack.set_config("token", auto.ConfigValue(SECRET, secret=True))
        result = stack.up(on_output=print)
        assert result.outputs["stdout"].value == "floe-smoke"
        assert result.summary.result == "succeeded"

        state = state_file.read_text()
        assert SECRET not in state, "the secret must never be stored in plain text"
        assert "ciphertext" in state
        types = [r["type"] for r in json.loads(state)["checkpoint"]["latest"]["resources"]]
        assert "command:local:Command" in types
        assert SECRET not in (work / f"Pulumi.{STACK}.yaml").read_text()
    finally:
        stack.destroy(on_output=print)
    after = json.loads(state_file.read_text())["checkpoint"].get("latest") or {}
    assert not after.get("resources"), "destroy left resources in the state"
    workspace.remove_stack(STACK)
    assert not state_file.exists()
    shutil.rmtree(work.parent, ignore_errors=True)
