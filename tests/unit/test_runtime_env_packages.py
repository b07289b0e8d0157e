"""runtime_env packages and the resolved form: deterministic zips named by
content, excludes, the size limit, safe unpacking, canonical JSON, Ray's merge."""

import io
import os
import zipfile

import pytest

from ember_common import runtime_env_packages as packages
from ember_common.runtime_env_spec import PipSpec, ResolvedEnv


def _tree(root):
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "__init__.py").write_text("X = 1\n")
    (root / "main.py").write_text("print('hi')\n")
    (root / "data.log").write_text("noise\n")
    (root / "build").mkdir()
    (root / "build" / "out.o").write_text("obj\n")
    (root / "pkg" / "__pycache__").mkdir()
    (root / "pkg" / "__pycache__" / "x.pyc").write_bytes(b"\0")
    os.chmod(root / "main.py", 0o755)


def test_a_directory_packs_to_the_same_bytes_and_honours_excludes(tmp_path):
    _tree(tmp_path / "a")
    first = packages.pack(str(tmp_path / "a"), ["*.log", "build/"], 1 << 20)
    os.utime(tmp_path / "a" / "main.py", (0, 0))  # times do not change the package
    assert packages.pack(str(tmp_path / "a"), ["*.log", "build/"], 1 << 20) == first
    names = zipfile.ZipFile(io.BytesIO(first)).namelist()
    assert names == ["main.py", "pkg/__init__.py"]
    assert packages.package_uri(first) != packages.package_uri(packages.pack(str(tmp_path / "a"), [], 1 << 20))
    prefixed = zipfile.ZipFile(io.BytesIO(packages.pack(str(tmp_path / "a" / "pkg"), [], 1 << 20, prefix="pkg")))
    assert prefixed.namelist() == ["pkg/__init__.py"]


def test_gitignore_files_are_honoured_below_their_directory(tmp_path):
    root = tmp_path / "repo"
    _tree(root)
    (root / ".gitignore").write_text("*.log\n")
    (root / "pkg" / ".gitignore").write_text("secret.txt\n")
    (root / "pkg" / "secret.txt").write_text("x")
    (root / "secret.txt").write_text("kept: the pkg/.gitignore is not about this one")
    (root / ".git").mkdir()
    (root / ".git" / "HEAD").write_text("ref\n")
    names = zipfile.ZipFile(io.BytesIO(packages.pack(str(root), ["build/"], 1 << 20))).namelist()
    assert names == [".gitignore", "main.py", "secret.txt", "pkg/.gitignore", "pkg/__init__.py"]


def test_unpack_keeps_modes_and_refuses_escapes(tmp_path):
    _tree(tmp_path / "a")
    data = packages.pack(str(tmp_path / "a"), [], 1 << 20)
    packages.unpack(data, tmp_path / "out")
    assert (tmp_path / "out" / "pkg" / "__init__.py").read_text() == "X = 1\n"
    assert os.stat(tmp_path / "out" / "main.py").st_mode & 0o777 == 0o755
    evil = io.BytesIO()
    with zipfile.ZipFile(evil, "w") as z:
        z.writestr("../escape.txt", "x")
    with pytest.raises(ValueError, match="points outside"):
        packages.unpack(evil.getvalue(), tmp_path / "evil")
    assert not (tmp_path / "evil").exists() and not (tmp_path / "escape.txt").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # nothing half-made left


def test_too_large_and_missing_are_clear_errors(tmp_path):
    (tmp_path / "big").mkdir()
    (tmp_path / "big" / "blob").write_bytes(os.urandom(4096))
    with pytest.raises(packages.PackageTooLarge, match="is 0.0 MiB, over the limit of 0.0 MiB .*excludes"):
        packages.pack(str(tmp_path / "big"), [], 1024)
    assert packages.pack(str(tmp_path / "big"), ["blob"], 1024)  # excluded: fits
    with pytest.raises(FileNotFoundError, match="does not exist"):
        packages.pack(str(tmp_path / "nope"), [], 1024)
    (tmp_path / "f.txt").write_text("x")
    with pytest.raises(ValueError, match="give a directory, a .zip or a .whl"):
        packages.pack(str(tmp_path / "f.txt"), [], 1024)


def test_chunks_and_manifest_round_trip():
    data = os.urandom(packages.CHUNK_BYTES * 2 + 5)
    uri = packages.package_uri(data)
    digest = packages.digest_of(uri)
    chunks = packages.split(data)
    assert len(chunks) == 3
    assert packages.decode_manifest(packages.encode_manifest(data, 3)) == (len(data), 3)
    assert packages.check_assembled(digest, b"".join(chunks)) == data
    with pytest.raises(ValueError, match="does not match"):
        packages.check_assembled(digest, data[:-1])
    with pytest.raises(ValueError, match="not an Ember package URI"):
        packages.digest_of("s3://bucket/x.zip")


def test_resolved_env_is_canonical_and_merges_as_ray():
    assert ResolvedEnv().to_json() == ""
    env = ResolvedEnv(env_vars=(("A", "1"), ("B", "2")), pip=PipSpec(("x==1",), ("--no-index",)))
    text = env.to_json()
    assert ResolvedEnv.from_json(text) == env and ResolvedEnv.from_json(text).to_json() == text
    child = ResolvedEnv(env_vars=(("B", "3"),), working_dir="gcs://_ember_pkg_" + "0" * 64 + ".zip")
    merged = env.merged_under(child, {"env_vars", "working_dir"})
    assert dict(merged.env_vars) == {"A": "1", "B": "3"} and merged.pip == env.pip
    assert merged.working_dir == child.working_dir
    assert env.merged_under(ResolvedEnv(), {"pip"}).pip is None  # the child's own pip (none) wins
    for bad, match in [('{"conda": 1}', "unknown keys"), ("[", "not JSON"), ('{"env_vars": {"A": 1}}', "env_vars"),
                       ('{"pip": {"packages": [1]}}', "pip")]:
        with pytest.raises(ValueError, match=match):
            ResolvedEnv.from_json(bad)
