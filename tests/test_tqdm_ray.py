"""Progress bars made in tasks and actors are drawn by the driver: their
state lines never show as such."""

import ember
from ember._private import bar_state
from ember.experimental import tqdm_ray
from tests.helpers import driver_output


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


def test_a_tasks_bar_reaches_its_total_in_the_driver(cluster):
    with driver_output() as output:
        assert ember.get(copy_files.remote(500), timeout=60) == 500
        out, err = output.wait_for(lambda out, err: "500/500" in err and "copied" in out, "the finished bar")
    (last,) = [line for line in err.splitlines() if "500/500" in line]
    assert last.startswith("(copy_files pid=") and "copy files: 100%|" in last
    assert "copying" in out
    assert bar_state.MARKER not in out + err


def test_an_actors_bar_is_drawn_too(cluster):
    indexer = Indexer.remote()
    with driver_output() as output:
        assert ember.get(indexer.index.remote(5), timeout=60) == 5
        out, err = output.wait_for(lambda out, err: "5/5" in err, "the actor's finished bar")
    lines = [line for line in err.splitlines() if "index:" in line]
    assert [line.split("|")[-1].split(" [")[0] for line in lines] == [" 0/5", " 1/5", " 2/5", " 3/5", " 4/5", " 5/5"]
    assert all(line.startswith("(Indexer.index pid=") for line in lines)
    assert bar_state.MARKER not in out + err
