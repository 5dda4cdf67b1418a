#!/usr/bin/env python
"""Run pyodk's own end-to-end suite, unchanged, against a JEBOL SIPERA server; print a table.

Not part of CI: it needs a checkout of getodk/pyodk (and PyPI, once, for the suite's
dependencies). Run from anywhere, with any Python >= 3.11 (standard library only):

    python bench/pyodk_e2e.py /path/to/pyodk          # or: PYODK_DIR=/path/to/pyodk python ...
    python bench/pyodk_e2e.py /tmp/pyodk -k form      # extra arguments go to pytest
    python bench/pyodk_e2e.py /tmp/pyodk --python /some/venv/bin/python --keep

What it does
------------
1. Copies the checkout (without .git) into a temp folder and, in the copy only, turns the
   suite's gate `E2E_WITH_REAL_REQUESTS = False` (a module constant in tests/test_client.py;
   pyodk reads no environment variable for it) into True. The checkout is not touched.
2. Finds an interpreter with the suite's dependencies (pyodk's runtime deps + its dev extras
   openpyxl and xlwt, + pytest): --python if given, else a throwaway venv under /tmp
   (/tmp/pyodk-e2e-venv, made and filled with pip on first use, reused afterwards). The
   pyodk that runs is the copy's own source (pytest puts the copy's root on sys.path), not
   any installed one. Nothing is installed into this project's venv.
3. Starts `jebol serve` (this repository's .venv/bin/jebol) on embedded defaults: a fresh
   JEBOL_DATA_DIR in the temp folder, JEBOL_HOST=127.0.0.1, a free JEBOL_PORT, a random
   JEBOL_ADMIN_PASSWORD; waits for /health/ready.
4. Logs in as the admin (admin@jebol.local, or JEBOL_ADMIN_EMAIL if set) and creates a fresh
   project "pyodk e2e" for the suite (its class setup creates its own forms, submissions and
   entity list in `default_project_id`); --project-id uses an existing one instead.
5. Writes the pyodk config TOML ([central] base_url, username, password,
   default_project_id) and points PYODK_CONFIG_FILE / PYODK_CACHE_FILE at it and at a cache
   file in the temp folder.
5b. Seeds the form '=+/*-451%/% through pyodk (see SEED_FORM_ID below: three upstream tests
   use that id while the class setup creates ''=+/*-451%/%; Central passes 24/27 without
   it, 27/27 with it). --no-seed skips this; a seed that fails is reported, not fatal.
6. Runs `pytest -p no:cacheprovider -q -rA tests/test_client.py` in the copy (plus a JUnit
   XML report, which is what gets parsed), then prints one row per test: name, outcome, first
   line of the failure reason; totals; and the Entities tests (name containing "entit" or
   "dataset") apart from the rest.
7. Stops the server (SIGTERM, then SIGKILL after 20 s) and removes the temp folder (--keep
   leaves it, with the server log, pytest's output and the JUnit report, for a look).

Note that the class setup creates an entity list (POST /v1/projects/{id}/datasets and
.../properties) before any TestUsage test runs: while those calls fail, all 25 TestUsage tests
error in setup, non-Entities ones included.

Exit status: 0 when every live (gated) non-Entities test passed, 1 otherwise, 2 when the run
could not be set up (no checkout, server did not start, ...).
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SUITE = "tests/test_client.py"
GATE = re.compile(r"^E2E_WITH_REAL_REQUESTS\s*=\s*False\s*$", re.MULTILINE)
DEFAULT_VENV = Path(tempfile.gettempdir()) / "pyodk-e2e-venv"
SUITE_IMPORTS = ("requests", "toml", "pydantic", "openpyxl", "xlwt", "pytest")


class SetupError(Exception):
    pass


def note(message: str) -> None:
    print(f"# {message}", file=sys.stderr, flush=True)


# --- the pyodk copy --------------------------------------------------------------------------


def find_checkout(arg: str | None) -> Path:
    raw = arg or os.environ.get("PYODK_DIR")
    if not raw:
        raise SetupError("give the pyodk checkout: `pyodk_e2e.py /path/to/pyodk` or PYODK_DIR")
    path = Path(raw).expanduser().resolve()
    if not (path / SUITE).is_file() or not (path / "pyodk").is_dir():
        raise SetupError(f"{path} is not a pyodk checkout (no {SUITE} or pyodk/ package)")
    return path


def copy_checkout(source: Path, work: Path) -> Path:
    target = work / "pyodk"
    shutil.copytree(
        source,
        target,
        ignore=shutil.ignore_patterns(".git", "__pycache__", ".venv", "venv", ".pytest_cache"),
    )
    suite = target / SUITE
    text = suite.read_text(encoding="utf-8")
    text, count = GATE.subn("E2E_WITH_REAL_REQUESTS = True", text)
    if count != 1:
        raise SetupError(f"expected one `E2E_WITH_REAL_REQUESTS = False` line in {SUITE}")
    suite.write_text(text, encoding="utf-8")
    return target


def gated_tests(copy: Path) -> set[str]:
    """`Class::test` names that run only with E2E_WITH_REAL_REQUESTS (the rest are mocked)."""
    tree = ast.parse((copy / SUITE).read_text(encoding="utf-8"))

    def gated(node: ast.ClassDef | ast.FunctionDef) -> bool:
        return any("E2E_WITH_REAL_REQUESTS" in ast.unparse(d) for d in node.decorator_list)

    names = set()
    for cls in (n for n in tree.body if isinstance(n, ast.ClassDef)):
        for fn in (n for n in cls.body if isinstance(n, ast.FunctionDef)):
            if fn.name.startswith("test") and (gated(cls) or gated(fn)):
                names.add(f"{cls.name}::{fn.name}")
    return names


def suite_requirements(checkout: Path) -> list[str]:
    """pyodk's runtime dependencies and dev extras (minus the linter), plus pytest."""
    meta = tomllib.loads((checkout / "pyproject.toml").read_text(encoding="utf-8"))
    project = meta.get("project", {})
    reqs = list(project.get("dependencies", []))
    for req in project.get("optional-dependencies", {}).get("dev", []):
        if not re.match(r"\s*ruff\b", req):
            reqs.append(req)
    reqs = [r.split("#")[0].strip() for r in reqs]
    return [r for r in reqs if r] + ["pytest"]


