"""A throwaway PostgreSQL 15 with PostGIS for the test suite and the benchmarks.

``throwaway_postgres()`` runs ``initdb`` in a fresh private directory under the system
temporary directory (``alpclusters-pg-*``), starts ``postgres`` there as a child of this
process on a free TCP port of 127.0.0.1 (its unix socket in the same directory), creates a
``template_postgis`` database and, on exit, stops the server and deletes the directory.
A PostgreSQL already running on the machine is never used.

The binaries are Debian's ``postgresql-15`` and ``postgresql-15-postgis-3``, which
``make test`` (target ``postgres``) installs when missing. As root, the server runs as
Debian's unprivileged ``postgres`` user (``initdb`` refuses root).

Plain module, no pytest: ``from tests.pgserver import throwaway_postgres`` works from the
repository root (the benchmarks use it too).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
from psycopg import sql

MAJOR = 15
PREFIX = "alpclusters-pg-"
SUPERUSER = "postgres"
POSTGIS_TEMPLATE = "template_postgis"
STALE_AFTER_S = 24 * 3600
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
INSTALL_HINT = (
    "run `make test` (or `make postgres`), which installs Debian's "
    f"postgresql-{MAJOR} and postgresql-{MAJOR}-postgis-3 when they are missing"
)
# Durability is pointless for a server deleted at exit; a small footprint suits 2 cores.
SERVER_SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "shared_buffers": "32MB",
    "max_connections": "100",
    "TimeZone": "UTC",
}


class PostgresUnavailableError(RuntimeError):
    """PostgreSQL or PostGIS is missing, or the throwaway server could not start."""


@dataclass(frozen=True)
class Binaries:
    """One PostgreSQL installation: its programs and its shared files (extensions)."""

    bindir: Path
    sharedir: Path
    version: int

    def require_postgis(self) -> None:
        """Raise a clear error when the PostGIS extension is not installed for this server."""
        control = self.sharedir / "extension" / "postgis.control"
        if not control.is_file():
            raise PostgresUnavailableError(
                f"PostGIS is not installed for PostgreSQL {self.version} (no {control}); "
                + INSTALL_HINT
            )


@dataclass
class Postmaster:
    """The server process of a :class:`Server` and how to start it again (see ``restart``)."""

    proc: subprocess.Popen[bytes]
    binaries: Binaries
    root: Path
    as_user: dict[str, Any]


@dataclass(frozen=True)
class Server:
    """A running throwaway server: superuser ``postgres`` with a random password over TCP.

    ``pid`` is the postmaster's at the first start; ``stop``, ``start`` and ``restart`` keep
    the port, the data and the password (``postmaster_pid`` is the current process).
    """

    port: int
    datadir: Path
    pid: int
    password: str = field(repr=False)
    template: str = POSTGIS_TEMPLATE
    host: str = "127.0.0.1"
    user: str = SUPERUSER
    postmaster: Postmaster | None = field(default=None, repr=False, compare=False)

    @property
    def postmaster_pid(self) -> int | None:
        """The running postmaster's pid (``None`` while stopped)."""
        pm = self.postmaster
        return pm.proc.pid if pm is not None and pm.proc.poll() is None else None

    def stop(self, mode: str = "fast") -> None:
        """Stop the server: ``fast`` (a clean shutdown, ending every session) or
        ``immediate`` (no checkpoint, like a crash; recovery runs at the next start)."""
        pm = self._postmaster()
        if mode not in ("fast", "immediate"):
            raise ValueError(f"stop mode {mode!r}: use 'fast' or 'immediate'")
        _stop(pm.proc, pm.binaries, pm.root, pm.as_user, mode)

    def start(self) -> None:
        """Start the stopped server again on the same port (its clients' URLs still work)."""
        pm = self._postmaster()
        if pm.proc.poll() is None:
            return
        pm.proc = _launch(pm.binaries, pm.root, self.port, pm.as_user)
        if not _wait_ready(pm.proc, self.datadir):
            tail = "\n".join(self.log.read_text(errors="replace").splitlines()[-15:])
            raise PostgresUnavailableError(f"the throwaway PostgreSQL did not restart:\n{tail}")

    def restart(self, mode: str = "fast", down_s: float = 0.0) -> None:
        """Stop, stay down ``down_s`` seconds, start again."""
        self.stop(mode)
        time.sleep(down_s)
        self.start()

    def _postmaster(self) -> Postmaster:
        if self.postmaster is None:
            raise PostgresUnavailableError("this Server was not started by throwaway_postgres")
        return self.postmaster

    @property
    def socket_dir(self) -> Path:
        """The private directory holding the data directory, the unix socket and the log."""
        return self.datadir.parent

    @property
    def log(self) -> Path:
        return self.socket_dir / "server.log"

    def url(self, dbname: str = "postgres") -> str:
        """SQLAlchemy URL (psycopg 3 driver) of database ``dbname`` on this server."""
        return (
            f"postgresql+psycopg://{self.user}:{self.password}@{self.host}:{self.port}/"
            f"{quote(dbname, safe='')}"
        )

    def connect(self, dbname: str = "postgres") -> psycopg.Connection[Any]:
        """An autocommit psycopg connection as the superuser (close it, or use ``with``)."""
        return psycopg.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            dbname=dbname,
            autocommit=True,
            connect_timeout=10,
        )

    def create_database(self, name: str) -> str:
        """Create database ``name`` from the template (PostGIS enabled) and return its URL."""
        with self.connect() as conn:
            conn.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                    sql.Identifier(name), sql.Identifier(self.template)
                )
            )
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop database ``name``, terminating the connections still open on it first."""
        with self.connect() as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )

    def databases(self) -> list[str]:
        """Names of the databases other than the templates and ``postgres``."""
        with self.connect() as conn:
            rows = conn.execute(
                "SELECT datname FROM pg_database"
                " WHERE NOT datistemplate AND datname <> 'postgres' ORDER BY datname"
            ).fetchall()
        return [row[0] for row in rows]


# -- finding the binaries ---------------------------------------------------------------


def candidate_bindirs() -> list[Path]:
    """``pg_config --bindir`` first, then Debian's ``/usr/lib/postgresql/*/bin``."""
    found: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, check=True, timeout=10
            )
            found.append(Path(out.stdout.strip()))
    found += sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    return list(dict.fromkeys(found))


