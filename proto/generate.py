"""Generate the gRPC stubs from proto/ember/v1/*.proto: Python's, and the
Node client's TypeScript (ts-proto, from clients/node's dev dependencies:
`npm ci` there first; without it the Node stubs are skipped, with a note).

    python proto/generate.py            # writes clients/python/ember/v1/ and clients/node/src/generated/
    python proto/generate.py --out DIR  # writes DIR/ember/v1/ and DIR/node/ (drift test)

The committed stubs must equal a fresh generation; tests/test_protos.py checks.
"""

from __future__ import annotations

import argparse
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "proto"
DEFAULT_OUT = ROOT / "clients" / "python"
NODE_CLIENT = ROOT / "clients" / "node"
NODE_DEFAULT_OUT = NODE_CLIENT / "src" / "generated"
# ts-proto's options: grpc-js service clients, Node Buffers for bytes, numbers for 64-bit ints.
TS_PROTO_OPTIONS = "outputServices=grpc-js,env=node,esModuleInterop=true,forceLong=number,useOptionals=messages"


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


def ts_proto_plugin() -> pathlib.Path | None:
    plugin = NODE_CLIENT / "node_modules" / ".bin" / "protoc-gen-ts_proto"
    return plugin if plugin.exists() else None


def generate_node(out: pathlib.Path) -> bool:
    """The Node client's stubs; False if ts-proto is not installed."""
    from grpc_tools import protoc

    plugin = ts_proto_plugin()
    if plugin is None:
        return False
    out.mkdir(parents=True, exist_ok=True)
    args = [
        "grpc_tools.protoc",
        f"-I{PROTO_ROOT}",
        f"--plugin=protoc-gen-ts_proto={plugin}",
        f"--ts_proto_out={out}",
        f"--ts_proto_opt={TS_PROTO_OPTIONS}",
        *[str(p.relative_to(PROTO_ROOT)) for p in proto_files()],
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc (ts-proto) failed")
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=pathlib.Path, default=None)
    out = parser.parse_args().out
    generate(out or DEFAULT_OUT)
    if not generate_node(out / "node" if out else NODE_DEFAULT_OUT):
        print("note: Node stubs not generated: run `npm ci` in clients/node first (ts-proto)", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
