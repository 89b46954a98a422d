"""The production-like stack's files agree with each other and with what the server needs.

Docker does not run in the test environment, so these tests parse: ``docker-compose.yml``
(with ``yaml.safe_load``, anchors resolved), ``Dockerfile``, ``deploy/nginx.conf`` and the
service table in ``README.md``. They take milliseconds and start nothing.
"""

from __future__ import annotations

import functools
import itertools
import json
import re
import shlex
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
COMPOSE = ROOT / "docker-compose.yml"
NGINX_CONF = ROOT / "deploy" / "nginx.conf"
DEPLOYMENT_DOC = ROOT / "README.md"
DEPLOYMENT_FILES = (DOCKERFILE, DOCKERIGNORE, COMPOSE, NGINX_CONF, DEPLOYMENT_DOC)

WEBSOCKET_PATHS = ("/v1/interview", "/v1/admin/watch")
HTTP_PATHS = ("/healthz", "/readyz", "/v1/sessions", "/v1/me/export", "/admin")
SOCKET_TIMEOUT_S = 3600


# --- loaders -------------------------------------------------------------------------------


@functools.cache
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(data, dict), "docker-compose.yml is not a mapping"
    assert isinstance(data.get("services"), dict), "docker-compose.yml has no services"
    return data


def services() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose()["services"]
    return found


@functools.cache
def dockerfile_instructions() -> tuple[tuple[str, str], ...]:
    """(INSTRUCTION, arguments) pairs, with line continuations joined and comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, args = (pending + line).partition(" ")
        pending = ""
        instructions.append((keyword.upper(), args.strip()))
    assert not pending, "Dockerfile ends inside a line continuation"
    return tuple(instructions)


def dockerfile_args(keyword: str) -> list[str]:
    return [args for kw, args in dockerfile_instructions() if kw == keyword]


@functools.cache
def nginx_conf() -> str:
    """deploy/nginx.conf without comments."""
    text = NGINX_CONF.read_text(encoding="utf-8")
    return "\n".join(line.split("#", 1)[0] for line in text.splitlines())


def doc_table_services() -> dict[str, str]:
    """service name -> "image or build" cell, from the table in README.md."""
    lines = DEPLOYMENT_DOC.read_text(encoding="utf-8").splitlines()
    header_row = ["service", "image or build", "what it does"]
    starts = [i for i, line in enumerate(lines) if line.lstrip().startswith("|")]
    heads = [i for i in starts if _cells(lines[i]) == header_row]
    assert heads, "README.md has no `service | image or build | what it does` table"
    rows: dict[str, str] = {}
    for line in lines[heads[0] + 2 :]:
        if not line.lstrip().startswith("|"):
            break
        cells = _cells(line)
        rows[cells[0].strip("`")] = cells[1]
    return rows


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


# --- compose helpers -----------------------------------------------------------------------


def builds_our_dockerfile(service: dict[str, Any]) -> bool:
    build = service.get("build")
    if build is None:
        return False
    if isinstance(build, str):
        context, dockerfile = build, "Dockerfile"
    else:
        context, dockerfile = build.get("context", "."), build.get("dockerfile", "Dockerfile")
    return (ROOT / context / dockerfile).resolve() == DOCKERFILE.resolve()


def replicas() -> dict[str, dict[str, Any]]:
    """The services that build our Dockerfile and run ``mentara serve``."""
    return {
        name: svc
        for name, svc in services().items()
        if builds_our_dockerfile(svc) and runs_mentara_serve(effective_argv(svc))
    }


def runners() -> dict[str, dict[str, Any]]:
    """The services that build our Dockerfile and run ``mentara runner``."""
    return {
        name: svc
        for name, svc in services().items()
        if builds_our_dockerfile(svc) and runs_mentara(effective_argv(svc), "runner")
    }


def _argv(value: str | list[str] | None) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        return [str(part) for part in value]
    return shlex.split(value)


def image_argv(keyword: str) -> list[str]:
    """The image's CMD or ENTRYPOINT (the last one wins, as in Docker)."""
    found = dockerfile_args(keyword)
    if not found:
        return []
    args = found[-1]
    return json.loads(args) if args.startswith("[") else ["/bin/sh", "-c", args]


