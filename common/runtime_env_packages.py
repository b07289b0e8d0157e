"""runtime_env packages (a working_dir or a py_module): a zip built
deterministically, named by its content hash, stored once in the GCS KV
and unpacked on each node that needs it.

Why the GCS KV and not the object store: a package must outlive the driver
that uploaded it (a submitted job's client leaves at once), be found by any
node by name alone, and survive a GCS failover like the job that uses it;
objects in the store are owned by a process and freed with its references.
The KV is replicated to etcd; values there are bounded (etcd's request
limit), so a package is kept in chunks with a manifest written last: a
manifest present means every chunk is.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pathlib
import re
import shutil
import stat
import tempfile
import zipfile
from typing import Any, Iterable

KV_NAMESPACE = "runtime_env"
CHUNK_BYTES = 1024 * 1024
_URI = re.compile(r"^gcs://_ember_pkg_([0-9a-f]{64})\.zip$")
# Fixed entry times: the same tree zips to the same bytes (the same hash).
_EPOCH = (1980, 1, 1, 0, 0, 0)


class PackageTooLarge(ValueError):
    pass


def package_uri(data: bytes) -> str:
    return f"gcs://_ember_pkg_{hashlib.sha256(data).hexdigest()}.zip"


def digest_of(uri: str) -> str:
    match = _URI.match(uri)
    if match is None:
        raise ValueError(f"not an Ember package URI: {uri!r} (expected gcs://_ember_pkg_<sha256>.zip)")
    return match.group(1)


def manifest_key(digest: str) -> bytes:
    return f"pkg/{digest}".encode()


def chunk_key(digest: str, index: int) -> bytes:
    return f"pkg/{digest}/{index}".encode()


def split(data: bytes) -> list[bytes]:
    return [data[i:i + CHUNK_BYTES] for i in range(0, len(data), CHUNK_BYTES)] or [b""]


def encode_manifest(data: bytes, num_chunks: int) -> bytes:
    return json.dumps({"size": len(data), "chunks": num_chunks}).encode()


def decode_manifest(raw: bytes) -> tuple[int, int]:
    fields = json.loads(raw)
    return int(fields["size"]), int(fields["chunks"])


def check_assembled(digest: str, data: bytes) -> bytes:
    if hashlib.sha256(data).hexdigest() != digest:
        raise ValueError(f"package {digest[:12]} read back from the GCS does not match its hash")
    return data


def _too_large(what: str, size: int, limit: int) -> PackageTooLarge:
    return PackageTooLarge(
        f"{what} is {size / 2**20:.1f} MiB, over the limit of {limit / 2**20:.1f} MiB "
        "(EMBER_RUNTIME_ENV_MAX_BYTES); leave large files out with runtime_env['excludes'] "
        "or keep them in shared storage")


def pack(path: str, excludes: Iterable[str], max_bytes: int, prefix: str = "") -> bytes:
    """A local directory zipped deterministically (sorted, fixed times,
    `excludes` as gitignore patterns relative to it, entries under
    `prefix/` if given), or a .zip/.whl file as it is. Raises
    FileNotFoundError, ValueError or PackageTooLarge."""
    source = pathlib.Path(path)
    if not source.exists():
        raise FileNotFoundError(f"{path!r} does not exist")
    if source.is_file():
        if source.suffix not in (".zip", ".whl"):
            raise ValueError(f"{path!r} is a file; give a directory, a .zip or a .whl")
        size = source.stat().st_size
        if size > max_bytes:
            raise _too_large(path, size, max_bytes)
        return source.read_bytes()
    import pathspec  # (drivers that use a working_dir only)

    # `excludes` apply from the top; each .gitignore found applies below its
    # directory (as Ray honours them), .git itself is never packed.
    specs: list[tuple[pathlib.Path, Any]] = [(pathlib.Path("."), pathspec.GitIgnoreSpec.from_lines(list(excludes)))]

    def excluded(rel: pathlib.Path, is_dir: bool) -> bool:
        for base, spec in specs:
            if base == pathlib.Path(".") or base in rel.parents:
                sub = rel.relative_to(base).as_posix()
                if spec.match_file(f"{sub}/" if is_dir else sub):
                    return True
        return False

    buffer = io.BytesIO()
    total = 0
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for dirpath, dirnames, filenames in os.walk(source):
            rel_dir = pathlib.Path(dirpath).relative_to(source)
            ignore_file = pathlib.Path(dirpath) / ".gitignore"
            if ignore_file.is_file():
                specs.append((rel_dir, pathspec.GitIgnoreSpec.from_lines(ignore_file.read_text().splitlines())))
            dirnames[:] = sorted(d for d in dirnames if d not in ("__pycache__", ".git")
                                 and not excluded(rel_dir / d, True))
            for name in sorted(filenames):
                rel = (rel_dir / name).as_posix()
                full = os.path.join(dirpath, name)
                if excluded(rel_dir / name, False) or not os.path.isfile(full):
                    continue
                total += os.path.getsize(full)
                if total > max_bytes:
                    raise _too_large(f"{path!r} (after excludes)", total, max_bytes)
                info = zipfile.ZipInfo(f"{prefix}/{rel}" if prefix else rel, _EPOCH)
                info.external_attr = (stat.S_IMODE(os.stat(full).st_mode) | stat.S_IFREG) << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                with open(full, "rb") as f:
                    archive.writestr(info, f.read())
    data = buffer.getvalue()
    if len(data) > max_bytes:
        raise _too_large(f"{path!r} zipped", len(data), max_bytes)
    return data


def unpack(data: bytes, dest: pathlib.Path) -> None:
    """Extract a package into `dest` atomically (a temporary directory
    renamed into place), keeping file modes. Entries that would land
    outside `dest` are refused."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = pathlib.Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for info in archive.infolist():
                target = (tmp / info.filename).resolve()
                if not str(target).startswith(str(tmp.resolve()) + os.sep) and target != tmp.resolve():
                    raise ValueError(f"package entry {info.filename!r} points outside its directory")
                archive.extract(info, tmp)
                mode = info.external_attr >> 16
                if mode and not info.is_dir():
                    os.chmod(target, stat.S_IMODE(mode))
        os.rename(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if not dest.exists():
            raise
