"""deploy/: the Dockerfile, compose.yaml, the Kubernetes manifests, the systemd units and alerts.env.example,
checked offline (no container engine, no cluster): compose.yaml against the compose-spec schema vendored in
tests/data/, every manifest against kubernetes-validate's bundled schemas (strict), and every role and
``ALERTS_*`` variable they name against workers.service.ROLES and the settings model.

tests/data/compose-spec.json is schema/compose-spec.json of compose-spec/compose-spec (Apache-2.0:
tests/data/compose-spec.LICENSE), as check-jsonschema 0.39.0 vendors it; replace it with a newer copy to follow
the spec."""

from __future__ import annotations

import importlib.util
import json
import re
import shlex
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from alerts.settings import Settings, known_variables
from workers.service import ROLES

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"
K8S = DEPLOY / "k8s"
#: A Kubernetes version whose schemas kubernetes-validate bundles (1.30 and later releases of it do).
K8S_VERSION = "1.30.0"
#: Each role-process of the deployment and the roles it runs (compose service / Deployment suffix).
PROCESSES = {
    "evaluator": ["evaluate"],
    "dispatch": ["dispatch", "deliver"],
    "scheduler": ["schedule"],
    "poller": ["poll"],
    "http": ["http"],
    "slack": ["slack"],
}
ALERTS_VAR = re.compile(r"\bALERTS_[A-Z0-9_]*[A-Z0-9]\b")


def roles_of(args: list[str]) -> list[str]:
    """The roles of an ``alerts worker --role A --role B`` argument list (the entrypoint ``alerts`` left out)."""
    assert args[0] == "worker", args
    assert all(a == "--role" for a in args[1::2]) and len(args) % 2 == 1, args
    return args[2::2]


def unknown_variables_in(text: str) -> list[str]:
    return sorted(set(ALERTS_VAR.findall(text)) - known_variables())


# --- Dockerfile ----------------------------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of deploy/Dockerfile: continuation lines joined, comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in (DEPLOY / "Dockerfile").read_text("utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        word, _, rest = (pending + line).partition(" ")
        out.append((word.upper(), rest.strip()))
        pending = ""
    assert not pending, "a continuation line at the end of the Dockerfile"
    return out


