"""The production files, checked without a Docker daemon (our build machines have none):
docker-compose.yml parsed and resolved with .env.example, the Dockerfile's stages, and
`docker compose config` when a Compose client is installed (it needs no daemon)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from sqlalchemy.engine import make_url

from server.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
DOCKERFILE = (ROOT / "Dockerfile").read_text()
_VARIABLE = re.compile(r"\$\{(\w+)(?::([?-])([^}]*))?\}")


def _example_env() -> dict[str, str]:
    env = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            env[name.strip()] = value.strip()
    return env


def _resolve(value: object, env: dict[str, str]) -> str:
    """Compose's interpolation of ${VAR}, ${VAR:-default} and ${VAR:?error}."""

    def one(match: re.Match[str]) -> str:
        name, kind, rest = match.groups()
        if env.get(name):
            return env[name]
        if kind == "?":
            raise KeyError(f"{name}: {rest}")
        return rest if kind == "-" else ""

    return _VARIABLE.sub(one, str(value))


def _environment(service: str, env: dict[str, str]) -> dict[str, str]:
    return {k: _resolve(v, env) for k, v in COMPOSE["services"][service]["environment"].items()}


def test_services_volumes_and_health_checks():
    services = COMPOSE["services"]
    assert set(services) == {"server", "postgres", "minio", "minio-init"}
    assert services["postgres"]["image"] == "postgres:16"
    assert services["server"]["build"] == "."
    assert set(COMPOSE["volumes"]) == {"server-data", "postgres-data", "minio-data"}
    mounts = {name: services[name]["volumes"] for name in ("server", "postgres", "minio")}
    assert mounts["postgres"] == ["postgres-data:/var/lib/postgresql/data"]
    assert mounts["minio"] == ["minio-data:/data"]
    assert mounts["server"] == ["server-data:/home/jebol/data"]
    for name in ("server", "postgres", "minio"):
        check = services[name]["healthcheck"]
        assert check["test"][0] in ("CMD", "CMD-SHELL") and check["interval"] and check["retries"]
    assert "/health/ready" in " ".join(services["server"]["healthcheck"]["test"])
    assert services["server"]["depends_on"] == {
        "postgres": {"condition": "service_healthy"},
        "minio": {"condition": "service_healthy"},
        "minio-init": {"condition": "service_completed_successfully"},
    }
    init = " ".join(services["minio-init"]["command"])
    assert "mc mb --ignore-existing" in init and "$$JEBOL_S3_BUCKET" in init


def test_server_environment_points_at_postgres_and_minio():
    env = _example_env()
    server = _environment("server", env)
    postgres = _environment("postgres", env)
    minio = _environment("minio", env)
    database = make_url(server["JEBOL_DATABASE_URL"])
    assert (database.host, database.port) == ("postgres", 5432)
    assert (database.username, database.password, database.database) == (
        postgres["POSTGRES_USER"],
        postgres["POSTGRES_PASSWORD"],
        postgres["POSTGRES_DB"],
    )
    assert server["JEBOL_S3_ENDPOINT"] == "minio:9000"
    assert (server["JEBOL_S3_ACCESS_KEY"], server["JEBOL_S3_SECRET_KEY"]) == (
        minio["MINIO_ROOT_USER"],
        minio["MINIO_ROOT_PASSWORD"],
    )
    assert server["JEBOL_S3_BUCKET"] == _environment("minio-init", env)["JEBOL_S3_BUCKET"]
    settings = Settings.from_env(server)  # the server reads this environment as it is
    assert settings.s3_secure is False and settings.log_format == "json"
    assert settings.admin_password and settings.secret_key


def test_every_variable_is_in_env_example_and_secrets_are_required():
    env = _example_env()
    text = (ROOT / "docker-compose.yml").read_text()
    used = {m.group(1) for m in _VARIABLE.finditer(text)}
    assert used <= set(env), sorted(used - set(env))
    required = {m.group(1) for m in _VARIABLE.finditer(text) if m.group(2) == "?"}
    assert {
        "POSTGRES_PASSWORD",
        "MINIO_ROOT_PASSWORD",
        "JEBOL_SECRET_KEY",
        "JEBOL_ADMIN_PASSWORD",
        "JEBOL_PUBLIC_URL",
    } <= required
    with pytest.raises(KeyError, match="POSTGRES_PASSWORD"):
        _environment("server", {k: v for k, v in env.items() if k != "POSTGRES_PASSWORD"})


def test_dockerfile_builds_assets_with_node_and_runs_as_a_user():
    stages = re.findall(r"^FROM (\S+)(?: AS (\w+))?", DOCKERFILE, re.MULTILINE)
    assert stages[0] == ("node:20-slim", "assets") and len(stages) == 3
    assert "RUN make assets" in DOCKERFILE  # the Makefile's own rule: one list of files
    assert "COPY --from=assets /src/server/static/vendor ./server/static/vendor" in DOCKERFILE
    runtime = DOCKERFILE.split(f"FROM {stages[2][0]}", 2)[2]
    assert re.search(r"^USER (?!root\b|0\b)\w+", runtime, re.MULTILINE)
    assert "node" not in runtime  # no Node at run time
    assert "/health/ready" in runtime.split("HEALTHCHECK", 1)[1]
    for source in re.findall(r"^COPY (?!--from)(.+) \S+$", DOCKERFILE, re.MULTILINE):
        for path in source.split():
            assert (ROOT / path).exists(), path
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert not {"server", "forms", "storage", "web", "Makefile", "README.md"} & set(ignored)
    assert "assets:" in (ROOT / "Makefile").read_text()


def _compose_client() -> list[str] | None:
    if (
        shutil.which("docker")
        and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0
    ):
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


def test_docker_compose_config_accepts_the_file(tmp_path):
    client = _compose_client()
    if client is None:
        pytest.skip("no Compose client (docker compose / docker-compose) installed")
    shutil.copy(ROOT / "docker-compose.yml", tmp_path / "docker-compose.yml")
    clean = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}
    missing = subprocess.run(
        [*client, "config"], cwd=tmp_path, env=clean, capture_output=True, text=True, timeout=60
    )
    assert missing.returncode != 0 and "POSTGRES_PASSWORD" in missing.stderr + missing.stdout
    shutil.copy(ROOT / ".env.example", tmp_path / ".env")
    result = subprocess.run(
        [*client, "config"], cwd=tmp_path, env=clean, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load(result.stdout)
    assert set(config["services"]) == {"server", "postgres", "minio", "minio-init"}
    server = config["services"]["server"]["environment"]
    assert "@postgres:5432/jebol" in server["JEBOL_DATABASE_URL"]
    assert server["JEBOL_S3_ENDPOINT"] == "minio:9000"
