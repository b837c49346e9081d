"""PostgreSQL as a supervised local process, for drills and tests.

:class:`PostgresServer` runs a real PostgreSQL server from the binaries bundled in the
``pgserver`` wheel (``pgserver/pginstall/bin``) or, when asked, from the system's binaries
(``binaries="system"`` searches ``PATH`` and ``/usr/lib/postgresql/*/bin``; any other string
or path names a ``bin`` directory). It initialises a fresh data directory with ``initdb``
(or reuses one that already holds a cluster), listens on 127.0.0.1 only, on a free port
unless one is given, with ``fsync`` on, and trust authentication on loopback.

PostgreSQL refuses to run as root; when this process is root the server runs as an
unprivileged system user (``faultlab`` by default, created with ``useradd`` if missing, the
way ``pgserver`` does it), the data directory is handed to that user and its parents are
made traversable.

It knows nothing about any particular application::

    with PostgresServer(tmp / "pg") as pg:
        pg.create_role("app")
        pg.create_database("app", owner="app")
        dsn = pg.dsn("app", "app")
        pg.pids()          # postmaster first, then its children (for stall faults)

Failures are raised as :class:`faultlab.errors.ServiceFailed` with the server log's tail
as evidence. No environment settings are read.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from faultlab.errors import ServiceFailed
from faultlab.runtime.ports import free_port

__all__ = ["PostgresServer", "find_binaries", "free_port", "server_version"]

_STOP_SIGNALS = {"smart": signal.SIGTERM, "fast": signal.SIGINT, "immediate": signal.SIGQUIT}


def server_version(dsn: str) -> str | None:
    """``SHOW server_version`` of the server at ``dsn``, or None when it cannot be read (the
    same question for a database on any runtime)."""
    import psycopg

    try:
        with psycopg.connect(dsn, connect_timeout=5, autocommit=True) as conn:
            row = conn.execute("SHOW server_version").fetchone()
    except psycopg.Error:
        return None
    return str(row[0]) if row else None


def find_binaries(binaries: str | os.PathLike[str] | None = None) -> Path:
    """The ``bin`` directory holding ``postgres`` and ``initdb``.

    ``None`` means the ``pgserver`` wheel's bundled binaries; ``"system"`` searches ``PATH``
    and then ``/usr/lib/postgresql/*/bin`` (newest first); anything else is a directory.
    """
    if binaries is None:
        import importlib.util  # noqa: PLC0415

        # Locate the wheel without importing it: its __init__ does work at import time.
        spec = importlib.util.find_spec("pgserver")
        if spec is None or not spec.submodule_search_locations:
            raise ServiceFailed("the pgserver wheel is not installed; pass binaries='system'")
        path = Path(list(spec.submodule_search_locations)[0]) / "pginstall" / "bin"
    elif str(binaries) == "system":
        found = shutil.which("postgres")
        candidates = [Path(found).parent] if found else []
        candidates += [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)]
        found_dir = next((c for c in candidates if (c / "postgres").exists() and (c / "initdb").exists()), None)
        if found_dir is None:
            raise ServiceFailed("no system PostgreSQL binaries in PATH or /usr/lib/postgresql/*/bin")
        path = found_dir
    else:
        path = Path(binaries)
    if not (path / "postgres").exists() or not (path / "initdb").exists():
        raise ServiceFailed(f"no postgres/initdb in {path}")
    return path