def effective_argv(service: dict[str, Any]) -> list[str]:
    """What the container runs: entrypoint + command, each from compose or else the image."""
    entrypoint = service.get("entrypoint")
    command = service.get("command")
    return (_argv(entrypoint) if entrypoint is not None else image_argv("ENTRYPOINT")) + (
        _argv(command) if command is not None else image_argv("CMD")
    )


def runs_mentara(argv: list[str], command: str) -> bool:
    return any(
        Path(argv[i]).name == "mentara" and argv[i + 1] == command for i in range(len(argv) - 1)
    )


def runs_mentara_serve(argv: list[str]) -> bool:
    return runs_mentara(argv, "serve")


def serve_port(argv: list[str]) -> int:
    for flag, value in itertools.pairwise(argv):
        if flag == "--port":
            return int(value)
    return 8000


def environment(service: dict[str, Any]) -> dict[str, str | None]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        pairs = (item.partition("=") for item in env)
        return {key: (value if sep else None) for key, sep, value in pairs}
    return {key: None if value is None else str(value) for key, value in env.items()}


def healthy_dependencies(service: dict[str, Any]) -> set[str]:
    depends = service.get("depends_on") or {}
    if isinstance(depends, list):
        return set()
    return {
        name
        for name, spec in depends.items()
        if isinstance(spec, dict) and spec.get("condition") == "service_healthy"
    }


def bind_mounts(service: dict[str, Any]) -> list[tuple[Path, str]]:
    mounts: list[tuple[Path, str]] = []
    for volume in service.get("volumes") or []:
        if isinstance(volume, str):
            source, _, rest = volume.partition(":")
            target = rest.split(":", 1)[0]
        else:
            source, target = volume.get("source", ""), volume.get("target", "")
        if source.startswith((".", "/")):
            mounts.append(((ROOT / source).resolve(), target))
    return mounts


def networks(service: dict[str, Any]) -> set[str]:
    """The compose networks a service joins (``default`` when it names none)."""
    joined = service.get("networks")
    if not joined:
        return {"default"}
    return set(joined)


def service_by_image(prefix: str) -> set[str]:
    return {
        name
        for name, svc in services().items()
        if str(svc.get("image", "")).split(":", 1)[0] == prefix
    }


# --- nginx helpers -------------------------------------------------------------------------


def directives(block: str) -> list[list[str]]:
    """The simple directives of a block body without nested blocks, as token lists."""
    return [stmt.split() for stmt in block.split(";") if stmt.strip()]


def upstreams() -> dict[str, str]:
    return {
        m.group(1): m.group(2)
        for m in re.finditer(r"\bupstream\s+(\S+)\s*\{([^{}]*)\}", nginx_conf())
    }


def upstream_servers(body: str) -> dict[str, int]:
    return {
        m.group(1): int(m.group(2))
        for m in re.finditer(r"^\s*server\s+([A-Za-z0-9_.-]+):(\d+)\b", body, re.MULTILINE)
    }


def locations() -> list[tuple[str, str, str]]:
    """(modifier, pattern, body) of each location block, in file order."""
    pattern = r"\blocation\s+(?:(=|~\*|~|\^~)\s+)?(\S+)\s*\{([^{}]*)\}"
    return [(m.group(1) or "", m.group(2), m.group(3)) for m in re.finditer(pattern, nginx_conf())]


def location_for(uri: str) -> list[list[str]]:
    """The directives of the location nginx picks for ``uri`` (its documented order)."""
    blocks = locations()
    for modifier, pattern, body in blocks:
        if modifier == "=" and pattern == uri:
            return directives(body)
    prefixes = [b for b in blocks if b[0] in ("", "^~") and uri.startswith(b[1])]
    longest = max(prefixes, key=lambda b: len(b[1]), default=None)
    if longest is not None and longest[0] == "^~":
        return directives(longest[2])
    for modifier, pattern, body in blocks:
        flags = re.IGNORECASE if modifier == "~*" else 0
        if modifier in ("~", "~*") and re.search(pattern, uri, flags):
            return directives(body)
    assert longest is not None, f"no nginx location matches {uri}"
    return directives(longest[2])


