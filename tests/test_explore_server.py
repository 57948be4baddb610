"""actlab explore's server: every endpoint against a real uvicorn server on a free port.

Values are checked against actlab's kernels (one source of truth); bad parameters must get a 4xx
with one clear JSON message; the runs folder must not leak anything outside it; streams are bounded
and closing one stops its training.
"""

from __future__ import annotations

import http.client
import math
import os
import threading
import time

import numpy as np
import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
pytest.importorskip("plotly")
httpx = pytest.importorskip("httpx")

from _explore_server import LiveServer, sse_events  # noqa: E402
from actlab import catalog, kernels  # noqa: E402
from actlab.compare.store import Store  # noqa: E402
from actlab.explore import server as srv  # noqa: E402

SECRET = "top-secret-outside-the-runs-folder"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("explore")
    (base / "secret.html").write_text(SECRET)
    (base / "secret.txt").write_text(SECRET)
    root = base / "runs"
    run = root / "moons-demo"
    run.mkdir(parents=True)
    config = {
        "data": {"dataset": "moons", "csv": None},
        "activations": ["relu", "tanh"],
        "seeds": 2,
        "train": {"epochs": 3},
    }
    Store.create(
        run,
        config=config,
        fingerprint="0" * 64,
        data={},
        jobs=[("relu", 0), ("tanh", 0)],
        command="actlab compare",
    ).close()
    (run / "report.html").write_text("<html><body>the moons report</body></html>")
    (run / "link.html").symlink_to(base / "secret.html")  # a symlink out of the folder
    (root / "escape").symlink_to(base, target_is_directory=True)  # a folder symlinked out
    (root / "not-a-run").mkdir()
    return root


@pytest.fixture(scope="module")
def live(runs):
    with LiveServer(runs, max_sessions=4) as server:
        yield server


@pytest.fixture()
def client(live):
    with httpx.Client(base_url=live.url, timeout=30) as c:
        yield c


def assert_user_error(response, status=400, *words):
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert "Traceback" not in body["error"] and "\n" not in body["error"]
    for w in words:
        assert w in body["error"], body["error"]
    return body["error"]


# ------------------------------------------------------------------ page and assets


def test_page_and_assets_are_served_locally(client):
    page = client.get("/")
    assert page.status_code == 200 and "actlab" in page.text
    assert "http://" not in page.text and "https://" not in page.text  # no CDN: works offline
    for name in ("common", "state", "functions", "playground", "runs", "main"):
        assert client.get(f"/static/{name}.js").status_code == 200
    assert "text/css" in client.get("/static/style.css").headers["content-type"]
    bundle = client.get("/vendor/plotly.min.js")
    assert bundle.status_code == 200 and len(bundle.content) > 1_000_000
    assert "javascript" in bundle.headers["content-type"]
    assert_user_error(client.get("/static/nope.js"), 404)
    assert_user_error(client.get("/api/nothing-here"), 404)


def test_other_hosts_and_non_json_posts_are_refused(client):
    # DNS rebinding: a page of evil.example resolving to 127.0.0.1 must not use the server
    r = client.get("/api/runs", headers={"Host": "evil.example:8765"})
    assert_user_error(r, 400, "127.0.0.1 or localhost", "evil.example")
    assert client.get("/api/catalog", headers={"Host": "localhost:8765"}).status_code == 200
    # a cross-site form post (text/plain, no CORS preflight) cannot start training
    r = client.post("/api/sessions", content=b"{}", headers={"Content-Type": "text/plain"})
    assert_user_error(r, 415, "application/json")