def _system_user(name: str):
    import pwd  # noqa: PLC0415  (POSIX only)

    try:
        return pwd.getpwnam(name)
    except KeyError:
        pass
    try:
        subprocess.run(["useradd", "--system", "--no-create-home", "-s", "/usr/sbin/nologin", name],
                       check=True, capture_output=True, text=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        # A concurrent starter may have created it in the meantime.
        try:
            return pwd.getpwnam(name)
        except KeyError:
            detail = getattr(exc, "stderr", "") or str(exc)
            raise ServiceFailed(f"could not create system user {name!r}", evidence=detail) from exc
    return pwd.getpwnam(name)


def _make_traversable(path: Path) -> None:
    for parent in path.resolve().parents:
        mode = parent.stat().st_mode
        if mode & 0o011 != 0o011:
            parent.chmod(mode | 0o011)


def _make_readable(install: Path) -> None:
    """Let the unprivileged user traverse to and read a PostgreSQL installation."""
    _make_traversable(install)
    for root, dirs, files in os.walk(install):
        for name in dirs:
            path = Path(root, name)
            if path.stat().st_mode & 0o005 != 0o005:
                path.chmod(path.stat().st_mode | 0o055)
        for name in files:
            path = Path(root, name)
            mode = path.stat().st_mode
            wanted = mode | 0o044 | (0o011 if mode & 0o100 else 0)
            if mode != wanted:
                path.chmod(wanted)


class PostgresServer:
    """One PostgreSQL server on 127.0.0.1, started and stopped by this object.

    ``data_dir`` is created if missing and initialised when empty; a directory that already
    holds a cluster is reused (so ``stop()`` then ``start()`` is a restart keeping the data
    and the port). ``port=0`` picks a free port at the first start. ``settings`` are extra
    ``-c name=value`` server settings. Use it as a context manager or call ``start()`` /
    ``stop()``; both are idempotent.
    """

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        port: int = 0,
        binaries: str | os.PathLike[str] | None = None,
        *,
        system_user: str = "faultlab",
        superuser: str = "postgres",
        settings: dict[str, str | int] | None = None,
        start_timeout: float = 30.0,
    ):
        self.data_dir = Path(data_dir).resolve()
        self.port = port
        self.binaries = binaries
        self.system_user = system_user
        self.superuser = superuser
        self.settings = {"max_connections": 200, "shared_buffers": "128MB", "fsync": "on", **(settings or {})}
        self.start_timeout = start_timeout
        self.log_path = self.data_dir.parent / f"{self.data_dir.name}.log"
        self._process: subprocess.Popen[bytes] | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def __enter__(self) -> PostgresServer:
        try:
            self.start()
        except BaseException:
            self.stop(mode="immediate")
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def postmaster_pid(self) -> int | None:
        """The postmaster's pid while it runs, else None."""
        if self._process is None or self._process.poll() is not None:
            return None
        return self._process.pid

    def start(self) -> PostgresServer:
        """Initialise the data directory if needed, start the server, wait until it accepts."""
        if self.postmaster_pid is not None:
            return self
        bindir = find_binaries(self.binaries)
        user = self._prepare_data_dir(bindir)
        if not self.port:
            self.port = free_port()
        args = [str(bindir / "postgres"), "-D", str(self.data_dir), "-p", str(self.port),
                # TCP only: a deep data dir overflows the 107-byte socket path
                "-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories="]
        for name, value in self.settings.items():
            args += ["-c", f"{name}={value}"]
        log = open(self.log_path, "ab")  # noqa: SIM115  (the child keeps writing to it)
        try:
            self._process = subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True, **self._as_user(user),
            )
        except OSError as exc:
            raise ServiceFailed(f"could not run {args[0]}", evidence=str(exc)) from exc
        finally:
            log.close()
        self._wait_accepting()
        return self

    def stop(self, mode: str = "fast", timeout: float = 30.0) -> None:
        """Stop the server: ``smart``, ``fast`` (default) or ``immediate`` shutdown.

        Stopped (SIGSTOPped) processes are continued first so they can shut down; whatever
        is still alive after ``timeout`` is killed. Stopping a stopped server does nothing.
        """
        if mode not in _STOP_SIGNALS:
            raise ValueError(f"unknown stop mode {mode!r}; known: {', '.join(_STOP_SIGNALS)}")
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            survivors = self.pids()
            for pid in survivors:
                self._signal(pid, signal.SIGCONT)
            self._signal(process.pid, _STOP_SIGNALS[mode])
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                for pid in self.pids() or survivors:
                    self._signal(pid, signal.SIGKILL)
                process.wait(5)
        self._process = None

    def pids(self) -> list[int]:
        """The postmaster's pid followed by its children's (empty when not running)."""
        import psutil  # noqa: PLC0415

        pid = self.postmaster_pid
        if pid is None:
            return []
        try:
            return [pid] + [child.pid for child in psutil.Process(pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    # -- administration --------------------------------------------------------------------

    def dsn(self, database: str = "postgres", user: str | None = None) -> str:
        """A libpq URL for ``database`` as ``user`` (the superuser by default)."""
        return f"postgresql://{user or self.superuser}@127.0.0.1:{self.port}/{database}"

    def create_role(self, name: str, *, superuser: bool = False, login: bool = True) -> None:
        """Create a role unless it exists."""
        from psycopg import sql  # noqa: PLC0415

        options = sql.SQL(" ").join(
            sql.SQL(word) for word in (["LOGIN"] if login else []) + (["SUPERUSER"] if superuser else []))
        with self._admin() as conn:
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)).fetchone()
            if not exists:
                conn.execute(sql.SQL("CREATE ROLE {} {}").format(sql.Identifier(name), options))

    def create_database(self, name: str, owner: str | None = None, template: str | None = None) -> None:
        """Create a database unless it exists (optionally owned by ``owner``, copied from ``template``)."""
        from psycopg import sql  # noqa: PLC0415

        query = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if owner:
            query += sql.SQL(" OWNER {}").format(sql.Identifier(owner))
        if template:
            query += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
        with self._admin() as conn:
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
                conn.execute(query)

    def log_tail(self, lines: int = 40) -> str:
        """The last lines of the server log (evidence for errors)."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no server log)"

    # -- internals ---------------------------------------------------------------------------

    def _admin(self):
        import psycopg  # noqa: PLC0415

        try:
            return psycopg.connect(self.dsn(), autocommit=True, connect_timeout=10)
        except psycopg.Error as exc:
            raise ServiceFailed(f"cannot connect to PostgreSQL on port {self.port}",
                                evidence=self.log_tail()) from exc

    def _prepare_data_dir(self, bindir: Path):
        self.data_dir.mkdir(parents=True, exist_ok=True)
        user = None
        if os.geteuid() == 0:
            user = _system_user(self.system_user)
            _make_readable(bindir.parent)
            _make_traversable(self.data_dir)
            os.chown(self.data_dir, user.pw_uid, user.pw_gid)
            self.data_dir.chmod(0o700)
            if not self.log_path.exists():
                self.log_path.touch()
            os.chown(self.log_path, user.pw_uid, user.pw_gid)
        if (self.data_dir / "PG_VERSION").exists():
            return user
        if any(self.data_dir.iterdir()):
            raise ServiceFailed(f"{self.data_dir} is neither empty nor a PostgreSQL data directory")
        args = [str(bindir / "initdb"), "-D", str(self.data_dir), "-U", self.superuser,
                "--auth=trust", "--encoding=UTF8", "--no-locale", "--no-sync"]
        result = subprocess.run(args, capture_output=True, text=True, **self._as_user(user))
        if result.returncode != 0:
            raise ServiceFailed("initdb failed", evidence=(result.stdout + result.stderr)[-4000:])
        return user

    @staticmethod
    def _as_user(user) -> dict:
        if user is None:
            return {}
        return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": [], "cwd": "/",
                "env": {**os.environ, "HOME": str(Path(user.pw_dir)) if Path(user.pw_dir).exists() else "/tmp"}}

    def _wait_accepting(self) -> None:
        import psycopg  # noqa: PLC0415

        deadline = time.monotonic() + self.start_timeout
        last = "no attempt yet"
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                code = None if self._process is None else self._process.returncode
                self._process = None
                raise ServiceFailed(f"postgres exited with code {code} while starting", evidence=self.log_tail())
            try:
                with psycopg.connect(self.dsn(), connect_timeout=2) as conn:
                    conn.execute("SELECT 1")
                return
            except psycopg.Error as exc:
                last = str(exc).strip()
                time.sleep(0.05)
        self.stop(mode="immediate")
        raise ServiceFailed(f"postgres did not accept connections within {self.start_timeout:g}s (last: {last})",
                            evidence=self.log_tail())

    @staticmethod
    def _signal(pid: int, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)
