"""Progress bars made in tasks and actors are drawn by the driver: their
state lines never show as such."""

import contextlib
import io

import ember
from ember._private import bar_state
from ember.experimental import tqdm_ray
from tests.helpers import wait_until


@ember.remote
def copy_files(n):
    print("copying")
    for _ in tqdm_ray.tqdm(range(n), desc="copy files"):  # default flush interval: the end is forced
        pass
    tqdm_ray.safe_print("copied")
    return n


@ember.remote
class Indexer:
    def index(self, n):
        bar = tqdm_ray.tqdm(total=n, desc="index", unit="doc", flush_interval_s=0)
        for _ in range(n):
            bar.update(1)
        bar.close()
        return n


@contextlib.contextmanager
def driver_output():
    """What the driver prints meanwhile, recorded whole. (Not capfd:
    polling it races the client's reader thread, and a line written between
    a snapshot's read and its truncation is lost. Set in the test's body:
    pytest sets sys.stdout again after fixtures ran.)"""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        yield out, err


def _output_until(output, condition, what):
    out, err = output
    try:
        wait_until(lambda: condition(out.getvalue(), err.getvalue()), timeout=30, what=what)
    except AssertionError as e:
        raise AssertionError(f"{e}; stdout {out.getvalue()[-1000:]!r}, stderr {err.getvalue()[-1000:]!r}") from None
    return out.getvalue(), err.getvalue()


def test_a_tasks_bar_reaches_its_total_in_the_driver(cluster):
    with driver_output() as output:
        assert ember.get(copy_files.remote(500), timeout=60) == 500
        out, err = _output_until(output, lambda out, err: "500/500" in err and "copied" in out, "the finished bar")
    (last,) = [line for line in err.splitlines() if "500/500" in line]
    assert last.startswith("(copy_files pid=") and "copy files: 100%|" in last
    assert "copying" in out
    assert bar_state.MARKER not in out + err


def test_an_actors_bar_is_drawn_too(cluster):
    indexer = Indexer.remote()
    with driver_output() as output:
        assert ember.get(indexer.index.remote(5), timeout=60) == 5
        out, err = _output_until(output, lambda out, err: "5/5" in err, "the actor's finished bar")
    lines = [line for line in err.splitlines() if "index:" in line]
    assert [line.split("|")[-1].split(" [")[0] for line in lines] == [" 0/5", " 1/5", " 2/5", " 3/5", " 4/5", " 5/5"]
    assert all(line.startswith("(Indexer.index pid=") for line in lines)
    assert bar_state.MARKER not in out + err
