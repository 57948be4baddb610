"""The explore server's security rules (docs/SECURITY.md), each against a running server.

Every request is treated as hostile: it comes from any web page the user has open (cross-site) or
from the page itself (same-site). The rules: no request imports or calls code the person at the
terminal did not load; cross-site requests are refused; work that runs a function is killable and
time-limited; training ends with its stream; torch's global state stays put; bodies, JSON and
numbers are bounded; a failing layer is reported in one line.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import quote

import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
pytest.importorskip("plotly")
httpx = pytest.importorskip("httpx")
psutil = pytest.importorskip("psutil")

from _explore_server import LiveServer, sse_events  # noqa: E402
from actlab.errors import ActlabError  # noqa: E402
from actlab.explore import server as srv  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CROSS = {"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}

# The user's own activations, loaded "from the command line" (create_app(activations=...)). Each
# misbehaves only on inputs the start-up check never uses (it calls with 97, 97x1 and 40 values).
USER_ACTS = '''
import torch

def snake(x, a=1.0):
    """x + sin^2(a x) / a"""
    return x + torch.sin(a * x) ** 2 / a

def stuck(x):
    """loops on 4999 points (a curve) or a training batch of 37 rows"""
    if x.numel() == 4999 or (x.dim() == 2 and x.shape[0] == 37):
        while True:
            pass
    return torch.tanh(x)

def dtype_changer(x):
    """sets float64 as torch's default dtype on a batch of 39 rows or a curve of 4001 points"""
    if (x.dim() == 2 and x.shape[0] == 39) or x.numel() == 4001:
        torch.set_default_dtype(torch.float64)
    return torch.tanh(x)

def grumpy(x):
    """fails on a training batch of 41 rows"""
    if x.dim() == 2 and x.shape[0] == 41:
        raise ValueError("grumpy does not like batches of 41")
    return torch.relu(x)

def broken(x):
    """fails on the 800 training rows, which the first frame forwards"""
    if x.dim() == 2 and x.shape[0] == 800:
        raise ValueError("broken on the training rows")
    return torch.relu(x)