def test_the_dockerfile_builds_in_one_stage_and_runs_slim_python_3_11_as_a_user_with_rules_in_a_volume() -> None:
    instructions = dockerfile_instructions()
    args = {}
    for word, rest in instructions:
        if word == "ARG" and "=" in rest:
            name, _, value = rest.partition("=")
            args[name] = value

    def expand(text: str) -> str:
        return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: args[m.group(1) or m.group(2)], text)

    stages = [expand(rest).split() for word, rest in instructions if word == "FROM"]
    assert len(stages) >= 2, stages
    assert len(stages[0]) == 3 and stages[0][1].upper() == "AS" and stages[0][2] == "builder", stages[0]
    runtime = stages[-1][0]
    assert re.fullmatch(r"python:3\.11-slim(-\w+)?", runtime), runtime
    copies = [rest for word, rest in instructions if word == "COPY" and "--from=" in rest]
    assert any("--from=builder" in c for c in copies), "the runtime stage copies the builder's venv"
    last_from = max(i for i, (word, _) in enumerate(instructions) if word == "FROM")
    runtime_stage = instructions[last_from:]
    users = [rest for word, rest in runtime_stage if word == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0"), users
    volumes = [json.loads(rest) if rest.startswith("[") else rest.split() for word, rest in runtime_stage
               if word == "VOLUME"]
    assert ["/rules"] in volumes, volumes
    env = " ".join(rest for word, rest in runtime_stage if word == "ENV")
    assert "ALERTS_RULES_DIR=/rules" in env.split(), env
    entrypoints = [rest for word, rest in runtime_stage if word == "ENTRYPOINT"]
    assert entrypoints and json.loads(entrypoints[-1]) == ["alerts"], entrypoints
    assert unknown_variables_in((DEPLOY / "Dockerfile").read_text("utf-8")) == []


def test_the_docker_build_context_holds_what_the_builder_copies() -> None:
    """.dockerignore excludes everything but what the builder stage copies (and the build needs)."""
    allowed = {line[1:].rstrip("/") for line in (REPO / ".dockerignore").read_text("utf-8").splitlines()
               if line.startswith("!")}
    sources = []
    for word, rest in dockerfile_instructions():
        if word == "COPY" and "--from=" not in rest:
            sources += rest.split()[:-1]
    assert sources
    assert {s.rstrip("/") for s in sources} <= allowed, (sources, allowed)
    for s in sources:
        assert (REPO / s).exists(), s


# --- compose.yaml ----------------------------------------------------------------------------------------------

COMPOSE_ENV = {"REDIS_PASSWORD": "s3cret", "ALERTS_INGEST_TOKEN": "t0ken", "RULES_PATH": "/srv/alerts-rules"}
_INTERPOLATION = re.compile(r"\$\$|\$\{(\w+)(?:(:?[-?])([^}]*))?\}|\$(\w+)")


def interpolate(value: Any, env: Mapping[str, str]) -> Any:
    """Compose's variable interpolation (``${VAR}``, ``${VAR:-default}``, ``${VAR:?error}``, ``$$``)."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def one(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name, op, arg = m.group(1) or m.group(4), m.group(2), m.group(3)
        have = env.get(name)
        unset = have is None or (op is not None and op.startswith(":") and have == "")
        if op and op.endswith("?") and unset:
            raise LookupError(f"{name}: {arg}")
        if op and op.endswith("-") and unset:
            return str(arg)
        return have or ""

    return _INTERPOLATION.sub(one, value)


def compose_raw() -> dict[str, Any]:
    data = yaml.safe_load((DEPLOY / "compose.yaml").read_text("utf-8"))  # merge keys (<<) resolved
    assert isinstance(data, dict)
    return data


def compose() -> dict[str, Any]:
    data = interpolate(compose_raw(), COMPOSE_ENV)
    assert isinstance(data, dict)
    return data


def test_compose_yaml_follows_the_compose_spec() -> None:
    schema = json.loads((REPO / "tests/data/compose-spec.json").read_text("utf-8"))
    validator = jsonschema.Draft202012Validator(schema)
    for data in (compose_raw(), compose()):
        errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(data)]
        assert errors == []


def test_compose_needs_the_redis_password_the_ingest_token_and_the_rules() -> None:
    for name in COMPOSE_ENV:
        with pytest.raises(LookupError, match=name):
            interpolate(compose_raw(), {k: v for k, v in COMPOSE_ENV.items() if k != name})


def test_compose_runs_redis_7_persistent_with_a_password() -> None:
    redis = compose()["services"]["redis"]
    assert re.fullmatch(r"redis:7(\.\d+)*(-\w+)?", redis["image"]), redis["image"]
    command = redis["command"] if isinstance(redis["command"], list) else shlex.split(redis["command"])
    options = dict(zip(command[1::2], command[2::2], strict=True))
    assert command[0] == "redis-server"
    assert options["--appendonly"] == "yes"
    assert options["--maxmemory-policy"] == "noeviction"
    assert options["--requirepass"] == COMPOSE_ENV["REDIS_PASSWORD"]
    assert any(str(v).endswith(":/data") for v in redis["volumes"]), "the data survives the container"


def test_compose_runs_each_role_as_its_own_service_against_that_redis() -> None:
    services = compose()["services"]
    for name, roles in PROCESSES.items():
        service = services[name]
        assert roles_of(service["command"]) == roles, name
        assert set(roles) <= set(ROLES)
        env = service["environment"]
        assert env["ALERTS_REDIS_URL"] == f"redis://:{COMPOSE_ENV['REDIS_PASSWORD']}@redis:6379/0", name
        assert env["ALERTS_RULES_DIR"] == "/rules"
        assert any(str(v).endswith(":/rules:ro") for v in service["volumes"]), name
        assert service["depends_on"]["redis"]["condition"] == "service_healthy"
    assert set(services) == {"redis", *PROCESSES}


def test_compose_http_listens_on_8080_beyond_loopback_with_a_token_and_the_poller_gets_its_sources_file() -> None:
    http = compose()["services"]["http"]
    assert http["environment"]["ALERTS_HTTP_HOST"] == "0.0.0.0"
    assert str(http["environment"].get("ALERTS_HTTP_PORT", 8080)) == "8080"
    assert http["environment"]["ALERTS_INGEST_TOKEN"] == COMPOSE_ENV["ALERTS_INGEST_TOKEN"]
    assert [str(p).rsplit(":", 1)[1] for p in http["ports"]] == ["8080"]
    poller = compose()["services"]["poller"]
    sources = poller["environment"]["ALERTS_SOURCES_FILE"]
    assert sources in [v["target"] for v in poller["volumes"] if isinstance(v, dict)], poller["volumes"]


def test_compose_names_only_real_settings() -> None:
    text = (DEPLOY / "compose.yaml").read_text("utf-8")
    assert ALERTS_VAR.search(text)
    assert unknown_variables_in(text) == []


# --- Kubernetes ------------------------------------------------------------------------------------------------


def manifests() -> Iterator[tuple[str, dict[str, Any]]]:
    for path in sorted(K8S.rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text("utf-8")):
            if doc is not None:
                yield f"{path.relative_to(K8S)}: {doc['kind']} {doc['metadata']['name']}", doc


def deployments() -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for _, doc in manifests() if doc["kind"] == "Deployment"}


@pytest.mark.parametrize(("name", "doc"), list(manifests()), ids=[name for name, _ in manifests()])
def test_each_kubernetes_manifest_is_valid(name: str, doc: dict[str, Any]) -> None:
    try:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        pytest.fail(f"{name}: {exc.message}")
    assert unknown_variables_in(json.dumps(doc)) == [], name


def test_a_deployment_per_role_process_non_root_with_resources_rules_and_secrets() -> None:
    found = deployments()
    assert set(found) == {f"alerts-{name}" for name in PROCESSES}
    for name, roles in PROCESSES.items():
        spec = found[f"alerts-{name}"]["spec"]
        assert spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()
        pod = spec["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        (container,) = pod["containers"]
        assert roles_of(container["args"]) == roles, name
        assert set(roles) <= set(ROLES)
        for kind in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(container["resources"][kind]), (name, kind)
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        volumes = {v["name"]: v for v in pod["volumes"]}
        (rules,) = [m for m in container["volumeMounts"] if m["mountPath"] == "/rules"]
        assert volumes[rules["name"]]["configMap"]["name"] == "alerts-rules", name
        sources = {next(iter(s.values()))["name"] for s in container["envFrom"]}
        assert {"alerts-secrets", "alerts-settings"} <= sources, name
    assert found["alerts-poller"]["spec"]["template"]["spec"]["containers"][0]["env"] == [
        {"name": "ALERTS_SOURCES_FILE", "value": "/etc/alerts/sources/sources.yaml"}]


def test_the_settings_say_where_the_rules_are_and_the_secret_holds_the_secrets() -> None:
    docs = {(doc["kind"], doc["metadata"]["name"]): doc for _, doc in manifests()}
    assert docs["ConfigMap", "alerts-settings"]["data"]["ALERTS_RULES_DIR"] == "/rules"
    secret = docs["Secret", "alerts-secrets"]["stringData"]
    assert {"ALERTS_REDIS_URL", "ALERTS_SLACK_BOT_TOKEN", "ALERTS_INGEST_TOKEN"} <= set(secret)
    secrets = {name for name, f in Settings.model_fields.items() if "SecretStr" in repr(f.annotation)}
    configured = {k.removeprefix("ALERTS_").lower() for k in docs["ConfigMap", "alerts-settings"]["data"]}
    assert not configured & secrets, "secrets belong in the Secret, not the ConfigMap"


def test_one_scheduler_guarded_by_its_redis_lock() -> None:
    assert deployments()["alerts-scheduler"]["spec"]["replicas"] == 1
    text = (K8S / "scheduler.yaml").read_text("utf-8")
    comment = " ".join(line.strip("# ") for line in text.splitlines() if line.lstrip().startswith("#"))
    assert "replicas: 1" in comment and "Redis lock" in comment, comment


def test_the_http_deployment_is_probed_and_served_on_8080() -> None:
    (container,) = deployments()["alerts-http"]["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["ALERTS_HTTP_HOST"] == "0.0.0.0"
    assert env.get("ALERTS_HTTP_PORT", "8080") == "8080"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}

    def port(probe: dict[str, Any]) -> int:
        p = probe["httpGet"]["port"]
        return int(ports[p] if isinstance(p, str) else p)

    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert port(container["livenessProbe"]) == port(container["readinessProbe"]) == 8080
    (service,) = [doc for _, doc in manifests() if doc["kind"] == "Service"]
    labels = deployments()["alerts-http"]["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    (sp,) = service["spec"]["ports"]
    assert sp["port"] == 8080 and (ports.get(sp["targetPort"]) or sp["targetPort"]) == 8080


# --- systemd ---------------------------------------------------------------------------------------------------


def unit(name: str) -> dict[str, list[str]]:
    """``Section.Key`` -> its values, in order (systemd allows a key more than once)."""
    out: dict[str, list[str]] = {}
    section = ""
    for line in (DEPLOY / "systemd" / name).read_text("utf-8").splitlines():
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
        elif line and not line.startswith(("#", ";")):
            key, _, value = line.partition("=")
            out.setdefault(f"{section}.{key.strip()}", []).append(value.strip())
    return out


@pytest.mark.parametrize("name", ["alerts.service", "alerts-worker@.service"])
def test_the_units_run_as_the_alerts_user_with_a_state_directory(name: str) -> None:
    u = unit(name)
    assert u["Service.User"] == ["alerts"]
    assert u["Service.StateDirectory"] == ["alerts"]
    assert u["Service.EnvironmentFile"] == ["/etc/alerts/alerts.env"]
    assert u["Service.KillSignal"] == ["SIGTERM"]
    assert u["Install.WantedBy"] == ["multi-user.target"]
    values = [v.split("=", 1)[0] for v in u["Service.Environment"]]
    assert sorted(set(values) - known_variables()) == []
    assert unknown_variables_in((DEPLOY / "systemd" / name).read_text("utf-8")) == []


def systemd_unescape(text: str, instance: str) -> str:
    """The specifiers and escapes the worker unit's ExecStart uses: %i, %% and $$."""
    return re.sub(r"%[i%]|\$\$", lambda m: {"%i": instance, "%%": "%", "$$": "$"}[m.group(0)], text)


@pytest.mark.parametrize(("instance", "role"), [(r, r) for r in ROLES] + [("evaluate-2", "evaluate"),
                                                                            ("deliver-3", "deliver")])
def test_a_worker_instance_runs_the_role_it_is_named_after(instance: str, role: str) -> None:
    (exec_start,) = unit("alerts-worker@.service")["Service.ExecStart"]
    argv = shlex.split(systemd_unescape(exec_start, instance))
    assert argv[0] == "/bin/sh"
    argv = [a.replace("/opt/alerts/.venv/bin/alerts", "echo") for a in argv]
    out = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=10).stdout
    assert out.split() == ["worker", "--role", role]


