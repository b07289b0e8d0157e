"""The dashboard (ember-dashboard) of a real `ember start --head` cluster:
its /api/ over HTTP with and without the token, bad input, the login
cookie, its memory, and its pages in a real headless Chromium (Debian's
`chromium`) showing the cluster's nodes, actors and task waterfall with
no console errors."""

from __future__ import annotations

import http.client
import json
import os
import pathlib
import re
import shutil
import socket
import subprocess
import sys
import textwrap
import time
import urllib.parse

import psutil
import pytest

import ember
from ember._private.node_launcher import free_port
from ember.util.placement_group import placement_group
from tests import chromium
from tests.conftest import pid_gone
from tests.helpers import wait_until

EMBER = shutil.which("ember", path=os.path.dirname(sys.executable)) or "ember"
ROOT = pathlib.Path(__file__).resolve().parents[1]
PSS_LIMIT = 40 * 2**20


@ember.remote
def dash_leaf(x):
    time.sleep(0.05)
    return x


@ember.remote
def dash_parent(n):
    return sum(ember.get([dash_leaf.remote(i) for i in range(n)]))


@ember.remote
class DashCounter:
    def __init__(self):
        self.n = 0

    def inc(self):
        self.n += 1
        return self.n


class Dashboard:
    def __init__(self, url: str, token: str, session_dir: pathlib.Path, pid: int) -> None:
        parts = urllib.parse.urlsplit(url)
        self.url, self.host, self.port = url, parts.hostname, parts.port
        self.token, self.session_dir, self.pid = token, session_dir, pid

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None,
                token: bool = True) -> tuple[int, dict, bytes]:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        try:
            all_headers = {**({"Authorization": f"Bearer {self.token}"} if token else {}), **(headers or {})}
            conn.request(method, path, body=body, headers=all_headers)
            reply = conn.getresponse()
            return reply.status, {k.lower(): v for k, v in reply.getheaders()}, reply.read()
        finally:
            conn.close()

    def get_json(self, path: str, status: int = 200, **kw) -> dict:
        code, _, body = self.request("GET", path, **kw)
        assert code == status, (path, code, body[:500])
        return json.loads(body)

    def rows(self, path: str) -> list[dict]:
        return self.get_json(path)["data"]["result"]["result"]


@pytest.fixture(scope="module")
def dash():
    port = free_port()
    out = subprocess.run([EMBER, "start", "--head", "--port", str(port), "--num-cpus", "2"],
                         capture_output=True, text=True, timeout=90)
    assert out.returncode == 0, out.stderr
    url = re.search(r"dashboard: (http://\S+)", out.stdout).group(1)
    session_dir = pathlib.Path(re.search(r"session: +(\S+)", out.stdout).group(1))
    token = (session_dir / "token").read_text().strip()
    record = json.loads(next((session_dir / "nodes").glob("*.json")).read_text())
    d = Dashboard(url, token, session_dir, record["pids"]["dashboard"])
    ember.init(address="auto")
    try:
        # What the pages show: nested tasks, a live and a dead actor, an object, a placement group.
        assert ember.get([dash_parent.remote(3) for _ in range(3)]) == [3, 3, 3]
        d.counter = DashCounter.options(name="dash_counter").remote()
        assert ember.get(d.counter.inc.remote()) == 1
        doomed = DashCounter.options(name="dash_doomed").remote()
        ember.get(doomed.inc.remote())
        ember.kill(doomed)
        d.object = ember.put(b"x" * 300_000)
        d.group = placement_group([{"CPU": 0.5}], name="dash_group")
        ember.get(d.group.ready(), timeout=30)
        wait_until(lambda: any(a["name"] == "dash_doomed" and a["state"] == "DEAD" for a in d.rows("/api/v0/actors")),
                   timeout=30, what="the killed actor DEAD in the dashboard")
        yield d
    finally:
        ember.shutdown()
        stopped = subprocess.run([EMBER, "stop"], capture_output=True, text=True, timeout=60)
        assert stopped.returncode == 0, stopped.stderr
        assert pid_gone(d.pid), "`ember stop` left the dashboard running"


def test_start_prints_the_url_and_it_listens_on_loopback(dash):
    assert dash.host == "127.0.0.1" and dash.port != 8265  # (the tests' EMBER_DASHBOARD_PORT=0)
    listening = [c for c in psutil.Process(dash.pid).net_connections("tcp") if c.status == psutil.CONN_LISTEN]
    assert [(c.laddr.ip, c.laddr.port) for c in listening] == [("127.0.0.1", dash.port)]


