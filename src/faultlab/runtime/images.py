"""The images the docker runtime runs, built on this machine without any image registry.

Three images, each built from the one before and reused while what it is made of is
unchanged (``faultlab images build``)::

    faultlab/base:bookworm-<recipe>    a Debian root made with debootstrap and imported
                                       (python3, iptables, procps, iproute2; the user
                                       `postgres` and faultlab's PostgreSQL entrypoint)
    faultlab/deps:<digest>             + a virtualenv in /opt/faultlab with every dependency
                                       of faultlab, from wheels built on this machine
                                       (`pip wheel`, with pip's own configuration: a local
                                       wheelhouse or index works offline)
    faultlab/stack:<version>-<digest>  + faultlab itself, from a wheel of this source tree

The stack image's tag carries a digest of the installed ``faultlab`` and ``tradingstack``
packages (:func:`source_digest`), so the runtime asks for the image of exactly the code
that runs the harness, and a stale image is never used: a missing one is an
:class:`~faultlab.errors.InfrastructureError` (exit code 3) naming ``faultlab images build``.
The one image runs every part of a stack: services given as a ``command``, jobs, the fault
proxy, locust workers, and PostgreSQL (the server of the ``pgserver`` wheel, the same build
the local runtime runs, started by :data:`POSTGRES_ENTRYPOINT`).

Images are labelled ``faultlab.image`` and never belong to a run: ``faultlab cleanup``
leaves them alone.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from faultlab import __version__
from faultlab.errors import InfrastructureError, InputError

__all__ = [
    "BASE_REPOSITORY", "DEPS_REPOSITORY", "STACK_REPOSITORY", "VENV", "RUN_DIR", "STACK_DIR", "POSTGRES_ENTRYPOINT",
    "PGDATA", "source_digest", "base_image", "stack_image", "require_stack_image", "BuiltImage", "BuildReport",
    "build_images", "find_source",
]

BASE_REPOSITORY = "faultlab/base"
DEPS_REPOSITORY = "faultlab/deps"
STACK_REPOSITORY = "faultlab/stack"
SUITE = "bookworm"
PACKAGES = ("python3", "python3-venv", "procps", "iptables", "iproute2")
VENV = "/opt/faultlab"
RUN_DIR = "/faultlab/run"
"""Where a run's volume is mounted in every container: ``${run_dir}`` there."""
STACK_DIR = "/faultlab/stack"
"""Where the stack file's folder is copied in a container that uses ``${stack_dir}``."""
PGDATA = "/var/lib/faultlab/pgdata"
POSTGRES_ENTRYPOINT = "/usr/local/bin/faultlab-postgres"
PATH = f"{VENV}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
LABEL = "faultlab.image"

_ENTRYPOINT_SCRIPT = """#!/bin/sh
# faultlab's PostgreSQL entrypoint: initialise the data directory once, then run the server
# (from the pgserver wheel in the image's virtualenv) as the user postgres, as its own
# process so that docker's signals reach it: SIGINT is a fast shutdown, SIGQUIT an
# immediate one. Extra arguments are server settings (-c name=value).
set -e
: "${PGDATA:=@PGDATA@}"
: "${FAULTLAB_PGBIN:?the image sets FAULTLAB_PGBIN}"
mkdir -p "$PGDATA"
chown postgres:postgres "$PGDATA"
chmod 700 "$PGDATA"
as_postgres="setpriv --reuid=postgres --regid=postgres --init-groups"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  $as_postgres "$FAULTLAB_PGBIN/initdb" -D "$PGDATA" -U postgres --auth=trust --encoding=UTF8 --no-locale \\
    --no-sync >/dev/null
  echo "host all all all trust" >> "$PGDATA/pg_hba.conf"
fi
exec $as_postgres "$FAULTLAB_PGBIN/postgres" -D "$PGDATA" -c listen_addresses='*' -c unix_socket_directories= "$@"
""".replace("@PGDATA@", PGDATA)