def test_the_all_in_one_unit_runs_everything() -> None:
    assert unit("alerts.service")["Service.ExecStart"] == ["/opt/alerts/.venv/bin/alerts run"]


# --- alerts.env.example and the README -------------------------------------------------------------------------


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_env_example", DEPLOY / "gen_env_example.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_alerts_env_example_is_generated_from_the_settings() -> None:
    expected = generator().render()
    assert (DEPLOY / "alerts.env.example").read_text("utf-8") == expected, (
        "deploy/alerts.env.example is out of date with alerts/settings.py: regenerate it with "
        ".venv/bin/python deploy/gen_env_example.py")


def test_alerts_env_example_has_every_setting_with_its_default_and_secrets_empty() -> None:
    text = generator().render()
    lines = dict(line[1:].split("=", 1) for line in text.splitlines() if line.startswith("#ALERTS_"))
    assert set(lines) == known_variables()
    for name, field in Settings.model_fields.items():
        value = lines[f"ALERTS_{name.upper()}"]
        if "SecretStr" in repr(field.annotation):
            assert value == "", name
        elif field.description:
            first = " ".join(field.description.split())[:40].rsplit(" ", 1)[0]
            assert first in " ".join(text.replace("\n# ", " ").split()), name
    assert lines["ALERTS_STREAM_SHARDS"] == str(Settings.model_fields["stream_shards"].default)
    assert lines["ALERTS_SMTP_STARTTLS"] == "true"
    assert lines["ALERTS_DELIVERY_RETRY_INTERVALS_SECONDS"] == "[5,30,120,600,1800]"
    # each value, uncommented, is read back as the default
    values = {k.removeprefix("ALERTS_").lower(): v for k, v in lines.items() if v != ""}
    read_back = Settings(_env_file=None, **values)  # type: ignore[call-arg]
    assert read_back == Settings(_env_file=None)  # type: ignore[call-arg]



def test_the_deploy_readme_names_only_real_roles_and_files() -> None:
    text = (DEPLOY / "README.md").read_text("utf-8")
    roles = set(re.findall(r"--role[ =]([a-z]+)", text)) | set(re.findall(r"alerts-worker@([a-z]+)", text))
    assert roles and roles <= set(ROLES), roles
    operators = {"deploy/.env", "deploy/alerts.env", "deploy/sources.yaml"}  # files the operator writes
    for path in set(re.findall(r"\bdeploy/[\w./@-]+\w", text)) - operators:
        assert (REPO / path).exists(), path
    for link in re.findall(r"\]\(([^)#]+)\)", text):
        assert (DEPLOY / link).exists(), link
