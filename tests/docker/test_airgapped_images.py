"""Live: the air-gapped service images (make airgapped-images) keep the upstream images' contracts.

Builds them when missing (cached by content: seconds when nothing changed), then checks entry points,
users and ports, and runs PostgreSQL through its entry point as the chart does (uid 999, init script).
"""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest

from floe_build.service_images import ServiceImages
from floe_model.versions import load_versions
from testing.connectivity import probe_script
from testing.errors import WaitTimeout
from testing.polling import Check, wait_for_condition
from tests.docker._docker import config, docker, docker_reason

pytestmark = pytest.mark.skipif(docker_reason() is not None, reason=f"needs Docker: {docker_reason()}")


@pytest.fixture(scope="module")
def refs() -> dict[str, str]:
    return ServiceImages().build()


def test_python_base_is_a_python_slim_stand_in(refs):
    ref = refs["python-base-airgapped"]
    assert config(ref, "Cmd") == '["python3"]' and config(ref, "User") == '""'
    out = docker("run", "--rm", ref, "sh", "-c", "python --version; pip --version; command -v python3; command -v pip")
    assert "Python 3.11." in out and "/usr/local/bin/python3" in out and "/usr/local/bin/pip" in out


def test_postgres_entry_point_user_port_and_init_scripts(refs, tmp_path: Path):
    ref = refs["postgres-airgapped"]
    assert config(ref, "Entrypoint") == '["docker-entrypoint.sh"]' and config(ref, "Cmd") == '["postgres"]'
    assert "5432/tcp" in config(ref, "ExposedPorts")
    # uid/gid 999 as upstream (Debian also puts postgres in ssl-cert, for its snakeoil key).
    assert docker("run", "--rm", "--entrypoint", "id", ref, "postgres").startswith(
        "uid=999(postgres) gid=999(postgres)"
    )
    init = tmp_path / "init"
    init.mkdir()
    (init / "init.sh").write_text(
        "psql -v ON_ERROR_STOP=1 --username postgres <<'SQL'\nCREATE USER app WITH PASSWORD 'apw';\n"
        "CREATE DATABASE app OWNER app;\nSQL\n"
    )
    init.chmod(0o755)
    (init / "init.sh").chmod(0o644)  # not executable: sourced, as upstream does
    name = f"floe-pg-{uuid.uuid4().hex[:8]}"
    docker(
        "run",
        "-d",
        "--name",
        name,
        "--user",
        "999:999",
        "-e",
        "POSTGRES_PASSWORD=pw",
        "-e",
        "PGDATA=/var/lib/postgresql/data/pgdata",
        "-v",
        f"{init}:/docker-entrypoint-initdb.d:ro",
        ref,
    )
    try:
        def ready() -> Check[str]:
            probe = subprocess.run(
                ["docker", "exec", name, "pg_isready", "-U", "postgres", "-h", "127.0.0.1"],
                capture_output=True,
                text=True,
                check=False,
            )
            return Check(probe.returncode == 0, (probe.stdout or probe.stderr).strip())

        try:
            wait_for_condition(ready, timeout=120, interval=1, description=f"PostgreSQL in container {name}")
        except WaitTimeout as exc:
            pytest.fail(f"{exc}\ncontainer log:\n{docker('logs', name)}")
        out = docker(
            "exec",
            "-e",
            "PGPASSWORD=apw",
            name,
            "psql",
            "-h",
            "127.0.0.1",
            "-U",
            "app",
            "-d",
            "app",
            "-tAc",
            "select current_user",
        )
        assert out == "app"
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)


def test_dagster_has_the_pinned_release_and_the_chart_commands(refs):
    ref = refs["dagster-airgapped"]
    assert config(ref, "Entrypoint") == "null" and config(ref, "User") == '""'
    assert "80/tcp" in config(ref, "ExposedPorts")
    version = load_versions().images["dagster"].tag
    out = docker(
        "run",
        "--rm",
        ref,
        "sh",
        "-c",
        "dagster --version; command -v dagster-webserver; command -v dagster-daemon; "
        "python3 -c 'import dagster_postgres, dagster_k8s, psycopg2'",
        timeout=300,
    )
    assert version in out and "/usr/local/bin/dagster-webserver" in out and "/usr/local/bin/dagster-daemon" in out


def test_busybox_stand_in(refs):
    ref = refs["busybox-airgapped"]
    assert config(ref, "Cmd") == '["sh"]'
    assert (
        docker("run", "--rm", ref, "sh", "-c", "echo ok; test -x /bin/wget && test -x /bin/nc && echo tools")
        == "ok\ntools"
    )


def test_busybox_stand_in_runs_the_network_probe_of_the_test_library(refs):
    # The exact script probe pods run (testing.connectivity): Debian's busybox once segfaulted on it.
    ref = refs["busybox-airgapped"]
    serve = "mkdir -p /tmp/www && echo hi >/tmp/www/index.html && httpd -p 127.0.0.1:8080 -h /tmp/www"
    ok = docker("run", "--rm", "--network=none", ref, "sh", "-c",
                f"{serve}; {probe_script('http://127.0.0.1:8080/', 3)}")
    assert ok.splitlines()[-1] == "PROBE_OK"
    refused = subprocess.run(["docker", "run", "--rm", "--network=none", ref, "sh", "-c",
                              probe_script("http://127.0.0.1:8081/", 3)],
                             capture_output=True, text=True, timeout=120, check=False)
    assert refused.returncode == 1
    assert "PROBE_FAIL" in refused.stdout and "refused" in refused.stdout.lower()


def test_busybox_stand_in_probe_retries_until_the_server_answers(refs):
    # The allowed-client probe keeps trying inside one pod (a new pod's address reaches the policy late).
    ref = refs["busybox-airgapped"]
    late = "(sleep 2; mkdir -p /tmp/www && echo hi >/tmp/www/index.html && httpd -p 127.0.0.1:8080 -h /tmp/www) &"
    out = docker("run", "--rm", "--network=none", ref, "sh", "-c",
                 f"{late} {probe_script('http://127.0.0.1:8080/', 2, retry_for=20)}")
    last = out.splitlines()[-1]
    assert last.startswith("PROBE_OK after ") and last != "PROBE_OK after 1 attempt(s)", out