def seconds(value: str) -> int:
    units = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
    match = re.fullmatch(r"(\d+)([smhd]?)", value)
    assert match, f"not an nginx time: {value}"
    return int(match.group(1)) * units[match.group(2)]


def header(block: list[list[str]], name: str) -> str | None:
    for d in block:
        if d[0] == "proxy_set_header" and d[1].lower() == name.lower():
            return " ".join(d[2:])
    return None


def directive_args(block: list[list[str]], name: str) -> list[str] | None:
    for d in block:
        if d[0] == name:
            return d[1:]
    return None


# --- docs and compose ----------------------------------------------------------------------


def test_docs_section_heading() -> None:
    text = DEPLOYMENT_DOC.read_text(encoding="utf-8")
    assert "## Production-like stack" in text.splitlines()


def test_docs_table_lists_exactly_the_compose_services() -> None:
    documented = doc_table_services()
    assert set(documented) == set(services())
    for name, cell in documented.items():
        svc = services()[name]
        if builds_our_dockerfile(svc):
            assert "Dockerfile" in cell, f"{name}: table should say it builds the Dockerfile"
        else:
            assert str(svc["image"]) in cell, f"{name}: table should name image {svc['image']}"


def test_at_least_two_replicas_build_the_dockerfile_and_run_mentara_serve() -> None:
    found = replicas()
    assert len(found) >= 2, f"replicas building the Dockerfile: {sorted(found)}"
    for name, svc in found.items():
        assert runs_mentara_serve(effective_argv(svc)), f"{name} does not run `mentara serve`"


def test_every_service_built_from_the_dockerfile_is_a_replica_or_the_runner() -> None:
    built = {name for name, svc in services().items() if builds_our_dockerfile(svc)}
    assert built == set(replicas()) | set(runners())
    assert len(runners()) == 1, f"expected one runner service, found {sorted(runners())}"


def test_every_service_has_a_healthcheck() -> None:
    for name, svc in services().items():
        check = svc.get("healthcheck")
        assert isinstance(check, dict), f"{name} has no healthcheck"
        assert not check.get("disable"), f"{name} disables its healthcheck"
        test = check.get("test")
        assert test, f"{name} healthcheck has no test"
        assert test != ["NONE"], f"{name} healthcheck is NONE"


def test_replicas_are_ready_only_with_their_backing_services() -> None:
    postgres, redis = service_by_image("postgres"), service_by_image("redis")
    assert postgres, "no postgres service"
    assert redis, "no redis service"
    for name, svc in replicas().items():
        env = environment(svc)
        database, cache = urlsplit(env["DATABASE_URL"] or ""), urlsplit(env["REDIS_URL"] or "")
        assert database.scheme in ("postgresql", "postgres"), name
        assert database.hostname in postgres, f"{name}: DATABASE_URL names no postgres service"
        assert cache.scheme == "redis", name
        assert cache.hostname in redis, f"{name}: REDIS_URL names no redis service"
        assert {database.hostname, cache.hostname} <= healthy_dependencies(svc), name
        assert "/readyz" in " ".join(_argv(svc["healthcheck"]["test"])), name
        assert svc.get("restart") in ("always", "unless-stopped", "on-failure"), name
        assert seconds(str(svc.get("stop_grace_period", "10s"))) >= 20, name


def test_jwt_secret_must_be_supplied() -> None:
    for name, svc in replicas().items():
        secret = environment(svc).get("MENTARA_JWT_SECRET") or ""
        assert re.fullmatch(r"\$\{MENTARA_JWT_SECRET:\?[^}]+\}", secret), name


# --- the code runner: candidate code away from secrets --------------------------------------

# What Docker must allow for bubblewrap in a container (see docker-compose.yml): unprivileged
# user namespaces and mounts (seccomp), mount (AppArmor) and a fresh /proc (systempaths).
SANDBOX_OPTIONS = {"seccomp=unconfined", "apparmor=unconfined", "systempaths=unconfined"}
SECRET_ENV = {
    "DATABASE_URL",
    "REDIS_URL",
    "MENTARA_JWT_SECRET",
    "ANTHROPIC_API_KEY",
    "MENTARA_REVENUECAT_WEBHOOK_SECRET",
    "POSTGRES_PASSWORD",
}