def test_catalog_lists_every_activation_with_slider_ranges(client):
    body = client.get("/api/catalog").json()
    names = [a["name"] for a in body["activations"]]
    assert names == catalog.names()
    by = {a["name"]: a for a in body["activations"]}
    slope = by["leaky_relu"]["params"][0]
    assert slope["name"] == "negative_slope" and slope["slider"]["min"] == 0.0
    assert slope["slider"]["max"] >= 0.3  # reaches Keras' default slope
    alpha = by["elu"]["params"][0]
    assert alpha["slider"]["min"] > 0.0  # the catalog's open lower bound is kept open
    assert by["gelu"]["params"][0]["choices"] == ["none", "tanh"]
    assert [p["name"] for p in by["silu"]["params"]] == ["beta"]  # torch-only 'learnable' hidden
    assert by["leaky_relu"]["article_params"] == {"negative_slope": 0.01}  # PyTorch's, as `list`
    assert body["softmax_default"] == [1, 2, 3, 4, 1, 2, 3]
    assert body["defaults"]["dataset"] in body["datasets"]
    for act in body["activations"]:  # every slider range is accepted by the catalog itself
        for p in act["params"]:
            if p["slider"]:
                for v in (p["slider"]["min"], p["slider"]["max"]):
                    catalog.parse(act["name"], **{p["name"]: v if p["kind"] == "float" else int(v)})


def test_slider_rule():
    p = catalog.get("softplus").param("threshold")
    assert srv.slider(p)["max"] == 60.0  # 3 x default where the catalog has no upper bound
    assert srv.slider(catalog.get("prelu").param("init")) == {"min": -1.0, "max": 1.0, "step": 0.01}
    assert srv.slider(catalog.get("gelu").param("approximate")) is None


# ------------------------------------------------------------------ functions


def test_curves_come_from_the_kernels(client):
    r = client.get(
        "/api/curves", params=[("spec", "elu:alpha=0.5"), ("spec", "relu"), ("n", "101")]
    )
    assert r.status_code == 200
    elu, relu = r.json()["curves"]
    assert elu["spec"] == "elu:alpha=0.5" and "alpha=0.5" in elu["label"]
    x = np.linspace(-5, 5, 101)
    np.testing.assert_allclose(elu["f"]["x"], x)
    np.testing.assert_allclose(elu["f"]["y"], kernels.elu(x, alpha=0.5), rtol=1e-5)
    # f' jumps at 0 (0.5 -> 1): one gap (null) is inserted there, the other points are the kernel's
    dx, dy = (np.array(elu["df"][k], dtype=float) for k in ("x", "y"))
    assert np.isnan(dy).sum() == 1 and len(dy) == 102
    keep = ~np.isnan(dy)
    np.testing.assert_allclose(dy[keep], kernels.elu_derivative(dx[keep], alpha=0.5), rtol=1e-5)
    # hover: f' beside f at the same x
    np.testing.assert_allclose(elu["f"]["other"], kernels.elu_derivative(x, alpha=0.5), rtol=1e-5)
    # ReLU: dead zone left of 0, a gap (null) where f' jumps, no vertical segment drawn
    assert relu["regions"]["dead"] == [[-5.0, 0.0]]
    assert None in relu["df"]["y"] and None not in relu["f"]["y"]


def test_sigmoid_saturation_zones(client):
    body = client.get("/api/curves", params={"spec": "sigmoid", "xmin": -10, "xmax": 10}).json()
    sat = body["curves"][0]["regions"]["saturation"]
    assert len(sat) == 2 and sat[0][0] == -10 and sat[1][1] == 10
    assert 4.5 < -sat[0][1] < 4.7  # |f'| < 0.01 for |x| > 4.6
    assert body["curves"][0]["regions"]["dead"] == []


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"spec": "rleu"}, ["unknown activation", "relu"]),
        ({"spec": "elu:alpha=-1"}, ["alpha", "(0, inf)"]),
        ({"spec": "leaky_relu:slope=abc"}, ["negative_slope"]),
        ({"spec": "softmax"}, ["softmax panel"]),
        ({}, ["at least one activation"]),
        ({"spec": "relu", "n": "100000"}, ["n (points per curve)", "5001"]),
        ({"spec": "relu", "n": "-3"}, ["n (points per curve)"]),
        ({"spec": "relu", "xmin": "nan"}, ["xmin"]),
        ({"spec": "relu", "xmin": "1e9"}, ["xmin", "1000"]),
        ({"spec": "relu", "xmin": "3", "xmax": "-3"}, ["below"]),
        ([("spec", "relu")] * 9, ["at most 8"]),
    ],
)
def test_curves_bad_parameters(client, params, words):
    assert_user_error(client.get("/api/curves", params=params), 400, *words)