'''
# Code a request might try to name: importing it or calling it writes the marker file.
EVIL = """
import pathlib
pathlib.Path({marker!r}).write_text("imported")

def f(x, a=1.0):
    pathlib.Path({marker!r}).write_text("called")
    return x
"""
ACTS = "snake,stuck,dtype_changer,grumpy,broken"


@pytest.fixture(scope="module")
def place(tmp_path_factory):
    """A folder with the user's activations, an evil file and an evil module on sys.path, as cwd."""
    base = tmp_path_factory.mktemp("security")
    (base / "runs").mkdir()
    (base / "user_acts.py").write_text(USER_ACTS)
    marker = base / "MARKER"
    (base / "evil_sec.py").write_text(EVIL.format(marker=str(marker)))
    (base / "evilmod_sec.py").write_text(EVIL.format(marker=str(marker)))
    old_cwd = os.getcwd()
    os.chdir(base)
    sys.path.insert(0, str(base))
    try:
        yield base
    finally:
        sys.path.remove(str(base))
        os.chdir(old_cwd)


def refs(base: Path) -> str:
    return ",".join(f"{base / 'user_acts.py'}:{name}" for name in ACTS.split(","))


@pytest.fixture(scope="module")
def live(place):
    with LiveServer(place / "runs", max_sessions=4, activations=refs(place), time_limit=3) as s:
        yield s


@pytest.fixture()
def client(live):
    with httpx.Client(base_url=live.url, timeout=60) as c:
        yield c


def one_line_error(response, *statuses: int) -> str:
    """The error of a 4xx answer: JSON {"error": one line}, never a traceback."""
    assert response.status_code in (statuses or range(400, 500)), response.text[:300]
    assert response.headers["content-type"].startswith("application/json"), response.text[:300]
    body = response.json()
    assert set(body) == {"error"}
    assert "\n" not in body["error"] and "Traceback" not in body["error"]
    assert len(body["error"]) <= 400
    return body["error"]


def code_specs(base: Path) -> list[str]:
    """Every way a request might name code."""
    absolute = f"{base / 'evil_sec.py'}:f"
    return [
        absolute,
        f"{absolute}:a=2",
        "evil_sec.py:f",  # relative to the server's folder
        "./evil_sec.py:f",
        quote(absolute, safe=""),  # URL-encoded once more
        quote("evilmod_sec:f", safe=""),
        "evilmod_sec:f",  # a module on sys.path
        "evilmod_sec:f:a=2",
        "this:x",
        "antigravity:x",
        "sys:exit",
        "os:getcwd",
        f"elu:alpha={absolute}",  # inside a parameter
        f"relu:{absolute}",
    ]


def hostile_requests(client, base: Path, headers: dict) -> list:
    """Every endpoint with every code spec in every place a spec (or any value) goes."""
    out = []
    sid = "nosuchsession"
    for spec in code_specs(base):
        out += [
            client.get("/api/curves", params={"spec": spec}, headers=headers),
            client.get("/api/curves", params={"spec": ["relu", spec]}, headers=headers),
            client.get("/api/curves", params={"spec": "relu", "xmin": spec}, headers=headers),
            client.get("/api/softmax", params={"logits": spec}, headers=headers),
            client.post("/api/sessions", json={"layers": [spec]}, headers=headers),
            client.post("/api/sessions", json={"layers": ["relu", spec]}, headers=headers),
            client.post("/api/sessions", json={"layers": f"relu,{spec}"}, headers=headers),
            client.post("/api/sessions", json={"dataset": spec}, headers=headers),
            client.post("/api/sessions", json={"optimizer": spec}, headers=headers),
            client.post("/api/sessions", json={spec: 1}, headers=headers),
            client.post(f"/api/sessions/{sid}/control", json={"action": spec}, headers=headers),
            client.post("/api/sessions", json={"schedule": spec}, headers=headers),
            client.post("/api/sessions", json={"init": spec}, headers=headers),
            client.post(
                f"/api/sessions/{sid}/control", json={"action": "set", "dropout": spec},
                headers=headers,
            ),
            client.get(f"/api/sessions/{quote(spec, safe='')}", headers=headers),
            client.get(f"/runs/{quote(spec, safe='')}", headers=headers),
            client.post("/api/export", json={"layers": ["relu", spec]}, headers=headers),
            client.post("/api/export?format=command", json={"layers": [spec]}, headers=headers),
            client.post("/api/export", params={"format": spec}, json={}, headers=headers),
            client.post("/api/compare", json={"activations": ["relu", spec]}, headers=headers),
            client.post("/api/compare", json={"activations": f"{spec},relu"}, headers=headers),
            client.post("/api/compare", json={"layers": [spec]}, headers=headers),
            client.get(f"/api/compare/{quote(spec, safe='')}", headers=headers),
            client.delete(f"/api/compare/{quote(spec, safe='')}", headers=headers),
        ]
        # the raw query string, URL-encoded by hand (no client-side normalisation)
        out.append(client.get(f"/api/curves?spec={quote(spec, safe='')}", headers=headers))
    return out


def warm_up(client) -> None:
    """Use every endpoint legitimately once, so that later imports would be the hostile ones."""
    assert client.get("/api/catalog").status_code == 200
    assert client.get("/api/curves", params={"spec": ["relu", "snake:a=2"]}).status_code == 200
    assert client.get("/api/softmax").status_code == 200
    assert client.get("/api/runs").status_code == 200
    s = client.post("/api/sessions", json={"layers": ["snake", "relu"]}).json()
    with client.stream("GET", f"/api/sessions/{s['id']}/stream") as stream:
        next(sse_events(stream))
    client.post("/api/sessions", json={"layers": ["rleu"]})
    assert client.post("/api/export", json={"layers": ["snake", "relu"]}).status_code == 200
    client.post("/api/export", json={"layers": ["rleu"]})
    client.post("/api/compare", json={"activations": ["relu", "rleu"]})  # (a valid one: a run)
    assert client.get("/api/compare").status_code == 200
    client.get("/api/curves", params={"spec": "rleu"})
    client.get("/api/curves", params={"spec": "relu"}, headers=CROSS)


# ------------------------------------------------------------------ 1. no request names code


@pytest.mark.parametrize("cross_site", [False, True], ids=["same-site", "cross-site"])
def test_no_request_imports_or_calls_code(client, live, place, cross_site):
    warm_up(client)
    before = set(sys.modules)
    responses = hostile_requests(client, place, CROSS if cross_site else {})
    assert len(responses) == 25 * len(code_specs(place))
    for r in responses:
        one_line_error(r, 403) if cross_site else one_line_error(r)
    assert not (place / "MARKER").exists(), "a request imported or called the evil code"
    new = set(sys.modules) - before
    assert not new, f"requests imported modules in the server process: {sorted(new)[:10]}"
    assert not live.app.state.studies.items, "a hostile request started a background run"
    for name in ("this", "antigravity", "evil_sec", "evilmod_sec"):
        assert name not in sys.modules


def test_code_specs_get_a_400_naming_the_command_line(client, place):
    for spec in ("/tmp/evil.py:f", "this:x", "sys:exit", "evil_sec.py:f"):
        error = one_line_error(client.get("/api/curves", params={"spec": spec}), 400)
        assert "--activations" in error and "not an activation name" in error
        error = one_line_error(client.post("/api/sessions", json={"layers": [spec]}), 400)
        assert "layer 1" in error and "--activations" in error
    assert not (place / "MARKER").exists()


def test_start_up_activations_are_named_by_function_name(client):
    names = [a["name"] for a in client.get("/api/catalog").json()["activations"]]
    assert names[-5:] == ACTS.split(",")
    curve = client.get("/api/curves", params={"spec": "snake:a=2", "n": 5}).json()["curves"][0]
    assert curve["spec"] == "snake:a=2"
    assert curve["f"]["y"][2] == 0.0  # snake(0) = 0


def test_command_line_activations_are_checked_at_start_up(place):
    with pytest.raises(ActlabError, match=r"file\.py:function"):
        srv.create_app(place / "runs", activations="relu")
    twice = f"{place / 'user_acts.py'}:snake,{place / 'user_acts.py'}:snake"
    with pytest.raises(ActlabError, match="already taken"):
        srv.create_app(place / "runs", activations=twice)
    (place / "bad_start.py").write_text(
        "import torch\ndef tanh64(x):\n    torch.set_default_dtype(torch.float64)\n"
        "    return torch.tanh(x)\n"
    )
    import torch

    with pytest.raises(ActlabError, match=r"global (torch )?state"):
        srv.create_app(place / "runs", activations=f"{place / 'bad_start.py'}:tanh64")
    assert torch.get_default_dtype() == torch.float32


# ------------------------------------------------------------------ 2. cross-site requests


@pytest.mark.parametrize(
    "headers",
    [
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},  # another port or subdomain: another web app
        {"Origin": "http://evil.example"},
        {"Origin": "null"},
        {"Origin": "http://localhost:1"},
        CROSS,
    ],
)
@pytest.mark.parametrize(
    "path", ["/api/catalog", "/api/curves?spec=relu", "/api/runs", "/api/compare", "/api/compare/x"]
)
def test_cross_site_requests_are_refused(client, headers, path):
    assert "cross-site" in one_line_error(client.get(path, headers=headers), 403)


def test_cross_site_posts_are_refused_before_anything(client, live):
    n = len(live.hub.entries)
    r = client.post("/api/sessions", json={}, headers=CROSS)
    one_line_error(r, 403)
    assert len(live.hub.entries) == n
    one_line_error(client.post("/api/export", json={}, headers=CROSS), 403)  # reading code back
    r = client.post("/api/compare", json={"activations": ["relu", "tanh"]}, headers=CROSS)
    one_line_error(r, 403)  # no background run started
    assert not live.app.state.studies.items


def test_the_page_itself_is_allowed(client, live):
    own = {"Origin": live.url, "Sec-Fetch-Site": "same-origin"}
    assert client.get("/api/catalog", headers=own).status_code == 200
    assert client.get("/api/catalog", headers={"Sec-Fetch-Site": "none"}).status_code == 200
    assert client.get("/", headers=CROSS).status_code == 200  # the page itself may be linked


# ------------------------------------------------------------------ 3. stuck functions


def test_a_stuck_function_does_not_delay_other_requests(client, live):
    result: dict = {}

    def stuck_curve() -> None:
        with httpx.Client(base_url=live.url, timeout=60) as c:
            t = time.monotonic()
            result["r"] = c.get("/api/curves", params={"spec": "stuck", "n": 4999})
            result["s"] = time.monotonic() - t

    thread = threading.Thread(target=stuck_curve)
    thread.start()
    time.sleep(0.5)
    worst = 0.0
    for _ in range(5):
        t = time.monotonic()
        assert client.get("/api/catalog").status_code == 200
        assert client.get("/api/curves", params={"spec": ["relu", "snake"]}).status_code == 200
        worst = max(worst, time.monotonic() - t)
    thread.join(60)
    assert worst < 1.5, f"other requests waited {worst:.1f} s behind the stuck function"
    error = one_line_error(result["r"], 400)
    assert "stuck" in error and "longer than 3 s" in error
    assert 2.5 < result["s"] < 20
    assert_no_busy_children()


def thread_ticks(pids: list[int]) -> dict[tuple[int, int], int]:
    """CPU time (clock ticks, user + system) used so far by each thread (pid, tid) of ``pids``."""
    out = {}
    for pid in pids:
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                fields = Path(f"/proc/{pid}/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            out[(pid, int(tid))] = int(fields[11]) + int(fields[12])  # utime, stime
    return out


def spinning(pids: list[int], seconds: float = 1.0) -> set[tuple[int, int]]:
    """Threads of ``pids`` that used over 5% of a core during the next ``seconds``: busy ones.

    A looping thread on this loaded machine (2 cores, load ~10) still gets 15-30% of a core; an
    idle server thread gets none. CPU time per thread, so a thread of this very process (the old
    server ran its training in threads) counts as well as a worker process."""
    if not Path("/proc/self/task").is_dir():
        pytest.skip("reads per-thread CPU time from /proc (Linux)")
    me = (os.getpid(), threading.get_native_id())
    before = thread_ticks(pids)
    time.sleep(seconds)
    after = thread_ticks(pids)
    hz = os.sysconf("SC_CLK_TCK")
    return {k for k, t in after.items() if k != me and t - before.get(k, 0) > 0.05 * hz * seconds}


def family(pid: int) -> list[int]:
    """``pid`` and all its descendants."""
    try:
        return [pid, *(p.pid for p in psutil.Process(pid).children(recursive=True))]
    except psutil.NoSuchProcess:
        return []


def assert_no_busy_children(pids: list[int] | None = None) -> None:
    """No thread of this server's process or its workers (or of ``pids``) keeps running."""
    deadline = time.monotonic() + 10
    while True:
        busy = spinning(pids if pids is not None else family(os.getpid()))
        if not busy:
            return
        assert time.monotonic() < deadline, f"threads still busy (pid, tid): {sorted(busy)}"


def pids_alive(pids: list[int]) -> list:
    out = []
    for pid in pids:
        try:
            p = psutil.Process(pid)
            if p.status() != psutil.STATUS_ZOMBIE:
                out.append(p)
        except psutil.NoSuchProcess:
            pass
    return out


def start_explore(place: Path, *extra: str) -> tuple[subprocess.Popen, str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), *sys.path[1:3]])}
    env["PYTHONPATH"] = str(ROOT / "src")
    cmd = [sys.executable, "-m", "actlab", "explore", "--no-browser", "--port", "0", *extra]
    proc = subprocess.Popen(
        cmd, cwd=place, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if "serving http" not in line:
        proc.kill()
        pytest.fail(f"actlab explore did not start: {line}{proc.stdout.read()}")
    return proc, line.split("serving ")[1].split()[0].rstrip("/")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_the_server_within_2_s_while_a_worker_is_stuck(place, sig):
    proc, url = start_explore(place, "--activations", "user_acts.py:stuck")
    try:
        errors: list = []

        def stuck_curve() -> None:
            try:
                httpx.get(f"{url}/api/curves", params={"spec": "stuck", "n": 4999}, timeout=120)
            except httpx.HTTPError as exc:  # the server went away: expected
                errors.append(exc)

        threading.Thread(target=stuck_curve, daemon=True).start()
        server = psutil.Process(proc.pid)
        deadline = time.monotonic() + 90  # the first worker waits for the forkserver's imports
        while True:  # workers are the forkserver's children: the server's grandchildren
            workers = [w.pid for k in server.children() for w in k.children()]
            if spinning(workers, 0.5):
                break
            assert time.monotonic() < deadline, "the stuck function never started"
        pids = [k.pid for k in server.children(recursive=True)]
        t = time.monotonic()
        proc.send_signal(sig)
        proc.wait(timeout=10)
        took = time.monotonic() - t
        assert took < 2.0, f"the server took {took:.1f} s to stop"
        assert proc.returncode in (0, -sig, 128 + sig)
        assert_no_busy_children(pids)
        output = proc.stdout.read() if proc.stdout else ""
        assert "Traceback" not in output, output
    finally:
        if proc.poll() is None:
            proc.kill()


def test_a_signal_stops_the_server_and_its_background_run_within_2_s(place):
    proc, url = start_explore(place, "--runs", "runs")
    try:
        body = {"activations": ["relu", "tanh"], "seeds": 2, "epochs": 200, "batch_size": 4}
        r = httpx.post(f"{url}/api/compare", json=body, timeout=120)
        assert r.status_code == 202, r.text
        deadline = time.monotonic() + 120
        while httpx.get(f"{url}/api/compare/{r.json()['id']}", timeout=30).json()["state"] in (
            "queued", "running"
        ):  # fmt: skip
            server = psutil.Process(proc.pid)
            pids = [k.pid for k in server.children(recursive=True)]
            training = {pid for pid, _ in spinning(pids, 0.5)}
            if training:
                break
            assert time.monotonic() < deadline, "the background run never trained"
        assert training, "the background run ended before the signal"
        t = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
        took = time.monotonic() - t
        assert took < 2.0, f"the server took {took:.1f} s to stop"
        deadline = time.monotonic() + 5
        while pids_alive(list(training)):
            assert time.monotonic() < deadline, "the background run outlived its server"
            time.sleep(0.1)
        assert_no_busy_children(pids)
        output = proc.stdout.read() if proc.stdout else ""
        assert "Traceback" not in output, output
    finally:
        if proc.poll() is None:
            proc.kill()


# ------------------------------------------------------------------ 4. playground training ends


def start_stuck_session(client, live) -> tuple[str, int]:
    r = client.post("/api/sessions", json={"layers": ["stuck"], "batch_size": 37})
    assert r.status_code == 201, r.text
    sid = r.json()["id"]
    return sid, live.hub.entries[sid].worker.pid


def wait_busy(pid: int) -> None:
    deadline = time.monotonic() + 20
    while not spinning([pid], 0.5):
        assert time.monotonic() < deadline, "the looping function never ran"


def test_closing_the_stream_of_a_looping_session_kills_its_worker(client, live):
    pids = []
    for _ in range(3):
        sid, pid = start_stuck_session(client, live)
        pids.append(pid)
        with client.stream("GET", f"/api/sessions/{sid}/stream") as stream:
            events = sse_events(stream)
            next(events)
            client.post(f"/api/sessions/{sid}/control", json={"action": "play"})
            wait_busy(pid)
        # the page closed mid-frame: the server notices and kills the worker
    assert_no_busy_children(pids)
    assert not pids_alive(pids)
    deadline = time.monotonic() + 10
    while live.hub.entries and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not live.hub.entries


def test_deleting_a_looping_session_kills_its_worker_and_ends_its_stream(client, live):
    sid, pid = start_stuck_session(client, live)
    kinds: list = []

    def watch() -> None:
        with (
            httpx.Client(base_url=live.url, timeout=60) as c,
            c.stream("GET", f"/api/sessions/{sid}/stream") as stream,
        ):
            for kind, _ in sse_events(stream):
                kinds.append(kind)
                if kind == "frame" and len(kinds) == 1:
                    c.post(f"/api/sessions/{sid}/control", json={"action": "play"})

    thread = threading.Thread(target=watch)
    thread.start()
    wait_busy(pid)
    assert client.delete(f"/api/sessions/{sid}").status_code == 200
    thread.join(10)
    assert not thread.is_alive()
    assert kinds == ["frame", "end"]
    assert not pids_alive([pid])


def test_a_looping_frame_past_the_time_limit_is_an_error_event(client, live):
    sid, pid = start_stuck_session(client, live)
    with client.stream("GET", f"/api/sessions/{sid}/stream") as stream:
        events = sse_events(stream)
        next(events)
        client.post(f"/api/sessions/{sid}/control", json={"action": "play"})
        kind, data = next(events)
    assert kind == "error" and "longer than 3 s" in data["error"]
    assert not pids_alive([pid])


def test_unused_sessions_expire_and_their_workers_end(place):
    with (
        LiveServer(place / "runs", session_ttl=0.5) as server,
        httpx.Client(base_url=server.url, timeout=60) as c,
    ):
        sid = c.post("/api/sessions", json={}).json()["id"]
        pid = server.hub.entries[sid].worker.pid
        deadline = time.monotonic() + 10
        while pids_alive([pid]):  # no request needed: the janitor expires it
            assert time.monotonic() < deadline, "an expired session's worker lives on"
            time.sleep(0.1)
        assert sid not in server.hub.entries


# ------------------------------------------------------------------ 5. torch's global state


def test_global_torch_state_does_not_leak_between_sessions(client, live):
    import torch

    r = client.post("/api/sessions", json={"layers": ["dtype_changer"], "batch_size": 39})
    sid = r.json()["id"]
    with client.stream("GET", f"/api/sessions/{sid}/stream") as stream:
        events = sse_events(stream)
        next(events)
        client.post(f"/api/sessions/{sid}/control", json={"action": "play"})
        kind, data = next(events)
    assert kind == "error" and "default dtype" in data["error"] and "float64" in data["error"]
    assert torch.get_default_dtype() == torch.float32  # the server's own process
    # every later session still trains
    r = client.post("/api/sessions", json={"layers": ["relu"], "fps": 30})
    sid = r.json()["id"]
    with client.stream("GET", f"/api/sessions/{sid}/stream") as stream:
        events = sse_events(stream)
        next(events)
        client.post(f"/api/sessions/{sid}/control", json={"action": "play"})
        frames = [next(events) for _ in range(3)]
    assert [k for k, _ in frames] == ["frame"] * 3
    assert frames[-1][1]["epoch"] == 3


def test_curves_restore_global_state_and_say_so(client):
    import torch

    grad, threads = torch.is_grad_enabled(), torch.get_num_threads()
    r = client.get("/api/curves", params={"spec": "dtype_changer", "n": 4001})
    error = one_line_error(r, 400)
    assert "dtype_changer" in error and "default dtype torch.float32 -> torch.float64" in error
    for _ in range(3):  # the pool's workers were restored: later curves are float32 again
        r = client.get("/api/curves", params={"spec": ["snake", "dtype_changer"], "n": 11})
        assert r.status_code == 200, r.text
    assert torch.get_default_dtype() == torch.float32
    assert (torch.is_grad_enabled(), torch.get_num_threads()) == (grad, threads)


# ------------------------------------------------------------------ 6. bodies and parsing


def raw_request(live, data: bytes) -> bytes:
    """Send raw bytes to the server and return what it answers (up to 64 KiB) within 5 s."""
    import socket

    with socket.create_connection(("127.0.0.1", live.port), timeout=5) as sock:
        sock.sendall(data)
        chunks = []
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
                if b"\r\n\r\n" in b"".join(chunks) and b"}" in chunks[-1]:
                    break
        except TimeoutError:
            pass
    return b"".join(chunks)


def test_a_lying_content_length_gets_413_at_once(live):
    t = time.monotonic()
    answer = raw_request(
        live,
        b"POST /api/sessions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: 1000000000\r\n\r\n{}",
    )
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b'{"error":' in answer
    assert time.monotonic() - t < 3


@pytest.mark.parametrize("path", ["/api/sessions", "/api/compare"])
def test_large_bodies_are_refused(client, path):
    big = b'{"dataset": "' + b"x" * (srv.MAX_BODY + 10) + b'"}'
    r = client.post(path, content=big, headers={"Content-Type": "application/json"})
    assert "bytes" in one_line_error(r, 413)

    def chunks():  # no Content-Length: chunked, counted while read
        for _ in range(100):
            yield b" " * 10_000

    r = client.post(path, content=chunks(), headers={"Content-Type": "application/json"})
    one_line_error(r, 413)


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"[" * 60_000, ["nested"]),  # under the body limit: RecursionError on main
        (b'{"a":' * 20 + b"1" + b"}" * 20, ["nested"]),
        (b'{"width": ' + b"9" * 5000 + b"}", ["number", "longer"]),
        (b'{"lr": 1' + b"0" * 400 + b".5}", ["number", "longer"]),
        (b'{"lr": NaN}', ["JSON"]),
        (b'{"width": Infinity}', ["JSON"]),
        (b"\xff\xfe{}", ["UTF-8"]),
        (b'{"' + b"k" * 50_000 + b'": 1}', ["unknown setting"]),
        (b'{"dataset": "' + b"d" * 50_000 + b'"}', ["dataset", "..."]),
        (b'{"lr": "' + b"f" * 50_000 + b'"}', ["lr", "..."]),
        (b'{"layers": ["' + b"r" * 50_000 + b'"]}', ["unknown activation", "..."]),
        (b'{"schedule": "' + b"s" * 50_000 + b'"}', ["schedule", "..."]),
        (b'{"init": "' + b"i" * 50_000 + b'"}', ["init", "..."]),
        (b'{"dropout": 1e308}', ["dropout", "0 to 0.9"]),
    ],
)
@pytest.mark.parametrize("path", ["/api/sessions", "/api/compare"])
def test_bad_json_is_a_short_400(client, live, path, body, words):
    r = client.post(path, content=body, headers={"Content-Type": "application/json"})
    error = one_line_error(r, 400)
    for w in words:
        assert w in error, error
    assert len(error) < 400  # untrusted values are echoed cut short
    assert not live.app.state.studies.items


def test_live_settings_are_validated_and_bounded(client, live):
    """``{"action": "set"}`` changes only weight decay and dropout, within their bounds; a bad
    one is a one-line 400 that changes nothing."""
    sid = client.post("/api/sessions", json={"layers": ["relu"]}).json()["id"]
    url = f"/api/sessions/{sid}/control"
    for body, words in [
        ({"action": "set"}, "weight_decay and dropout"),
        ({"action": "set", "lr": 0.1}, "starting a new session"),
        ({"action": "set", "k" * 50_000: 0.1}, "..."),
        ({"action": "set", "dropout": 1e308}, "0 to 0.9"),
        ({"action": "set", "dropout": -0.1}, "dropout"),
        ({"action": "set", "weight_decay": "0.1"}, "weight_decay must be a number"),
        ({"action": "set", "weight_decay": [0.1]}, "weight_decay"),
        ({"action": "set", "weight_decay": True}, "weight_decay"),
    ]:
        error = one_line_error(client.post(url, json=body), 400)
        assert words in error and len(error) < 400, error
    assert client.get(f"/api/sessions/{sid}").json()["config"]["dropout"] == 0.0
    r = client.post(url, json={"action": "set", "dropout": 0.25, "weight_decay": 0.01})
    assert r.status_code == 200 and r.json()["config"]["dropout"] == 0.25
    assert r.json()["config"]["weight_decay"] == 0.01
    client.delete(f"/api/sessions/{sid}")
    one_line_error(client.post(url, json={"action": "set", "dropout": 0.1}, headers=CROSS), 403)


@pytest.mark.parametrize(
    "media",
    [
        "application/jsonp",
        "text/plain",
        "application/json-patch",
        "application/x-www-form-urlencoded",
        "",
    ],
)
def test_only_the_json_media_type_is_accepted(client, media):
    for path in ("/api/sessions", "/api/compare"):
        r = client.post(path, content=b"{}", headers={"Content-Type": media})
        one_line_error(r, 415)


def test_json_media_type_with_parameters_is_accepted(client):
    headers = {"Content-Type": "application/json; charset=utf-8"}
    r = client.post("/api/sessions", content=b'{"layers": ["relu"]}', headers=headers)
    assert r.status_code == 201, r.text
    client.delete(f"/api/sessions/{r.json()['id']}")


@pytest.mark.parametrize("n", ["²", "٥٠", "1_000", " 50", "50 ", "+50", "0x10", "1e3", "5" * 30])
def test_query_integers_are_ascii_digits_only(client, n):
    error = one_line_error(client.get("/api/curves", params={"spec": "relu", "n": n}), 400)
    assert "n (points per curve)" in error


@pytest.mark.parametrize("value", ["٥", "1_0", "²", "inf", "nan", "1e999", "0x1"])
def test_query_numbers_are_plain_ascii(client, value):
    one_line_error(client.get("/api/curves", params={"spec": "relu", "xmin": value}), 400)
    one_line_error(client.get("/api/softmax", params={"logits": f"1,{value}"}), 400)
    one_line_error(client.get("/api/curves", params={"spec": f"leaky_relu:alpha={value}"}), 400)


def test_sys_exit_and_other_oddities_are_json_400s(client):
    for spec in ("sys:exit", "sys:exit:code=3", "builtins:exit", "os:_exit", "x" * 100_00):
        error = one_line_error(client.get("/api/curves", params={"spec": spec}), 400)
        assert len(error) < 400
    error = one_line_error(client.get("/api/curves", params={"spec": "z" * 5000}), 400)
    assert "z" * 81 not in error  # echoed cut to 80 characters


def test_unknown_routes_and_methods_are_json(client):
    one_line_error(client.get("/api/nothing"), 404)
    one_line_error(client.put("/api/catalog", json={}), 405)


# ------------------------------------------------------------------ 7. failing layers


def test_a_layer_failing_at_creation_is_refused_with_its_reason(client, live):
    n = len(live.hub.entries)
    error = one_line_error(client.post("/api/sessions", json={"layers": ["broken"]}), 400)
    assert "broken on the training rows" in error and "broken" in error
    assert len(live.hub.entries) == n


def test_a_layer_failing_while_training_sends_an_error_event(client):
    r = client.post("/api/sessions", json={"layers": ["grumpy"], "batch_size": 41})
    assert r.status_code == 201, r.text
    sid = r.json()["id"]
    with client.stream("GET", f"/api/sessions/{sid}/stream") as stream:
        events = sse_events(stream)
        assert next(events)[0] == "frame"
        client.post(f"/api/sessions/{sid}/control", json={"action": "play"})
        kind, data = next(events)
        assert kind == "error"
        assert "grumpy does not like batches of 41" in data["error"]
        assert "\n" not in data["error"]
        assert list(events) == []  # the stream ends after the error
    one_line_error(client.get(f"/api/sessions/{sid}"), 404)


# ------------------------------------------------------------ regressions: issue 18, items 1-7
# One reproducer per item, written against both APIs so that it can be run on the code before the
# fix (PYTHONPATH=<old checkout>/src): there, user functions could only be named by a request
# (``file.py:fn``, the hole itself); here they come from the command line and are named by name.
# The misbehaving functions stop on their own after 8 s, so the old server recovers.

REGRESSION_ACTS = '''
import time
import torch