def find_binaries(candidates: Iterable[Path] | None = None) -> Binaries:
    """The first PostgreSQL 15 installation among ``candidates`` (default: see above)."""
    dirs = candidate_bindirs() if candidates is None else list(candidates)
    seen: list[str] = []
    for bindir in dirs:
        programs = [bindir / name for name in ("initdb", "pg_ctl", "postgres")]
        if not all(os.access(p, os.X_OK) for p in programs):
            continue
        version = _major_version(bindir / "postgres")
        seen.append(f"PostgreSQL {version} in {bindir}")
        if version == MAJOR:
            return Binaries(bindir, _sharedir(bindir, version), version)
    where = ", ".join(str(d) for d in dirs) or "no candidate directory"
    found = f"; found only {', '.join(seen)}" if seen else ""
    raise PostgresUnavailableError(
        f"PostgreSQL {MAJOR} server binaries (initdb, pg_ctl, postgres) not found "
        f"(looked in {where}{found}); " + INSTALL_HINT
    )


def _major_version(postgres: Path) -> int:
    out = subprocess.run(
        [postgres, "--version"], capture_output=True, text=True, check=True, timeout=10
    )
    match = re.search(r"\(PostgreSQL\) (\d+)", out.stdout)
    return int(match.group(1)) if match else 0


