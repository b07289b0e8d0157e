"""Run the Ray programs of this folder, each as its own driver process.

    python examples/ray_programs/run.py                       # with Ember
    python examples/ray_programs/run.py --ray-python PYTHON   # the same programs with Ray

Each program is a Ray Core program whose only change is its imports
(`import ember as ray`, `from ember.util... import ...`); with
--ray-python the imports are turned back to Ray's and the program runs on
the Python that has Ray installed, to show that the programs are Ray's."""

from __future__ import annotations

import argparse
import pathlib
import re
import subprocess
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent


def programs() -> list[pathlib.Path]:
    return sorted(p for p in HERE.glob("*.py") if p.name != "run.py")


def as_ray(source: str) -> str:
    """The program with Ray's imports instead of Ember's."""
    source = re.sub(r"^import ember as ray$", "import ray", source, flags=re.M)
    return re.sub(r"^from ember(\.[\w.]+)? import", lambda m: f"from ray{m.group(1) or ''} import", source, flags=re.M)


def run(program: pathlib.Path, python: str, with_ray: bool, timeout: float) -> subprocess.CompletedProcess[str]:
    if not with_ray:
        return subprocess.run([python, str(program)], capture_output=True, text=True, timeout=timeout)
    with tempfile.TemporaryDirectory() as tmp:
        copy = pathlib.Path(tmp) / program.name
        copy.write_text(as_ray(program.read_text()))
        return subprocess.run([python, str(copy)], capture_output=True, text=True, timeout=timeout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ray-python", help="a Python with Ray installed: run the programs with Ray instead")
    parser.add_argument("--timeout", type=float, default=300)
    args = parser.parse_args()
    failed = 0
    for program in programs():
        start = time.monotonic()
        done = run(program, args.ray_python or sys.executable, bool(args.ray_python), args.timeout)
        last = (done.stdout.strip().splitlines() or [""])[-1]
        print(f"{program.name:24} {'ok' if done.returncode == 0 else 'FAILED':6} {time.monotonic() - start:6.1f} s  {last}")
        if done.returncode != 0:
            failed += 1
            print(done.stderr[-3000:], file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