def _digest(parts: Iterable[bytes | str], length: int = 12) -> str:
    sha = hashlib.sha256()
    for part in parts:
        sha.update(part.encode() if isinstance(part, str) else part)
        sha.update(b"\0")
    return sha.hexdigest()[:length]


def _package_dir(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def source_digest() -> str:
    """A digest of the installed ``faultlab`` and ``tradingstack`` packages (every file but
    compiled bytecode) and faultlab's version: the code a stack image must hold."""
    parts: list[bytes | str] = [__version__]
    for package in ("faultlab", "tradingstack"):
        root = _package_dir(package)
        if root is None:
            continue
        for path in sorted(root.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                parts += [f"{package}/{path.relative_to(root).as_posix()}", path.read_bytes()]
    return _digest(parts)


def base_image() -> str:
    """The base image's name: the suite and a digest of its recipe."""
    return f"{BASE_REPOSITORY}:{SUITE}-{_digest([SUITE, *PACKAGES, _ENTRYPOINT_SCRIPT, VENV, RUN_DIR])}"


def stack_image(digest: str | None = None) -> str:
    """The stack image of this code (``digest``: :func:`source_digest`)."""
    return f"{STACK_REPOSITORY}:{__version__}-{digest or source_digest()}"


def _image_exists(client: Any, name: str) -> bool:
    from faultlab.runtime.engine import docker_sdk

    try:
        client.images.get(name)
    except docker_sdk().errors.ImageNotFound:
        return False
    return True


def require_stack_image(client: Any, where: str) -> str:
    """The stack image of this code on the engine at ``where``, or InfrastructureError."""
    name = stack_image()
    if not _image_exists(client, name):
        built = sorted(tag for image in client.images.list(name=STACK_REPOSITORY) for tag in image.tags)
        others = f" (the engine has {', '.join(built)}, built from other code)" if built else ""
        raise InfrastructureError(
            f"the docker image {name} (faultlab {__version__}, the code installed here) is not built on the "
            f"engine at {where}{others}: run `faultlab images build`"
        )
    return name


@dataclass(frozen=True)
class BuiltImage:
    """One image of a build: its name, ``built`` or ``reused``, and the seconds it took."""

    name: str
    state: str
    seconds: float


@dataclass
class BuildReport:
    """What ``faultlab images build`` did, image by image."""

    images: list[BuiltImage] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        """Total time of the build."""
        return sum(image.seconds for image in self.images)


def find_source(source: str | os.PathLike[str] | None = None) -> Path:
    """The faultlab source tree to build the wheel from: ``source``, else the tree this
    faultlab is installed from (an editable install); InputError if there is none."""
    if source is not None:
        root = Path(source).resolve()
    else:
        package = _package_dir("faultlab")
        root = package.parents[1] if package is not None else Path.cwd()
    pyproject = root / "pyproject.toml"
    if not pyproject.is_file() or 'name = "faultlab"' not in pyproject.read_text(encoding="utf-8"):
        raise InputError(
            f"{root} is not faultlab's source tree (no pyproject.toml of faultlab): give it with --source DIR"
        )
    return root


def _exec(container: Any, command: list[str], what: str) -> str:
    result = container.exec_run(command)
    output = (result.output or b"").decode(errors="replace")
    if result.exit_code != 0:
        raise InfrastructureError(f"building the images: {what} failed (exit code {result.exit_code})",
                                  evidence=output[-4000:])
    return output


def _tar_of(files: dict[str, Path | bytes], mode: int = 0o644) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, content in files.items():
            if isinstance(content, Path):
                tar.add(str(content), arcname=name)
                continue
            info = tarfile.TarInfo(name)
            info.size = len(content)
            info.mode = mode
            tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def _mirror() -> str:
    if os.environ.get("FAULTLAB_DEBIAN_MIRROR"):
        return os.environ["FAULTLAB_DEBIAN_MIRROR"]
    sources = Path("/etc/apt/sources.list.d/debian.sources")
    if sources.is_file():
        for line in sources.read_text(encoding="utf-8").splitlines():
            if line.startswith("URIs:"):
                return line.split()[1]
    return "http://deb.debian.org/debian"


def _run(command: list[str], what: str, **kwargs: Any) -> None:
    try:
        result = subprocess.run(command, capture_output=True, text=True, check=False, **kwargs)
    except OSError as exc:
        raise InfrastructureError(f"building the images: {what}: {exc}") from exc
    if result.returncode != 0:
        raise InfrastructureError(f"building the images: {what} failed (exit code {result.returncode})",
                                  evidence=(result.stdout + result.stderr)[-4000:])


def _build_base(client: Any, name: str, log: Callable[[str], None]) -> None:
    """debootstrap a Debian root, add the postgres user and the entrypoint, import it."""
    if shutil.which("debootstrap") is None:
        raise InfrastructureError("building the base image needs debootstrap: apt-get install -y debootstrap")
    if os.geteuid() != 0:
        raise InfrastructureError("building the base image runs debootstrap, which needs root")
    work = Path(tempfile.mkdtemp(prefix="faultlab-base-", dir="/var/tmp"))
    try:
        root = work / "root"
        mirror = _mirror()
        log(f"  debootstrap {SUITE} from {mirror} (a minute or two)")
        _run(["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}", SUITE, str(root), mirror],
             "debootstrap")
        _run(["chroot", str(root), "useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
              "postgres"], "adding the user postgres")
        entrypoint = root / POSTGRES_ENTRYPOINT.lstrip("/")
        entrypoint.write_text(_ENTRYPOINT_SCRIPT, encoding="utf-8")
        entrypoint.chmod(0o755)
        (root / RUN_DIR.lstrip("/")).mkdir(parents=True, exist_ok=True)
        for cache in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for item in (root / cache).glob("*"):
                if item.is_file():
                    item.unlink()
        archive = work / "root.tar"
        _run(["tar", "-C", str(root), "-cf", str(archive), "."], "packing the root")
        repository, tag = name.split(":")
        log("  importing it")
        client.api.import_image_from_file(
            str(archive), repository=repository, tag=tag,
            changes=[f"ENV PATH={PATH}", "ENV LANG=C.UTF-8", f"LABEL {LABEL}=base", 'CMD ["python3"]'],
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _wheels(source: Path, into: Path, *, deps: bool, log: Callable[[str], None]) -> list[Path]:
    """Build faultlab's wheel (``deps``: and every dependency's) with this Python's pip."""
    command = [sys.executable, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check", "--wheel-dir",
               str(into), str(source)]
    if not deps:
        command.insert(4, "--no-deps")
    log(f"  pip wheel {'with' if deps else 'without'} dependencies")
    _run(command, "building the wheels (pip wheel)")
    return sorted(into.glob("*.whl"))


def _requirements(wheel: Path) -> list[str]:
    """The Requires-Dist lines of a wheel that are not an extra's."""
    with zipfile.ZipFile(wheel) as archive:
        metadata = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        text = archive.read(metadata).decode()
    return sorted(line.split(":", 1)[1].strip() for line in text.splitlines()
                  if line.startswith("Requires-Dist:") and "extra ==" not in line)


def _in_container(client: Any, image: str, work: Callable[[Any], list[str]], name: str, label: str) -> None:
    """Run ``work(container)`` in a container of ``image`` and commit the result as ``name``."""
    container = client.containers.run(image, ["sleep", "infinity"], detach=True, init=True,
                                      labels={LABEL: f"building {label}"})
    try:
        changes = work(container)
        repository, tag = name.split(":")
        container.commit(repository=repository, tag=tag, changes=[*changes, f"LABEL {LABEL}={label}"])
    finally:
        container.remove(force=True)


def _build_deps(client: Any, base: str, name: str, wheels: list[Path], log: Callable[[str], None]) -> None:
    def install(container: Any) -> list[str]:
        log(f"  installing {len(wheels)} wheels in {VENV}")
        container.put_archive("/opt", _tar_of({f"wheels/{w.name}": w for w in wheels}))
        _exec(container, ["python3", "-m", "venv", VENV], "python3 -m venv")
        _exec(container, [f"{VENV}/bin/pip", "install", "--quiet", "--no-index", "--find-links", "/opt/wheels",
                          *(f"/opt/wheels/{w.name}" for w in wheels)], "pip install of the dependencies")
        pgbin = _exec(container, [f"{VENV}/bin/python", "-c",
                                  "import importlib.util, pathlib; print(pathlib.Path(importlib.util.find_spec("
                                  "'pgserver').origin).parent / 'pginstall' / 'bin')"], "finding PostgreSQL")
        _exec(container, ["rm", "-rf", "/opt/wheels", "/root/.cache"], "removing the wheels")
        return [f"ENV FAULTLAB_PGBIN={pgbin.strip()}", "ENV PYTHONUNBUFFERED=1", 'CMD ["python"]']

    _in_container(client, base, install, name, "deps")


def _build_stack(client: Any, deps: str, name: str, wheel: Path, log: Callable[[str], None]) -> None:
    def install(container: Any) -> list[str]:
        log(f"  installing {wheel.name}")
        container.put_archive("/opt", _tar_of({f"wheels/{wheel.name}": wheel}))
        _exec(container, [f"{VENV}/bin/pip", "install", "--quiet", "--no-index", "--no-deps",
                          f"/opt/wheels/{wheel.name}"], "pip install of faultlab")
        _exec(container, ["rm", "-rf", "/opt/wheels", "/root/.cache"], "removing the wheel")
        return [f"WORKDIR {RUN_DIR}", f"LABEL faultlab.version={__version__}"]

    _in_container(client, deps, install, name, "stack")


def build_images(client: Any, *, source: str | os.PathLike[str] | None = None, force: bool = False,
                 log: Callable[[str], None] = print) -> BuildReport:
    """Build the base, dependency and stack images that are missing (all with ``force``),
    from the faultlab source tree ``source`` (default: the one installed here)."""
    report = BuildReport()
    root = find_source(source)
    digest = source_digest()
    base, stack = base_image(), stack_image(digest)

    start = time.monotonic()
    if force or not _image_exists(client, base):
        log(f"building {base}")
        _build_base(client, base, log)
        report.images.append(BuiltImage(base, "built", time.monotonic() - start))
    else:
        report.images.append(BuiltImage(base, "reused", 0.0))
    if not force and _image_exists(client, stack):
        report.images.append(BuiltImage(stack, "reused", 0.0))
        log(f"{stack} is built already (this code)")
        return report
    with tempfile.TemporaryDirectory(prefix="faultlab-wheels-") as folder:
        start = time.monotonic()
        own = _wheels(root, Path(folder) / "own", deps=False, log=log)
        wheel = next(w for w in own if w.name.startswith("faultlab-"))
        deps = f"{DEPS_REPOSITORY}:{_digest([base, *_requirements(wheel)])}"
        if force or not _image_exists(client, deps):
            log(f"building {deps}")
            everything = _wheels(root, Path(folder) / "all", deps=True, log=log)
            _build_deps(client, base, deps, [w for w in everything if not w.name.startswith("faultlab-")], log)
            report.images.append(BuiltImage(deps, "built", time.monotonic() - start))
            start = time.monotonic()
        else:
            report.images.append(BuiltImage(deps, "reused", 0.0))
        log(f"building {stack}")
        _build_stack(client, deps, stack, wheel, log)
        report.images.append(BuiltImage(stack, "built", time.monotonic() - start))
    return report