def test_softmax_panel(client):
    body = client.get("/api/softmax").json()
    np.testing.assert_allclose(body["probabilities"], kernels.softmax([1, 2, 3, 4, 1, 2, 3]), 1e-5)
    assert body["logits"] == [1, 2, 3, 4, 1, 2, 3]
    cold = client.get("/api/softmax", params={"logits": "1 2 3", "temperature": 0.5}).json()
    hot = client.get("/api/softmax", params={"logits": "1,2,3", "temperature": 5}).json()
    assert cold["probabilities"][2] > 0.8 > hot["probabilities"][2]
    big = client.get("/api/softmax", params={"logits": "1000,1001"}).json()  # stable: no overflow
    assert abs(big["sum"] - 1) < 1e-12 and big["probabilities"][1] > 0.7


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"logits": "1,a,3"}, ["numbers"]),
        ({"logits": ""}, ["1 to 64"]),
        ({"logits": ",".join(["1"] * 65)}, ["1 to 64"]),
        ({"logits": "1,inf"}, ["finite"]),
        ({"temperature": "0"}, ["temperature", "0.01"]),
        ({"temperature": "1e9"}, ["temperature"]),
    ],
)
def test_softmax_bad_parameters(client, params, words):
    assert_user_error(client.get("/api/softmax", params=params), 400, *words)


# ------------------------------------------------------------------ playground


def create(client, **settings):
    r = client.post("/api/sessions", json=settings)
    assert r.status_code == 201, r.text
    return r.json()


def wait_idle(client, sid: str) -> dict:
    deadline = time.monotonic() + 30
    while True:
        state = client.get(f"/api/sessions/{sid}").json()
        if not state["busy"]:
            return state
        assert time.monotonic() < deadline, "a frame took over 30 s"
        time.sleep(0.02)


def test_session_lifecycle_play_pause_step_reset(client, live):
    s = create(client, dataset="moons", layers=["relu", "elu:alpha=0.5"], width=8, fps=30)
    assert s["config"]["layers"] == ["relu", "elu:alpha=0.5"] and s["epoch"] == 0
    assert len(s["data"]["train"]["x"]) == 800 and len(s["data"]["grid_x"]) == 48
    sid = s["id"]
    with client.stream("GET", f"/api/sessions/{sid}/stream") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        events = sse_events(stream)
        kind, first = next(events)
        assert kind == "frame" and first["epoch"] == 0 and first["grad_norm"][0] is None
        assert np.asarray(first["surface"]).shape == (48, 48)
        assert client.get(f"/api/sessions/{sid}").json()["streaming"] is True
        assert_user_error(client.get(f"/api/sessions/{sid}/stream"), 409, "already")

        client.post(f"/api/sessions/{sid}/control", json={"action": "play"})
        frames = [next(events)[1] for _ in range(12)]
        assert [f["epoch"] for f in frames] == list(range(1, 13))
        assert frames[-1]["train_loss"] < first["train_loss"] * 0.7  # it learns
        assert len(frames[-1]["dead"]) == 2 and len(frames[-1]["grad_norm"]) == 3
        assert frames[-1]["saturated"] == [None, None]  # not measured for the ReLU family
        assert 0 <= frames[-1]["dead"][0] <= 1

        client.post(f"/api/sessions/{sid}/control", json={"action": "pause"})
        paused = wait_idle(client, sid)["epoch"]  # a frame in flight at the pause finishes
        time.sleep(0.7)
        assert client.get(f"/api/sessions/{sid}").json()["epoch"] == paused  # pause stops training

        client.post(f"/api/sessions/{sid}/control", json={"action": "step"})
        deadline = time.monotonic() + 30
        while client.get(f"/api/sessions/{sid}").json()["epoch"] == paused:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert wait_idle(client, sid)["epoch"] == paused + 1  # exactly one epoch
        seen = [next(events)[1]["epoch"] for _ in range(paused + 1 - frames[-1]["epoch"])]
        assert seen[-1] == paused + 1

        client.post(f"/api/sessions/{sid}/control", json={"action": "reset"})
        kind, frame = next(events)
        assert frame["epoch"] == 0 and frame["train_loss"] == first["train_loss"]  # same seed

        assert client.delete(f"/api/sessions/{sid}").status_code == 200
        assert [k for k, _ in events] == ["end"]
    assert_user_error(client.get(f"/api/sessions/{sid}"), 404, "no session")