def slow(x):
    """busy for 8 s on 4999 points (a curve) or a training batch of 37 rows"""
    if x.numel() == 4999 or (x.dim() == 2 and x.shape[0] == 37):
        end = time.monotonic() + 8
        while time.monotonic() < end:
            pass
    return torch.tanh(x)

def dtype_changer(x):
    if x.dim() == 2 and x.shape[0] == 39:
        torch.set_default_dtype(torch.float64)
    return torch.tanh(x)

def broken(x):
    if x.dim() == 2 and x.shape[0] == 800:
        raise ValueError("broken on the training rows")
    return torch.relu(x)
'''


@pytest.fixture(scope="module")
def compat(place):
    """(server, name): ``name(fn)`` is how a request refers to a user function on this server."""
    path = place / "regression_acts.py"
    path.write_text(REGRESSION_ACTS)
    refs = ",".join(f"{path}:{fn}" for fn in ("slow", "dtype_changer", "broken"))
    try:
        server = LiveServer(place / "runs", activations=refs, time_limit=3)
        name = str
    except TypeError:  # the old API: no --activations, code named by requests
        server = LiveServer(place / "runs")

        def name(fn: str) -> str:
            return f"{path}:{fn}"

    with server:
        yield server, name


@pytest.fixture()
def torch_default_dtype():
    import torch

    yield
    torch.set_default_dtype(torch.float32)  # the old server changed the test process's dtype


def test_regression_1_requests_cannot_import_code(compat, place):
    server, _ = compat
    marker = place / "MARKER"
    with httpx.Client(base_url=server.url, timeout=60) as c:
        for spec in (f"{place / 'evil_sec.py'}:f", "this:x"):
            one_line_error(c.get("/api/curves", params={"spec": spec}, headers=CROSS))
            one_line_error(c.get("/api/curves", params={"spec": spec}))
            one_line_error(c.post("/api/sessions", json={"layers": [spec]}))
    assert not marker.exists()
    assert "this" not in sys.modules


def test_regression_2_cross_site_gets_are_refused(compat):
    server, _ = compat
    r = httpx.get(f"{server.url}/api/catalog", headers=CROSS, timeout=60)
    assert r.status_code == 403


def test_regression_3_a_slow_function_does_not_block_the_server(compat):
    server, name = compat
    slow = threading.Thread(
        target=lambda: httpx.get(
            f"{server.url}/api/curves", params={"spec": name("slow"), "n": 4999}, timeout=60
        )
    )
    slow.start()
    time.sleep(1.0)
    t = time.monotonic()
    try:
        r = httpx.get(f"{server.url}/api/catalog", timeout=2.5)
        waited = time.monotonic() - t
    except httpx.TimeoutException:
        r, waited = None, 99.0
    slow.join(60)
    assert r is not None and r.status_code == 200 and waited < 1.5, f"waited {waited:.1f} s"


def test_regression_4_closing_a_looping_session_stops_its_work(compat):
    server, name = compat
    with httpx.Client(base_url=server.url, timeout=60) as c:
        r = c.post("/api/sessions", json={"layers": [name("slow")], "batch_size": 37})
        sid = r.json()["id"]
        with c.stream("GET", f"/api/sessions/{sid}/stream") as stream:
            events = sse_events(stream)  # kept: a dropped generator would close the stream now
            next(events)
            assert c.post(f"/api/sessions/{sid}/control", json={"action": "play"}).is_success
            time.sleep(1.0)  # inside the slow batch
    time.sleep(1.0)
    busy = spinning(family(os.getpid()))
    assert not busy, f"training still runs in the server after its stream closed: {busy}"


def test_regression_5_global_torch_state_does_not_leak(compat, torch_default_dtype):
    server, name = compat
    with httpx.Client(base_url=server.url, timeout=60) as c:
        r = c.post("/api/sessions", json={"layers": [name("dtype_changer")], "batch_size": 39})
        sid = r.json()["id"]
        with c.stream("GET", f"/api/sessions/{sid}/stream") as stream:
            events = sse_events(stream)
            next(events)
            c.post(f"/api/sessions/{sid}/control", json={"action": "play"})
            next(events)
        c.delete(f"/api/sessions/{sid}")
        sid = c.post("/api/sessions", json={"layers": ["relu"], "fps": 30}).json()["id"]
        with c.stream("GET", f"/api/sessions/{sid}/stream") as stream:
            events = sse_events(stream)
            next(events)
            c.post(f"/api/sessions/{sid}/control", json={"action": "play"})
            kinds = [next(events)[0] for _ in range(3)]
    assert kinds == ["frame"] * 3


def test_regression_6_bodies_and_numbers_are_bounded(compat):
    server, _ = compat
    json_type = {"Content-Type": "application/json"}
    with httpx.Client(base_url=server.url, timeout=60) as c:
        for body in (b"[" * 60_000, b'{"width": ' + b"9" * 5000 + b"}"):
            one_line_error(c.post("/api/sessions", content=body, headers=json_type), 400)
        for n in ("²", "٥٠"):
            one_line_error(c.get("/api/curves", params={"spec": "relu", "n": n}), 400)
        r = c.post("/api/sessions", content=b"{}", headers={"Content-Type": "application/jsonp"})
        one_line_error(r, 415)
        one_line_error(c.get("/api/curves", params={"spec": "sys:exit"}), 400)
        error = one_line_error(c.post("/api/sessions", json={"k" * 60_000: 1}), 400)
        assert len(error) < 400


def test_regression_7_a_failing_layer_is_refused_with_its_reason(compat):
    server, name = compat
    r = httpx.post(f"{server.url}/api/sessions", json={"layers": [name("broken")]}, timeout=60)
    assert "broken on the training rows" in one_line_error(r, 400)