def has_imports(python: str) -> bool:
    code = "import " + ", ".join(SUITE_IMPORTS)
    return subprocess.run([python, "-c", code], capture_output=True).returncode == 0


def find_python(arg: str | None, checkout: Path) -> str:
    if arg:
        if not has_imports(arg):
            raise SetupError(f"{arg} lacks one of {', '.join(SUITE_IMPORTS)}")
        return arg
    python = DEFAULT_VENV / "bin" / "python"
    if python.exists() and has_imports(str(python)):
        return str(python)
    note(f"making a throwaway venv for pyodk's test dependencies: {DEFAULT_VENV}")
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(DEFAULT_VENV)], check=True)
    reqs = suite_requirements(checkout)
    note("pip install " + " ".join(reqs))
    done = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *reqs]
    )
    if done.returncode != 0 or not has_imports(str(python)):
        raise SetupError(f"could not install pyodk's test dependencies into {DEFAULT_VENV}")
    return str(python)


# --- the server ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def jebol_command() -> list[str]:
    local = REPO / ".venv" / "bin" / "jebol"
    if local.exists():
        return [str(local)]
    found = shutil.which("jebol")
    if found:
        return [found]
    raise SetupError("no `jebol` command: run from a checkout with .venv installed")


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    base_url: str
    email: str
    password: str
    log: Path

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            note("server ignored SIGTERM for 20 s: SIGKILL")
            self.process.kill()
            self.process.wait()