def runner_service() -> tuple[str, dict[str, Any]]:
    [(name, svc)] = runners().items()
    return name, svc


def runner_port() -> int:
    _, svc = runner_service()
    for flag, value in itertools.pairwise(effective_argv(svc)):
        if flag == "--listen":
            host, _, port = value.rpartition(":")
            assert host == "0.0.0.0", "the runner must listen on the compose network"
            return int(port)
    raise AssertionError("the runner has no --listen")


def confined(service: dict[str, Any]) -> tuple[set[str], set[str]]:
    """(security options, dropped capabilities) of a service, as written."""
    return set(service.get("security_opt") or []), set(service.get("cap_drop") or [])


def test_the_runner_holds_no_secret() -> None:
    from server.runner_service import runner_environment

    name, svc = runner_service()
    env = environment(svc)
    assert not set(env) & SECRET_ENV, f"{name} has server secrets: {set(env) & SECRET_ENV}"
    # Nothing that `mentara runner` itself would drop from its environment.
    assert runner_environment({k: v or "" for k, v in env.items()}).keys() == env.keys()
    token = env.get("MENTARA_RUNNER_TOKEN") or ""
    assert re.fullmatch(r"\$\{MENTARA_RUNNER_TOKEN:\?[^}]+\}", token), name
    assert not svc.get("env_file"), f"{name} must not read an env file"
    assert not svc.get("volumes"), f"{name} mounts nothing: no data folder, no secrets"
    assert not svc.get("secrets"), name


def test_the_runner_has_only_the_security_options_the_sandbox_needs() -> None:
    name, svc = runner_service()
    options, dropped = confined(svc)
    assert options == SANDBOX_OPTIONS | {"no-new-privileges:true"}, options
    assert dropped == {"ALL"}
    assert not svc.get("cap_add"), f"{name} adds capabilities"
    assert not svc.get("privileged"), f"{name} is privileged"
    user = str(svc.get("user") or dockerfile_args("USER")[-1]).split(":")[0]
    assert user not in ("root", "0"), f"{name} runs as root"
    assert svc.get("read_only") is True, f"{name} has a writable root file system"
    assert int(svc.get("pids_limit", 0)) > 0, f"{name} has no process limit"
    assert svc.get("mem_limit"), f"{name} has no memory limit"
    assert svc.get("init") is True, f"{name} needs an init to reap what sandboxes leave"
    assert not svc.get("ports"), name


def test_the_runner_is_reachable_only_from_the_replicas() -> None:
    name, svc = runner_service()
    joined = networks(svc)
    assert "default" not in joined
    for network in joined:
        assert (compose().get("networks") or {}).get(network, {}).get("internal") is True, (
            f"{name}: network {network} is not internal (it would have a route out)"
        )
    backing = service_by_image("postgres") | service_by_image("redis") | {"lb"}
    for other in backing:
        assert not networks(services()[other]) & joined, f"{name} can reach {other}"


def test_replicas_keep_their_confinement_and_use_the_runner() -> None:
    runner, _ = runner_service()
    _, runner_svc = runner_service()
    for name, svc in replicas().items():
        options, dropped = confined(svc)
        assert "no-new-privileges:true" in options, name
        assert not options & SANDBOX_OPTIONS, f"{name} loosens its confinement"
        assert dropped == {"ALL"}, name
        assert not svc.get("cap_add"), name
        env = environment(svc)
        url = urlsplit(env.get("MENTARA_RUNNER_URL") or "")
        assert (url.scheme, url.hostname, url.port) == ("tcp", runner, runner_port()), name
        assert env.get("MENTARA_RUNNER_TOKEN") == environment(runner_svc)["MENTARA_RUNNER_TOKEN"]
        assert runner in healthy_dependencies(svc), name
        assert networks(svc) & networks(runner_svc), f"{name} cannot reach {runner}"


