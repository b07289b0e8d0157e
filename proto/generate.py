"""Generate the Python gRPC stubs from proto/ember/v1/*.proto.

    python proto/generate.py            # writes clients/python/ember/v1/
    python proto/generate.py --out DIR  # writes DIR/ember/v1/ (drift test)

The committed stubs must equal a fresh generation; tests/test_protos.py checks.
"""

from __future__ import annotations

import argparse
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "proto"
DEFAULT_OUT = ROOT / "clients" / "python"


def proto_files() -> list[pathlib.Path]:
    return sorted((PROTO_ROOT / "ember" / "v1").glob("*.proto"))


def generate(out: pathlib.Path) -> None:
    from grpc_tools import protoc  # build-time dependency only

    (out / "ember" / "v1").mkdir(parents=True, exist_ok=True)
    args = [
        "grpc_tools.protoc",
        f"-I{PROTO_ROOT}",
        f"--python_out={out}",
        f"--pyi_out={out}",
        f"--grpc_python_out={out}",
        *[str(p.relative_to(PROTO_ROOT)) for p in proto_files()],
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=pathlib.Path, default=DEFAULT_OUT)
    generate(parser.parse_args().out)


if __name__ == "__main__":
    sys.exit(main())