def test_weight_decay_and_dropout_change_while_the_stream_trains(client):
    """Issue 23, item 5: the page's sliders send {"action": "set"}; the next frame reports the new
    values, training goes on from the same epoch (no reset), and the multiclass data trains."""
    s = create(client, dataset="spirals3", layers=["relu"], width=8, fps=30, batch_size=64)
    assert s["data"]["classes"] == 3 and len(s["data"]["preactivations"]) == 1
    sid = s["id"]
    with client.stream("GET", f"/api/sessions/{sid}/stream") as stream:
        events = sse_events(stream)
        assert next(events)[1]["epoch"] == 0
        client.post(f"/api/sessions/{sid}/control", json={"action": "play"})
        before = [next(events)[1] for _ in range(3)][-1]
        r = client.post(
            f"/api/sessions/{sid}/control", json={"action": "set", "weight_decay": 0.05,
                                                  "dropout": 0.3})  # fmt: skip
        assert r.status_code == 200, r.text
        after = []
        while not after or after[-1]["dropout"] == 0.0:
            after.append(next(events)[1])
        changed = after[-1]
        assert changed["weight_decay"] == 0.05 and changed["epoch"] >= before["epoch"]  # no reset
        later = next(events)[1]
        assert later["epoch"] == changed["epoch"] + 1 and later["dropout"] == 0.3
        assert np.asarray(later["surface_class"]).max() <= 2
    client.delete(f"/api/sessions/{sid}")


@pytest.mark.parametrize(
    ("settings", "words"),
    [
        ({"layers": ["relu", "rleu"]}, ["layer 2", "unknown activation", "relu"]),
        ({"layers": ["elu:alpha=0"]}, ["layer 1", "alpha"]),
        ({"layers": ["softmax"]}, ["not an elementwise"]),
        ({"layers": ["relu"] * 9}, ["1 to 8"]),
        ({"layers": []}, ["1 to 8"]),
        ({"width": 1000}, ["width", "1 to 64"]),
        ({"width": 2.5}, ["width"]),
        ({"lr": 10}, ["lr"]),
        ({"lr": "fast"}, ["lr"]),
        ({"grid": 100000}, ["grid", "8 to 100"]),
        ({"batch_size": 1}, ["batch_size"]),
        ({"noise": -1}, ["noise"]),
        ({"fps": 1000}, ["fps"]),
        ({"dataset": "iris"}, ["dataset", "moons"]),
        ({"schedule": "linear"}, ["schedule", "constant, step, cosine"]),
        ({"init": "xavier"}, ["init", "glorot"]),
        ({"dropout": 0.95}, ["dropout", "0 to 0.9"]),
        ({"weight_decay": -0.1}, ["weight_decay"]),
        ({"schedule_epochs": 0}, ["schedule_epochs", "1 to 1000"]),
        ({"optimizer": "rmsprop"}, ["optimizer", "adam"]),
        ({"widht": 8}, ["unknown setting", "width"]),
    ],
)
def test_create_bad_parameters(client, settings, words):
    assert_user_error(client.post("/api/sessions", json=settings), 400, *words)