def start_server(work: Path, wait_seconds: float) -> Server:
    port = free_port()
    password = secrets.token_urlsafe(18)
    data = work / "jebol-data"
    data.mkdir()
    env = dict(os.environ)
    for key in [k for k in env if k.startswith("JEBOL_")]:
        if key != "JEBOL_ADMIN_EMAIL":  # embedded defaults: ignore the caller's configuration
            del env[key]
    env.update(
        JEBOL_DATA_DIR=str(data),
        JEBOL_HOST="127.0.0.1",
        JEBOL_PORT=str(port),
        JEBOL_ADMIN_PASSWORD=password,
    )
    log = work / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*jebol_command(), "serve"],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    base = f"http://127.0.0.1:{port}"
    server = Server(
        process, base, env.get("JEBOL_ADMIN_EMAIL") or "admin@jebol.local", password, log
    )
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SetupError(f"jebol serve exited ({process.returncode}); log:\n{tail(log)}")
        try:
            with urllib.request.urlopen(base + "/health/ready", timeout=2) as answer:
                if answer.status == 200:
                    note(f"server ready at {base} (pid {process.pid})")
                    return server
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.3)
    server.stop()
    raise SetupError(f"server not ready in {wait_seconds:.0f} s; log:\n{tail(log)}")


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def api(server: Server, method: str, path: str, body: object = None, token: str = "") -> object:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(server.base_url + "/v1" + path, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return json.loads(answer.read() or b"null")
    except urllib.error.HTTPError as error:
        detail = error.read().decode(errors="replace")[:300]
        raise SetupError(f"{method} /v1{path}: {error.code} {detail}") from None


def prepare_project(server: Server, project_id: int | None) -> int:
    login = api(server, "POST", "/sessions", {"email": server.email, "password": server.password})
    token = login["token"]  # type: ignore[index]
    if project_id is not None:
        api(server, "GET", f"/projects/{project_id}", token=token)
        return project_id
    project = api(server, "POST", "/projects", {"name": "pyodk e2e"}, token=token)
    note(f"created project {project['id']} 'pyodk e2e'")  # type: ignore[index]
    return int(project["id"])  # type: ignore[index]


def write_config(work: Path, server: Server, project_id: int) -> tuple[Path, Path]:
    config = work / "pyodk_config.toml"
    config.write_text(
        "[central]\n"
        f"base_url = {json.dumps(server.base_url)}\n"
        f"username = {json.dumps(server.email)}\n"
        f"password = {json.dumps(server.password)}\n"
        f"default_project_id = {project_id}\n",
        encoding="utf-8",
    )
    return config, work / "pyodk_cache.toml"


# --- the seed form --------------------------------------------------------------------------

# Three tests (test_form_update__with_version_updater__non_ascii_specials,
# test_submission_create__non_ascii, test_submission_edit__non_ascii) use the form id
# '=+/*-451%/% while the class setup creates ''=+/*-451%/% (md__symbols' form_id): an upstream
# test-data slip that fails them against Central too (24/27 there; 27/27 once this form
# exists). The seed creates it beforehand, through pyodk and the suite's own helper, from
# md__symbols with the one-quote id. --no-seed runs the upstream setup alone.
SEED_FORM_ID = "'=+/*-451%/%"
SEED_CODE = """
import sys
from pyodk.client import Client
from tests.resources import forms_data
from tests.utils.forms import create_new_form__md
definition = forms_data.md__symbols.replace("''=+/*-451%/%", sys.argv[1])
assert definition != forms_data.md__symbols, "md__symbols no longer has ''=+/*-451%/%"
# As the class setup does for md__symbols: form_id only names the temp file (and so the
# X-XlsForm-FormId-Fallback header); the form's id comes from its settings sheet.
create_new_form__md(client=Client(), form_id="non_ascii_form_id", form_def=definition)
"""


def seed_form(python: str, copy: Path, env: dict[str, str]) -> str:
    """Create the one-quote form; return '' on success, else the error's last line."""
    try:
        done = subprocess.run(
            [python, "-c", SEED_CODE, SEED_FORM_ID],
            cwd=copy,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    except subprocess.TimeoutExpired:
        return "no answer in 120 s"
    if done.returncode == 0:
        return ""
    lines = [x for x in (done.stderr or done.stdout).strip().splitlines() if x.strip()]
    return first_line(lines[-1] if lines else f"exit {done.returncode}")


# --- the suite -------------------------------------------------------------------------------


def suite_env(copy: Path, config: Path, cache: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        PYODK_CONFIG_FILE=str(config),
        PYODK_CACHE_FILE=str(cache),
        PYTHONPATH=str(copy),
        PYTHONDONTWRITEBYTECODE="1",
    )
    return env


@dataclass
class Result:
    name: str
    outcome: str  # passed / failed / error / skipped
    reason: str


def run_suite(
    python: str, copy: Path, config: Path, cache: Path, work: Path, extra: list[str], timeout: float
) -> tuple[list[Result], int]:
    junit = work / "junit.xml"
    output = work / "pytest.out"
    env = suite_env(copy, config, cache)
    command = [
        python, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rA",
        f"--junitxml={junit}", "-o", "junit_family=xunit1", SUITE, *extra,
    ]  # fmt: skip
    note("running: " + " ".join(command[2:]))
    started = time.monotonic()
    with output.open("wb") as out:
        try:
            done = subprocess.run(
                command, cwd=copy, env=env, stdout=out, stderr=subprocess.STDOUT, timeout=timeout
            )
            code = done.returncode
        except subprocess.TimeoutExpired:
            code = -1
            note(f"pytest did not finish in {timeout:.0f} s")
    note(f"pytest exit {code} after {time.monotonic() - started:.0f} s")
    if not junit.exists():
        raise SetupError(f"pytest wrote no report; output:\n{tail(output, 40)}")
    return parse_junit(junit), code


def parse_junit(path: Path) -> list[Result]:
    results = []
    for case in ET.parse(path).getroot().iter("testcase"):
        classname = case.get("classname", "").rsplit(".", 1)[-1]
        name = f"{classname}::{case.get('name')}" if classname else case.get("name", "?")
        outcome, reason = "passed", ""
        for tag in ("error", "failure", "skipped"):
            child = case.find(tag)
            if child is not None:
                outcome = {"failure": "failed"}.get(tag, tag)
                reason = first_line(child.get("message") or child.text or "")
                break
        if outcome == "passed" and results and results[-1].name == name:
            continue  # a teardown error reported as a second testcase: keep the first
        results.append(Result(name, outcome, reason))
    return results


def first_line(text: str) -> str:
    """The reason's first line, with pyodk's request errors condensed to status, path, body."""
    line = next((x.strip() for x in text.strip().splitlines() if x.strip()), "")
    setup = line.startswith("failed on setup with ")
    if setup:
        line = line.removeprefix("failed on setup with ").strip('"')
    request = REQUEST_ERROR.search(line.replace("\\'", "'"))
    if request:
        path = re.sub(r"^https?://[^/]+(/v1)?", "", request["url"])
        line = f"{request['status']} {path} {request['body']}"
    return f"setup: {line}" if setup else line


REQUEST_ERROR = re.compile(
    r"The request to (?P<url>\S+) failed\. Status: (?P<status>\d+), content: (?P<body>.*?)'?, <Response"
)


def is_entities(name: str) -> bool:
    lowered = name.lower()
    return "entit" in lowered or "dataset" in lowered


def print_table(results: list[Result], gated: set[str], width: int) -> None:
    """One row per test; a class-setup error shared by many rows is printed once below."""
    name_w = max([len("test")] + [len(r.name) for r in results])
    reason_w = max(20, width - name_w - 10 - 4)
    setups: list[str] = []
    print(f"{'test':<{name_w}}  {'outcome':<8}  reason")
    print(f"{'-' * name_w}  {'-' * 8}  {'-' * min(reason_w, 40)}")
    for r in results:
        reason = r.reason
        if reason.startswith("setup: "):
            if reason not in setups:
                setups.append(reason)
            reason = f"class setup failed [{setups.index(reason) + 1}]"
        if r.name not in gated:
            reason = (reason + " (ungated: mocked, no server)").strip()
        reason = reason if len(reason) <= reason_w else reason[: reason_w - 1] + "…"
        print(f"{r.name:<{name_w}}  {r.outcome:<8}  {reason}")
    for number, reason in enumerate(setups, 1):
        print(f"[{number}] {reason}")


def summarize(results: list[Result], gated: set[str]) -> bool:
    """Print the totals; True when every live non-Entities test passed."""

    def line(label: str, rows: list[Result]) -> None:
        tally = {k: sum(r.outcome == k for r in rows) for k in OUTCOMES}
        detail = ", ".join(f"{n} {k}" for k, n in tally.items() if n)
        print(f"{label:<44} {tally['passed']:>3}/{len(rows):<3} passed  ({detail or 'none'})")

    live = [r for r in results if r.name in gated]
    live_others = [r for r in live if not is_entities(r.name)]
    live_entities = [r for r in live if is_entities(r.name)]
    print()
    line("all tests collected", results)
    line("live tests (E2E_WITH_REAL_REQUESTS-gated)", live)
    line("  non-Entities", live_others)
    line("  Entities (name has 'entit' or 'dataset')", live_entities)
    for label, rows in (("Entities", live_entities), ("non-Entities", live_others)):
        bad = [r.name.split("::")[-1] for r in rows if r.outcome in ("failed", "error")]
        if bad:
            print(f"failing {label}: " + ", ".join(bad))
    return bool(live_others) and all(r.outcome == "passed" for r in live_others)


OUTCOMES = ("passed", "failed", "error", "skipped")


def main() -> int:
    parser = argparse.ArgumentParser(
        description="Run pyodk's e2e suite (tests/test_client.py) against a fresh JEBOL server.",
        epilog="Arguments after the known options (e.g. -k form, -x) are passed to pytest.",
    )
    parser.add_argument("pyodk_dir", nargs="?", help="pyodk checkout (default: $PYODK_DIR)")
    parser.add_argument("--python", help="interpreter with pyodk's test dependencies")
    parser.add_argument("--project-id", type=int, help="use this project instead of a new one")
    parser.add_argument(
        "--no-seed",
        dest="seed",
        action="store_false",
        help=f"do not pre-create the form {SEED_FORM_ID} (see SEED_FORM_ID)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp folder (logs, data)")
    parser.add_argument("--timeout", type=float, default=1800, help="pytest time limit, s")
    parser.add_argument("--wait", type=float, default=90, help="server start time limit, s")
    parser.add_argument("--width", type=int, default=160, help="table width in characters")
    args, extra = parser.parse_known_args()

    work = Path(tempfile.mkdtemp(prefix="pyodk-e2e-"))
    server: Server | None = None
    try:
        checkout = find_checkout(args.pyodk_dir)
        copy = copy_checkout(checkout, work)
        gated = gated_tests(copy)
        note(f"pyodk {checkout} copied to {copy} with E2E_WITH_REAL_REQUESTS = True")
        python = find_python(args.python, checkout)
        note(f"suite interpreter: {python}")
        server = start_server(work, args.wait)
        project_id = prepare_project(server, args.project_id)
        config, cache = write_config(work, server, project_id)
        seeded = "not seeded (--no-seed)"
        if args.seed:
            failed = seed_form(python, copy, suite_env(copy, config, cache))
            seeded = f"seeded: FAILED: {failed}" if failed else "seeded: created"
            note(f"form {SEED_FORM_ID} {seeded}")
        results, code = run_suite(python, copy, config, cache, work, extra, args.timeout)
    except SetupError as error:
        print(f"pyodk_e2e: {error}", file=sys.stderr)
        return 2
    finally:
        if server is not None:
            server.stop()
            note(f"server stopped (exit {server.process.returncode})")
        if args.keep:
            note(f"kept {work} (server.log, pytest.out, junit.xml, jebol-data/)")
        else:
            shutil.rmtree(work, ignore_errors=True)

    if not results:
        print(f"no test ran (pytest exit {code})")
        return 1
    print(f"JEBOL server at embedded defaults; pyodk {checkout}; form {SEED_FORM_ID} {seeded}")
    print()
    print_table(results, gated, args.width)
    ok = summarize(results, gated)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