def test_lb_mounts_nginx_conf_and_waits_for_every_replica() -> None:
    lb = services()["lb"]
    assert (NGINX_CONF.resolve(), "/etc/nginx/nginx.conf") in bind_mounts(lb)
    assert set(replicas()) <= healthy_dependencies(lb)


def test_only_the_load_balancer_publishes_ports() -> None:
    published = {name for name, svc in services().items() if svc.get("ports")}
    assert published == {"lb"}


# --- nginx ---------------------------------------------------------------------------------


def test_nginx_upstream_proxies_to_every_replica_without_stickiness() -> None:
    groups = upstreams()
    assert len(groups) == 1, f"expected one upstream block, found {sorted(groups)}"
    [(_, body)] = groups.items()
    expected = {name: serve_port(effective_argv(svc)) for name, svc in replicas().items()}
    assert upstream_servers(body) == expected
    kinds = {d[0] for d in directives(body)}
    assert "least_conn" in kinds
    assert not kinds & {"ip_hash", "hash", "sticky"}, "replicas need no sticky sessions"


def test_nginx_upgrades_websockets_on_long_unbuffered_connections() -> None:
    assert re.search(r"\bmap\s+\$http_upgrade\s+\$connection_upgrade\s*\{", nginx_conf())
    [upstream] = upstreams()
    for path in WEBSOCKET_PATHS:
        block = location_for(path)
        assert directive_args(block, "proxy_pass") == [f"http://{upstream}"], path
        assert directive_args(block, "proxy_http_version") == ["1.1"], path
        assert header(block, "Upgrade") == "$http_upgrade", path
        assert header(block, "Connection") == "$connection_upgrade", path
        for timeout in ("proxy_read_timeout", "proxy_send_timeout"):
            setting = directive_args(block, timeout)
            assert setting, f"{path}: no {timeout}"
            assert seconds(setting[0]) >= SOCKET_TIMEOUT_S, f"{path}: {timeout} too short"
        assert directive_args(block, "proxy_buffering") == ["off"], path


@pytest.mark.parametrize("path", WEBSOCKET_PATHS + HTTP_PATHS)
def test_nginx_proxies_with_forwarding_headers(path: str) -> None:
    [upstream] = upstreams()
    block = location_for(path)
    assert directive_args(block, "proxy_pass") == [f"http://{upstream}"]
    assert directive_args(block, "proxy_http_version") == ["1.1"]
    assert header(block, "Host")
    assert header(block, "X-Forwarded-For") == "$proxy_add_x_forwarded_for"
    assert header(block, "X-Forwarded-Proto")


def test_nginx_keeps_metrics_private() -> None:
    block = location_for("/metrics")
    hidden = directive_args(block, "return") in (["404"], ["403"], ["444"])
    denied = ["deny", "all"] in block
    assert hidden or denied, "/metrics is reachable through the load balancer"


def test_nginx_limits_request_bodies() -> None:
    assert re.search(r"^\s*client_max_body_size\s+\d+[kKmM]?\s*;", nginx_conf(), re.MULTILINE)


# --- Dockerfile ----------------------------------------------------------------------------


def test_dockerfile_installs_locked_dependencies_before_the_source() -> None:
    instructions = dockerfile_instructions()
    assert dockerfile_args("FROM")[0].startswith("python:3.11-slim")
    runs = [(i, args) for i, (kw, args) in enumerate(instructions) if kw == "RUN"]
    lock_install = [
        i for i, args in runs if re.search(r"pip install .*-r requirements\.lock", args)
    ]
    assert lock_install, "no `pip install -r requirements.lock`"
    lock_copy = [
        i
        for i, (kw, args) in enumerate(instructions)
        if kw == "COPY" and "requirements.lock" in args
    ]
    assert lock_copy, "requirements.lock is not copied in"
    assert lock_copy[0] < lock_install[0]
    source_copies = [
        i
        for i, (kw, args) in enumerate(instructions)
        if kw == "COPY" and re.search(r"\b(server|protocol|scoring)/?\b|^\.\s", args)
    ]
    assert source_copies, "the source is not copied in"
    assert lock_install[0] < min(source_copies), "the dependency layer must come first"
    project_install = [i for i, args in runs if "pip install --no-deps" in args]
    assert project_install, "no `pip install --no-deps .`"
    assert max(source_copies) < project_install[0]


