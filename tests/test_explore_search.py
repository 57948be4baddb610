"""Search finalists in the explorer's Functions (issue 23, item 6): loaded at start-up only, from
the ``actlab search`` runs under the ``--runs`` folder the person named; never because of a
request. The runs here are real search state files and finalist files (State, found.write)."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
pytest.importorskip("plotly")
httpx = pytest.importorskip("httpx")

from _explore_server import LiveServer  # noqa: E402
from actlab.explore import search_finalists  # noqa: E402
from actlab.search import expr, found  # noqa: E402
from actlab.search.state import State  # noqa: E402

MARKER_CODE = """
import pathlib
pathlib.Path({marker!r}).write_text("imported")

def found2(x):
    return x
"""


def make_run(root: Path, name: str, finalists: dict[str, tuple[str, list[float]]]) -> Path:
    """A search run folder as ``actlab search`` leaves it: search.sqlite and found/<name>.py."""
    run = root / name
    run.mkdir(parents=True)
    st = State.create(run)
    try:
        for i, (fname, (formula, betas)) in enumerate(finalists.items()):
            t = expr.parse(formula)
            path = found.write(run / "found", fname, t, betas, "test")
            st.put_finalist(fname, i, expr.text(t), str(path.resolve()), betas)
    finally:
        st.close()
    return run


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("explore-search") / "runs"
    make_run(root, "moons-a", {"found1": ("gate(beta*x, x)", [1.702])})
    make_run(root, "b", {"found1": ("tanh(x)", [])})
    # a finalist whose stored path points elsewhere, and whose found/ file imports a marker
    evil = make_run(root, "c", {})
    marker = root.parent / "MARKER"
    (evil / "found").mkdir()
    (evil / "found" / "found2.py").write_text(MARKER_CODE.format(marker=str(marker)))
    conn = sqlite3.connect(evil / "search.sqlite")
    conn.execute("INSERT INTO finalists VALUES ('../../x', 0, 'x', '/tmp/x.py', '[]')")
    conn.commit()
    conn.close()
    # a foreign database named search.sqlite: recognised as not a search's, left byte-identical
    foreign = root / "d"
    foreign.mkdir()
    conn = sqlite3.connect(foreign / "search.sqlite")
    conn.execute("create table t(x)")
    conn.commit()
    conn.close()
    return root


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_finalists_are_found_by_run_and_name_and_bad_runs_skipped(runs):
    before = digest(runs / "d" / "search.sqlite")
    items, skipped = search_finalists(runs)
    names = [n for n, _, _ in items]
    assert names == ["b_found1", "moons_a_found1"]
    assert items[1][1] == f"{(runs / 'moons-a' / 'found' / 'found1.py').resolve()}:found1"
    assert items[1][2] == "found1 (search: moons-a)"
    assert any(line.startswith("c: finalist '../../x'") for line in skipped), skipped
    assert any(line.startswith("d: ") and "not an actlab search" in line for line in skipped)
    assert digest(runs / "d" / "search.sqlite") == before  # the foreign file untouched
    assert not (runs / "d" / "search.sqlite-wal").exists()
    assert not (runs.parent / "MARKER").exists()  # finding imports nothing


def test_finalists_appear_in_functions_with_their_curves(runs):
    with (
        LiveServer(runs, search_finalists=True) as server,
        httpx.Client(base_url=server.url, timeout=60) as c,
    ):
        acts = {a["name"]: a for a in c.get("/api/catalog").json()["activations"]}
        assert acts["moons_a_found1"]["display_name"] == "found1 (search: moons-a)"
        assert "b_found1" in acts and "relu" in acts
        assert [p["name"] for p in acts["moons_a_found1"]["params"]] == ["beta1"]
        r = c.get("/api/curves", params={"spec": ["moons_a_found1", "b_found1"], "n": 7})
        assert r.status_code == 200, r.text
        x = np.linspace(-5, 5, 7)
        f = r.json()["curves"][0]["f"]["y"]
        assert np.allclose(f, x / (1 + np.exp(-1.702 * x)), atol=1e-4)
        assert np.allclose(r.json()["curves"][1]["f"]["y"], np.tanh(x), atol=1e-4)
        s = c.post("/api/sessions", json={"layers": ["moons_a_found1", "b_found1"]})
        assert s.status_code == 201, s.text
        c.delete(f"/api/sessions/{s.json()['id']}")
        # the file itself still cannot be named by a request
        path = runs / "moons-a" / "found" / "found1.py"
        assert c.get("/api/curves", params={"spec": f"{path}:found1"}).status_code == 400
        assert server.app.state.finalists == ["b_found1", "moons_a_found1"]
        assert len(server.app.state.search_skipped) == 2
        # export names the finalist's file, as for --activations
        text = c.post("/api/export", json={"layers": ["moons_a_found1"]}).text
        assert f"from {path.resolve()}" in text and "from found1 import found1" in text
    assert not (runs.parent / "MARKER").exists()


def test_without_the_option_nothing_is_loaded(runs):
    with (
        LiveServer(runs) as server,
        httpx.Client(base_url=server.url, timeout=60) as c,
    ):
        names = [a["name"] for a in c.get("/api/catalog").json()["activations"]]
        assert not any("found" in n for n in names)
        assert c.get("/api/curves", params={"spec": "moons_a_found1"}).status_code == 400


def test_the_cli_loads_finalists_only_from_a_runs_folder_it_was_given(monkeypatch):
    from actlab.cli import build_parser
    from actlab.cli import explore as cli_explore

    calls = []
    monkeypatch.setattr(cli_explore, "serve", lambda *a, **k: calls.append(k))
    for argv, runs, search in [
        (["explore"], "actlab-runs", False),  # the default folder: never
        (["explore", "--runs", "r"], "r", True),
        (["explore", "--runs", "r", "--no-search-finalists"], "r", False),
    ]:
        args = build_parser().parse_args(argv)
        assert args.func(args) == 0
        assert (calls[-1]["runs"], calls[-1]["search_finalists"]) == (runs, search)