def test_without_the_token_everything_but_the_login_form_is_401(dash):
    for path in ("/api/v0/nodes", "/api/cluster", "/api/waterfall", "/api/metrics", "/api/nope", "/",
                 "/static/app.js", "/static/style.css", "/nope"):
        code, headers, body = dash.request("GET", path, token=False)
        assert code == 401, path
        assert headers["www-authenticate"].startswith("Bearer")
        if path.startswith("/api/"):
            assert "token" in json.loads(body)["msg"]
        else:
            assert b'action="/login"' in body and b"app.js" not in body  # the login form, nothing of the app
    wrong = [{"Authorization": f"Bearer {dash.token}x"}, {"Authorization": f"Basic {dash.token}"},
             {"Authorization": dash.token}, {"Cookie": f"ember_dashboard={dash.token}"},
             {"Cookie": "ember_dashboard=" + "0" * 64}]
    for headers in wrong:
        code, _, _ = dash.request("GET", "/api/v0/nodes", headers=headers, token=False)
        assert code == 401, headers
    assert dash.request("POST", "/api/v0/nodes", token=False)[0] == 401
    code, _, body = dash.request("GET", "/login", token=False)
    assert code == 200 and b'name="token"' in body


def test_the_login_form_sets_an_httponly_strict_cookie_that_opens_it(dash):
    form = urllib.parse.urlencode({"token": dash.token}).encode()
    code, headers, _ = dash.request("POST", "/login", form, {"Content-Type": "application/x-www-form-urlencoded"},
                                    token=False)
    assert code == 303 and headers["location"] == "/"
    cookie = headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and dash.token not in cookie
    session = {"Cookie": cookie.split(";")[0]}
    assert dash.get_json("/api/v0/nodes", headers=session, token=False)["result"] is True
    code, _, body = dash.request("GET", "/", headers=session, token=False)
    assert code == 200 and b"/static/app.js" in body
    # A wrong token: the form again, with why, and no cookie.
    bad = urllib.parse.urlencode({"token": "not-the-token"}).encode()
    code, headers, body = dash.request("POST", "/login", bad, token=False)
    assert code == 401 and "set-cookie" not in headers and b"not this cluster" in body
    code, headers, _ = dash.request("POST", "/logout", token=False)
    assert code == 303 and "Max-Age=0" in headers["set-cookie"]


def test_api_lists_the_cluster_as_the_state_api_does(dash):
    nodes = dash.rows("/api/v0/nodes")
    assert len(nodes) == 1 and nodes[0]["state"] == "ALIVE" and nodes[0]["is_head_node"]
    # The placement group's bundle holds half a CPU (as the node's next resource report says).
    cluster = wait_until(lambda: (c := dash.get_json("/api/cluster"))["resources"]["CPU"]["used"] == 0.5 and c,
                         timeout=30, what="the bundle's CPU counted as used")
    assert cluster["alive"] == 1 and cluster["dead"] == 0 and cluster["resources"]["CPU"]["total"] == 2
    actors = {a["name"]: a for a in dash.rows("/api/v0/actors")}
    assert actors["dash_counter"]["state"] == "ALIVE" and actors["dash_counter"]["class_name"] == "DashCounter"
    assert actors["dash_doomed"]["state"] == "DEAD" and actors["dash_doomed"]["death_cause"]["cause"]
    leaves = dash.rows("/api/v0/tasks?filter_keys=name&filter_predicates=%3D&filter_values=dash_leaf&limit=1000")
    assert len(leaves) == 9 and {t["state"] for t in leaves} == {"FINISHED"}
    summary = dash.get_json("/api/v0/tasks/summarize")["data"]["result"]["node_id_to_summary"]["cluster"]
    assert summary["summary"]["dash_parent"]["state_counts"] == {"FINISHED": 3}
    objects = dash.rows("/api/v0/objects")
    assert any(o["object_size"] >= 300_000 for o in objects)
    groups = dash.rows("/api/v0/placement_groups")
    assert [(g["name"], g["state"]) for g in groups] == [("dash_group", "CREATED")]
    assert dash.rows("/api/v0/jobs")[-1]["status"] == "RUNNING"