def test_dockerfile_installs_the_runtime_lock_alone_and_the_packages_that_serve() -> None:
    """The image is the runtime (tests/test_locks.py checks the lock): no extra's lock, no
    load harness, no benchmark; the runner service runs the same image."""
    installs = [args for args in dockerfile_args("RUN") if "pip install" in args]
    locks = [lock for args in installs for lock in re.findall(r"-r\s+(\S+)", args)]
    assert locks == ["requirements.lock"]
    copied = " ".join(dockerfile_args("COPY"))
    assert not re.search(r"requirements-\w+\.lock", copied)
    for package in ("loadtest", "bench", "tests"):
        assert not re.search(rf"(^|\s){package}/?(\s|$)", copied), f"{package}/ is copied in"
    assert not re.search(r"(^|\s)\.\s", copied), "COPY . would bring everything in"


def test_dockerfile_runs_mentara_serve_unprivileged_with_a_healthcheck() -> None:
    cmd = image_argv("CMD")
    assert runs_mentara_serve(cmd), f"CMD runs {cmd}"
    assert "0.0.0.0" in cmd
    assert serve_port(cmd) == 8000
    assert "8000" in " ".join(dockerfile_args("EXPOSE")).split()
    users = dockerfile_args("USER")
    assert users, "the image runs as root"
    assert users[-1].split(":")[0] not in ("root", "0")
    checks = dockerfile_args("HEALTHCHECK")
    assert checks, "no HEALTHCHECK"
    assert "/healthz" in checks[-1]


def test_dockerfile_installs_the_sandbox_and_node() -> None:
    installs = " ".join(args for args in dockerfile_args("RUN") if "apt-get install" in args)
    for package in ("bubblewrap", "nodejs"):
        assert re.search(rf"\b{package}\b", installs), f"the image does not install {package}"
    assert "--no-install-recommends" in installs
    assert "/var/lib/apt/lists" in installs, "the apt lists stay in the image"


def test_dockerignore_keeps_local_state_out_of_the_context() -> None:
    patterns = {
        line.strip().strip("/").removeprefix("**/")
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    for needed in (".venv", ".mentara", ".git", "__pycache__", ".pytest_cache", ".mypy_cache"):
        assert needed in patterns, f".dockerignore misses {needed}"


# --- no outside hosts ----------------------------------------------------------------------

# Fragments of package registry names, so that this file names no host either.
REGISTRY_MARKERS = ("pypi", "python" + "hosted", "npm" + "js", "rubygems", "crates")
INDEX_FLAGS = ("--index-url", "--extra-index-url", "--trusted-host", "--find-links", "PIP_INDEX")
URL = re.compile(r"\b[a-z][a-z0-9+.-]*://(?:[^@/\s]*@)?(\[[^\]]*\]|[^/:\s'\"`;)]+)")
DOMAIN = re.compile(r"\b(?:[a-z0-9-]+\.)+(?:org|com|net|io|dev|cloud|app)\b", re.IGNORECASE)
EXAMPLE = re.compile(r"(?:^|\.)example\.(?:com|org|net)$", re.IGNORECASE)  # RFC 2606


@pytest.mark.parametrize("path", DEPLOYMENT_FILES, ids=lambda p: p.name)
def test_deployment_files_name_no_registry_or_outside_host(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    lowered = text.lower()
    for marker in REGISTRY_MARKERS + INDEX_FLAGS:
        assert marker.lower() not in lowered, f"{path.name} mentions {marker}"
    allowed = set(services()) | set(upstreams()) | {"localhost", "127.0.0.1", "0.0.0.0"}
    for match in URL.finditer(text):
        assert match.group(1) in allowed, f"{path.name} names host {match.group(1)}"
    outside = [d for d in DOMAIN.findall(text) if not EXAMPLE.search(d)]
    assert not outside, f"{path.name} names {outside}"
