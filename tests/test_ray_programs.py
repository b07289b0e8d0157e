"""The Ray Core programs of examples/ray_programs run on Ember with only
their imports changed (each is its own driver with a private cluster)."""

from __future__ import annotations

import importlib.util
import pathlib
import sys

import pytest

_RUNNER = pathlib.Path(__file__).resolve().parent.parent / "examples" / "ray_programs" / "run.py"
_spec = importlib.util.spec_from_file_location("ray_programs_run", _RUNNER)
assert _spec is not None and _spec.loader is not None
runner = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(runner)


@pytest.mark.parametrize("program", runner.programs(), ids=lambda p: p.stem)
def test_ray_program_runs(program):
    done = runner.run(program, sys.executable, with_ray=False, timeout=240)
    assert done.returncode == 0, done.stderr[-4000:]
    assert done.stdout.strip().splitlines()[-1].startswith(f"{program.stem.replace('_', ' ')} OK"), done.stdout


def test_the_programs_turn_back_into_ray_programs():
    source = "import ember as ray\nfrom ember.util.queue import Queue\nfrom ember import exceptions\nx = 'import ember'\n"
    assert runner.as_ray(source) == "import ray\nfrom ray.util.queue import Queue\nfrom ray import exceptions\nx = 'import ember'\n"