def test_api_waterfall_nests_tasks_and_names_a_critical_path(dash):
    fall = dash.get_json("/api/waterfall")
    runs = {t["task_id"]: t for t in fall["tasks"]}
    parents = [t for t in runs.values() if t["name"] == "dash_parent"]
    assert len(parents) == 3
    for p in parents:
        kids = [t for t in runs.values() if t["parent_task_id"] == p["task_id"]]
        assert len(kids) == 3
        assert all(p["start_time_ms"] <= k["start_time_ms"] <= k["end_time_ms"] <= p["end_time_ms"] for k in kids)
    path = fall["critical_path"]
    assert path and all(key.split(":")[0] in runs for key in path)
    ends = [runs[key.split(":")[0]]["end_time_ms"] for key in path]
    assert ends[-1] == max(t["end_time_ms"] for t in runs.values() if t["end_time_ms"])
    assert len(dash.get_json("/api/waterfall?limit=2")["tasks"]) == 2


def test_api_metrics_sums_the_nodes_endpoints(dash):
    m = dash.get_json("/api/metrics")
    assert not m["missing"]
    values = m["values"]
    assert values["ember_tasks_succeeded"] >= 13 and values["ember_object_store_capacity_bytes"] > 0
    assert values["ember_workers{actor}"] >= 1
    node_id = dash.rows("/api/v0/nodes")[0]["node_id"]
    assert list(m["nodes"]) == [node_id]
    assert m["nodes"][node_id]["ember_object_store_used_bytes"] >= 300_000


def test_bad_requests_get_a_clear_error_and_change_nothing(dash):
    cases = {
        "/api/v0/tasks?limit=abc": (400, "limit must be an integer"),
        "/api/v0/tasks?limit=-1": (400, "between 0 and"),
        "/api/v0/tasks?limit=99999999": (400, "between 0 and"),
        "/api/v0/tasks?filter_keys=colour&filter_predicates=%3D&filter_values=red": (400, "unknown filter key 'colour'"),
        "/api/v0/tasks?filter_keys=name&filter_predicates=~&filter_values=x": (400, "unknown predicate"),
        "/api/v0/tasks?filter_keys=name&filter_values=x": (400, "equal numbers"),
        "/api/v0/things": (404, "no resource 'things'"),
        "/api/v0/nodes/summarize": (404, "no such path"),
        "/api/v0/tasks/explode": (404, "no such path"),
        "/api/nope": (404, "no such path"),
        "/api/waterfall?limit=x": (400, "limit must be an integer"),
        "/api/v0/tasks?" + "&".join(f"k{i}=v" for i in range(200)): (400, "Max number of fields"),
    }
    for path, (status, words) in cases.items():
        body = dash.get_json(path, status=status)
        assert body["result"] is False and words in body["msg"], (path, body)
    assert dash.request("POST", "/api/v0/nodes")[0] == 405
    for path in ("/static/../web_auth.py", "/static/%2e%2e/api.py", "/static/", "/static/nope.js"):
        assert dash.request("GET", path)[0] == 404, path
    code, _, _ = dash.request("POST", "/login", b"t" * 100_000, token=False)
    assert code == 400
    code, _, _ = dash.request("POST", "/login", b"token=", {"Content-Length": "-5"}, token=False)
    assert code == 400
    # Malformed requests: an error status, and the server goes on serving.
    for raw, status in [(b"GARBAGE\r\n\r\n", b"400"), (b"GET / HTTP/1.1 x\r\n\r\n", b"400"),
                        (b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * 200 + b"\r\n", b"431")]:
        with socket.create_connection((dash.host, dash.port), timeout=10) as s:
            s.sendall(raw)
            assert s.recv(100).startswith(b"HTTP/1.1 " + status), raw[:40]
    assert dash.rows("/api/v0/nodes")[0]["state"] == "ALIVE"


def test_answers_carry_security_headers(dash):
    for path in ("/", "/api/v0/nodes", "/static/app.js"):
        _, headers, _ = dash.request("GET", path)
        assert "default-src 'self'" in headers["content-security-policy"]
        assert headers["x-content-type-options"] == "nosniff" and headers["cache-control"] == "no-store"
    _, headers, _ = dash.request("GET", "/static/app.js")
    assert headers["content-type"].startswith("text/javascript") or "javascript" in headers["content-type"]