def _sharedir(bindir: Path, version: int) -> Path:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(
            [bindir / "pg_config", "--sharedir"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        )
        return Path(out.stdout.strip())
    return Path("/usr/share/postgresql") / str(version)


# -- the server's OS user and its environment ----------------------------------------------


def server_user() -> dict[str, Any]:
    """``subprocess`` arguments that run the server unprivileged: as ``postgres`` if root."""
    if os.geteuid() != 0:
        return {}
    try:
        entry = pwd.getpwnam("postgres")
    except KeyError:
        raise PostgresUnavailableError(
            "running as root, but initdb refuses root and there is no 'postgres' user "
            "(Debian's postgresql package creates it); " + INSTALL_HINT
        ) from None
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def _child_env() -> dict[str, str]:
    """The environment without PG* variables (PGDATA, PGPORT, … would redirect pg_ctl)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PG")}


def _run(cmd: list[str | Path], root: Path, as_user: dict[str, Any], timeout: float) -> None:
    done = subprocess.run(
        cmd, cwd=root, env=_child_env(), capture_output=True, text=True, timeout=timeout, **as_user
    )
    if done.returncode:
        raise PostgresUnavailableError(
            f"{Path(cmd[0]).name} failed (exit {done.returncode}): {done.stderr.strip()}"
        )


# -- starting and stopping ---------------------------------------------------------------


def _process_start(pid: int) -> str | None:
    """Start time of process ``pid`` in clock ticks (``None`` when it is gone or a zombie)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return None if fields[0] == "Z" else fields[19]


def _make_root(as_user: dict[str, Any]) -> Path:
    """A private directory for one server, recording which process owns it."""
    root = Path(tempfile.mkdtemp(prefix=PREFIX))
    (root / "owner").write_text(f"{os.getpid()} {_process_start(os.getpid()) or ''}\n")
    if as_user:
        os.chown(root, as_user["user"], as_user["group"])
    return root


def _initdb(binaries: Binaries, root: Path, as_user: dict[str, Any]) -> str:
    """Create the cluster in ``root/data``; return the superuser's random password."""
    password = secrets.token_hex(16)
    pwfile = root / "pwfile"
    pwfile.write_text(password + "\n")
    if as_user:
        os.chown(pwfile, as_user["user"], as_user["group"])
    try:
        _run(
            [binaries.bindir / "initdb", "-D", root / "data", "-U", SUPERUSER, "-E", "UTF8",
             "--locale=C", "--auth-local=trust", "--auth-host=scram-sha-256",
             f"--pwfile={pwfile}", "--no-sync", "--no-instructions"],
            root, as_user, timeout=120,
        )  # fmt: skip
    finally:
        pwfile.unlink()
    return password


def free_port() -> int:
    """A TCP port of 127.0.0.1 that is free now (never PostgreSQL's default 5432)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port != 5432:
            return port


def _launch(
    binaries: Binaries, root: Path, port: int, as_user: dict[str, Any]
) -> subprocess.Popen[bytes]:
    cmd: list[str | Path] = [binaries.bindir / "postgres", "-D", root / "data", "-p", str(port)]
    cmd += ["-k", root, "-h", "127.0.0.1"]
    for name, value in SERVER_SETTINGS.items():
        cmd += ["-c", f"{name}={value}"]
    with open(root / "server.log", "ab") as log:
        return subprocess.Popen(
            cmd, cwd=root, env=_child_env(), stdin=subprocess.DEVNULL, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True, **as_user,
        )  # fmt: skip


def _wait_ready(proc: subprocess.Popen[bytes], datadir: Path) -> bool:
    """Wait until the postmaster reports "ready"; ``False`` if it exited first."""
    deadline = time.monotonic() + START_TIMEOUT_S
    pidfile = datadir / "postmaster.pid"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        with contextlib.suppress(OSError):
            lines = pidfile.read_text().splitlines()
            if len(lines) >= 8 and lines[7].strip() == "ready":
                return True
        time.sleep(0.02)
    _kill(proc)
    raise PostgresUnavailableError(f"the throwaway PostgreSQL did not start in {START_TIMEOUT_S} s")


def _start(
    binaries: Binaries, root: Path, as_user: dict[str, Any]
) -> tuple[subprocess.Popen[bytes], int]:
    """Start the server on a free port, retrying when another process took the port first."""
    for _attempt in range(5):
        port = free_port()
        proc = _launch(binaries, root, port, as_user)
        if _wait_ready(proc, root / "data"):
            return proc, port
        log = (root / "server.log").read_text(errors="replace")
        if "could not bind" not in log and "could not create any TCP/IP sockets" not in log:
            break
    tail = "\n".join(log.splitlines()[-15:])
    raise PostgresUnavailableError(f"the throwaway PostgreSQL failed to start:\n{tail}")


def _create_template(server: Server) -> None:
    """``template_postgis``: PostGIS created once, copied by every ``create_database``."""
    with server.connect() as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(POSTGIS_TEMPLATE)))
    try:
        with server.connect(POSTGIS_TEMPLATE) as conn:
            conn.execute("CREATE EXTENSION postgis")
    except psycopg.Error as exc:
        raise PostgresUnavailableError(
            f"CREATE EXTENSION postgis failed ({exc}); " + INSTALL_HINT
        ) from exc
    with server.connect() as conn:
        conn.execute(
            sql.SQL("ALTER DATABASE {} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false").format(
                sql.Identifier(POSTGIS_TEMPLATE)
            )
        )


def _kill(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the postmaster and its children (its own process group)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _stop(
    proc: subprocess.Popen[bytes],
    binaries: Binaries,
    root: Path,
    as_user: dict[str, Any],
    mode: str = "fast",
) -> None:
    """``pg_ctl stop -m fast`` (or ``mode``), then SIGKILL if the server is still there."""
    if proc.poll() is None:
        with contextlib.suppress(PostgresUnavailableError, subprocess.SubprocessError, OSError):
            _run(
                [binaries.bindir / "pg_ctl", "stop", "-D", root / "data", "-m", mode, "-w",
                 "-t", str(int(STOP_TIMEOUT_S))],
                root, as_user, timeout=STOP_TIMEOUT_S + 10,
            )  # fmt: skip
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        _kill(proc)


@contextlib.contextmanager
def throwaway_postgres(*, postgis: bool = True) -> Iterator[Server]:
    """Run a private PostgreSQL 15 (with a PostGIS template unless ``postgis=False``).

    Raises
    ------
    PostgresUnavailableError
        When the binaries or PostGIS are missing (``make test`` installs them), or the
        server does not start.
    """
    binaries = find_binaries()
    if postgis:
        binaries.require_postgis()
    as_user = server_user()
    cleanup_stale()
    root = _make_root(as_user)
    postmaster: Postmaster | None = None
    try:
        password = _initdb(binaries, root, as_user)
        proc, port = _start(binaries, root, as_user)
        postmaster = Postmaster(proc, binaries, root, as_user)
        template = POSTGIS_TEMPLATE if postgis else "template1"
        server = Server(port, root / "data", proc.pid, password, template, postmaster=postmaster)
        if postgis:
            _create_template(server)
        yield server
    finally:
        if postmaster is not None:
            _stop(postmaster.proc, binaries, root, as_user)
        shutil.rmtree(root, ignore_errors=True)


# -- leftovers of killed runs ------------------------------------------------------------


def _is_stale(root: Path) -> bool:
    """Stale: its owner process is gone, or (owner unknown) it is older than a day."""
    try:
        pid, _, started = (root / "owner").read_text().strip().partition(" ")
    except OSError:
        return time.time() - root.stat().st_mtime > STALE_AFTER_S
    now = _process_start(int(pid))
    return now is None or (bool(started) and now != started)


def _stop_leftover(datadir: Path) -> None:
    """Stop the postmaster still running on ``datadir`` (SIGQUIT, then SIGKILL)."""
    try:
        pid = int((datadir / "postmaster.pid").read_text().split()[0])
        ours = Path(f"/proc/{pid}/cwd").resolve() == datadir.resolve()
    except (OSError, ValueError, IndexError):
        return
    if not ours or _process_start(pid) is None:
        return
    os.kill(pid, signal.SIGQUIT)
    deadline = time.monotonic() + 10
    while _process_start(pid) is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    if _process_start(pid) is not None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)


def cleanup_stale(tmpdir: Path | None = None) -> list[Path]:
    """Stop the servers of killed runs and delete their directories; return those deleted.

    Directories of live owners (another test run at the same time) are left alone.
    """
    removed = []
    for root in sorted(Path(tmpdir or tempfile.gettempdir()).glob(PREFIX + "*")):
        try:
            if not root.is_dir() or not _is_stale(root):
                continue
            _stop_leftover(root / "data")
        except (OSError, ValueError):
            continue  # another user's directory, or one deleted meanwhile
        shutil.rmtree(root, ignore_errors=True)
        if not root.exists():
            removed.append(root)
    return removed