def test_bad_bodies_and_unknown_sessions(client):
    json_type = {"Content-Type": "application/json"}
    r = client.post("/api/sessions", content=b"{not json", headers=json_type)
    assert_user_error(r, 400, "JSON")
    assert_user_error(client.post("/api/sessions", json=[1, 2]), 400, "JSON object")
    assert_user_error(client.get("/api/sessions/nope/stream"), 404, "no session")
    assert_user_error(client.post("/api/sessions/nope/control", json={"action": "play"}), 404)
    assert_user_error(client.delete("/api/sessions/nope"), 404)
    s = create(client)
    r = client.post(f"/api/sessions/{s['id']}/control", json={"action": "jump"})
    assert_user_error(r, 400, "play", "pause", "step", "reset")
    client.delete(f"/api/sessions/{s['id']}")


def test_closing_the_stream_stops_training(client, live):
    s = create(client, fps=30)
    sid = s["id"]
    session = live.hub.entries[sid].session
    with client.stream("GET", f"/api/sessions/{sid}/stream") as stream:
        events = sse_events(stream)
        next(events)
        client.post(f"/api/sessions/{sid}/control", json={"action": "play"})
        for _ in range(3):
            next(events)
    # the client hung up: the server notices, ends the session and trains no more
    deadline = time.monotonic() + 10
    while sid in live.hub.entries and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sid not in live.hub.entries
    time.sleep(0.3)  # a frame that was in flight finishes
    steps = session.steps
    time.sleep(1.0)
    assert session.steps == steps
    assert_user_error(client.get(f"/api/sessions/{sid}"), 404)


def test_unstreamed_sessions_expire(runs):
    # ttl 1 s: creating a session (its worker process, its first frame) takes ~0.1-0.3 s
    with (
        LiveServer(runs, max_sessions=2, session_ttl=1.0) as server,
        httpx.Client(base_url=server.url, timeout=30) as c,
    ):
        create(c)
        stuck = create(c)["id"]
        # a stream reserved whose generator never ran (its client left at once) must not leak
        server.hub.entries[stuck].streaming = True
        assert_user_error(c.post("/api/sessions", json={}), 429, "too many", "close")
        time.sleep(1.2)
        create(c)  # both silent sessions expired
        assert len(server.hub.entries) == 1 and stuck not in server.hub.entries


def _rss_mb() -> float:
    psutil = pytest.importorskip("psutil")
    return psutil.Process(os.getpid()).memory_info().rss / 2**20


def test_many_concurrent_streams_are_bounded_with_flat_memory(live):
    """20 clients at once, twice: at most max_sessions train, the rest get 429; memory is flat."""

    def round_of_clients(seconds: float) -> list:
        results: list = []

        def one_client() -> None:
            with httpx.Client(base_url=live.url, timeout=30) as c:
                r = c.post("/api/sessions", json={"dataset": "circles", "fps": 30})
                if r.status_code != 201:
                    results.append((r.status_code, r.json()["error"], 0))
                    return
                sid = r.json()["id"]
                frames = 0
                with c.stream("GET", f"/api/sessions/{sid}/stream") as stream:
                    c.post(f"/api/sessions/{sid}/control", json={"action": "play"})
                    end = time.monotonic() + seconds
                    for _ in sse_events(stream):
                        frames += 1
                        if time.monotonic() > end:
                            break
                results.append((201, None, frames))

        threads = [threading.Thread(target=one_client) for _ in range(20)]
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads):
            peak[0] = max(peak[0], len(live.hub.entries) + live.hub.creating)
            time.sleep(0.01)
        return results

    peak = [0]

    round_of_clients(1.5)  # warm-up: thread pools, allocator
    deadline = time.monotonic() + 10
    while live.hub.entries and time.monotonic() < deadline:
        time.sleep(0.05)
    before = _rss_mb()
    results = round_of_clients(3.0)
    assert len(results) == 20
    accepted = [r for r in results if r[0] == 201]
    rejected = [r for r in results if r[0] != 201]
    assert 1 <= peak[0] <= live.hub.max_sessions  # never more sessions at once than allowed
    assert len(accepted) >= 1 and len(rejected) >= 20 - 2 * live.hub.max_sessions
    assert all(status == 429 and "too many" in error for status, error, _ in rejected)
    assert all(frames >= 2 for _, _, frames in accepted)
    with httpx.Client(base_url=live.url, timeout=30) as c:  # still answering
        assert c.get("/api/catalog").status_code == 200
    while live.hub.entries and time.monotonic() < deadline + 10:
        time.sleep(0.05)
    assert not live.hub.entries  # every closed stream ended its session
    growth = _rss_mb() - before
    assert growth < 60, f"server memory grew by {growth:.0f} MB over a second round of 20 clients"