def test_idle_memory_is_under_40_mb(dash):
    for _ in range(3):  # after it has answered every kind of request
        for path in ("/api/cluster", "/api/v0/tasks", "/api/waterfall", "/api/metrics", "/api/v0/objects", "/"):
            dash.request("GET", path)
    pss = 0
    with open(f"/proc/{dash.pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                pss = int(line.split()[1]) * 1024
    print(f"dashboard idle PSS: {pss / 2**20:.1f} MiB")
    assert 0 < pss < PSS_LIMIT


def _need_chromium() -> None:
    if chromium.find() is None:
        if os.environ.get("CI"):
            pytest.fail("CI must have chromium (.ci/run installs Debian's package)")
        pytest.skip("no chromium on this machine (apt-get install chromium)")


def test_pages_in_a_real_browser(dash, tmp_path):
    _need_chromium()
    with chromium.Browser() as browser:
        browser.navigate(f"{dash.url}/login")
        browser.wait_for("document.getElementById('token') !== null", what="the login form")
        browser.evaluate(f"document.getElementById('token').value = {json.dumps(dash.token)}; "
                         "document.forms[0].submit(); true")
        browser.wait_for("document.body.dataset.loaded === 'cluster'", what="the cluster page")
        node_id = dash.rows("/api/v0/nodes")[0]["node_id"]
        assert browser.evaluate("[...document.querySelectorAll('.node-id')].map(e => e.textContent)") == [node_id[:8]]
        assert browser.evaluate("document.getElementById('nodes-alive').textContent") == "1"
        assert browser.evaluate("document.cookie") == ""  # HttpOnly: no script reads it

        def show(page: str) -> None:
            browser.evaluate(f"location.hash = '#{page}'; true")
            browser.wait_for(f"document.body.dataset.loaded === '{page}'", what=f"the {page} page")

        show("actors")
        text = browser.evaluate("document.getElementById('main').innerText")
        assert "DashCounter" in text and "ALIVE" in text and "DEAD" in text
        show("tasks")
        bars = browser.evaluate("[...document.querySelectorAll('#waterfall rect.task')].map(r => r.dataset.taskId)")
        assert len(bars) >= 13  # 3 parents, 9 leaves, the actors' calls
        assert browser.evaluate("document.querySelectorAll('#waterfall rect.task.critical').length") >= 1
        labels = browser.evaluate("[...document.querySelectorAll('#waterfall .row-label')].map(e => e.textContent)")
        assert len(labels) >= 2 and all(label.startswith(f"node {node_id[:8]} · pid ") for label in labels)
        browser.screenshot(str(tmp_path / "tasks.png"))
        if os.environ.get("EMBER_DASHBOARD_SCREENSHOT"):  # (how docs/dashboard.png is made)
            browser.screenshot(os.environ["EMBER_DASHBOARD_SCREENSHOT"])
        show("objects")
        text = browser.evaluate("document.getElementById('main').innerText")
        assert "293.0 KiB" in text and "Memory per node" in text and node_id[:8] in text
        show("placement-groups")
        assert "dash_group" in browser.evaluate("document.getElementById('main').innerText")
        show("jobs")
        assert "RUNNING" in browser.evaluate("document.getElementById('main').innerText")
        show("metrics")
        browser.wait_for("document.querySelectorAll('polyline.line').length >= 4", what="the charts")
        assert (tmp_path / "tasks.png").stat().st_size > 10_000
        assert browser.errors == [], browser.errors


def test_init_can_start_one_for_its_private_cluster(tmp_path):
    """ember.init() starts none unless asked (include_dashboard=True); shutdown stops it."""
    script = textwrap.dedent("""
        import json, sys, urllib.request, urllib.error
        import ember
        info = ember.init(num_cpus=1, include_dashboard=True, dashboard_port=0)
        url = info["dashboard_url"]
        try:
            urllib.request.urlopen(url + "/api/v0/nodes")
            sys.exit("no 401")
        except urllib.error.HTTPError as e:
            assert e.code == 401
        token = open(info["session_dir"] + "/token").read().strip()
        req = urllib.request.Request(url + "/api/v0/nodes", headers={"Authorization": "Bearer " + token})
        rows = json.load(urllib.request.urlopen(req))["data"]["result"]["result"]
        record = json.load(open(next(__import__("pathlib").Path(info["session_dir"], "nodes").glob("*.json"))))
        ember.shutdown()
        print(json.dumps({"url": url, "nodes": len(rows), "pid": record["pids"]["dashboard"]}))
        info = ember.init(num_cpus=1)
        assert info["dashboard_url"] is None
        ember.shutdown()
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["nodes"] == 1 and result["url"].startswith("http://127.0.0.1:")
    assert pid_gone(result["pid"])