# ------------------------------------------------------------------ runs


def test_runs_are_listed(client, runs):
    body = client.get("/api/runs").json()
    assert body["folder"] == str(runs)
    names = [r["name"] for r in body["runs"]]
    assert names == ["moons-demo"]  # not the folder symlinked out, not a folder without results
    run = body["runs"][0]
    assert run["dataset"] == "moons" and run["activations"] == ["relu", "tanh"]
    assert run["models"] == 2 and run["finished"] == 0
    page = client.get("/" + run["report"])
    assert page.status_code == 200 and "the moons report" in page.text


def test_runs_listing_of_a_missing_folder_is_empty(tmp_path):
    assert srv.list_runs(tmp_path / "nothing") == []


@pytest.mark.parametrize(
    "path",
    [
        "/runs/../secret.html",
        "/runs/moons-demo/../../secret.html",
        "/runs/%2e%2e/secret.html",
        "/runs/%2E%2E/secret.txt",
        "/runs/moons-demo/%2e%2e/%2e%2e/secret.html",
        "/runs/..%2fsecret.html",
        "/runs/moons-demo%2f..%2f..%2fsecret.html",
        "/runs/%252e%252e/secret.html",
        "/runs/..%5csecret.html",
        "/runs/moons-demo/..%5c..%5csecret.html",
        "/runs//etc/passwd",
        "/runs/%2fetc%2fpasswd",
        "/runs/moons-demo/link.html",  # symlink pointing outside
        "/runs/escape/secret.html",  # folder symlink pointing outside
        "/runs/escape/secret.txt",
        "/runs/moons-demo/report.html%00.txt",
        "/runs/./moons-demo/../../secret.html",
        "/runs/",
    ],
)
def test_nothing_outside_the_runs_folder_is_served(live, path):
    conn = http.client.HTTPConnection("127.0.0.1", live.port, timeout=10)
    try:
        conn.request("GET", path)  # sent as written: http.client does not normalise the path
        response = conn.getresponse()
        body = response.read().decode("utf-8", "replace")
    finally:
        conn.close()
    assert 400 <= response.status < 500, (path, response.status)
    assert SECRET not in body and "root:" not in body
    assert "Traceback" not in body


def test_only_report_files_are_served(client):
    assert_user_error(client.get("/runs/moons-demo/results.sqlite"), 403, "only reports")
    assert_user_error(client.get("/runs/moons-demo/missing.html"), 404)


def test_run_file_rejects_escapes_directly(runs):
    assert srv.run_file(runs, "moons-demo/report.html").name == "report.html"
    for bad in ("../secret.html", "moons-demo/link.html", "", "a\\b", "/etc/passwd", "x\x00.html"):
        with pytest.raises(srv.BadRequest):
            srv.run_file(runs, bad)


def test_internal_errors_are_json_without_traceback(live, client, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("secret internals")

    from actlab.explore import runs as runs_routes

    monkeypatch.setattr(runs_routes, "list_runs", boom)
    r = client.get("/api/runs")
    assert r.status_code == 500
    assert r.json() == {"error": "internal error (RuntimeError); the server log has the details"}
    assert math.isfinite(r.elapsed.total_seconds())
