"""actlab search: grammar, dedup, safety, screening, successive halving, confirmation, finalists."""

from __future__ import annotations

import builtins
import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from actlab import catalog
from actlab.cli import main
from actlab.errors import ActlabError
from actlab.search import expr, found, primitives, race, screen
from actlab.search.primitives import Program, evaluate

# ------------------------------------------------------------------------------------ grammar


def test_round_trip_every_candidate_of_the_large_space() -> None:
    slots = expr.candidates(expr.load_space("large"))
    assert len(slots) > 4000
    for s in slots:
        t = expr.tree(s)
        assert expr.parse(expr.text(t)) == t, expr.text(t)
        assert expr.slots(t) == s or s[0] == expr.FIRST
        assert expr.latex(t)


@pytest.mark.parametrize("source", [
    "x*sigmoid(beta*x)", "-(x*x)", "(-x)**2", "-x**2", "x - (x + beta)", "x - x + beta",
    "log(abs(x) + 0.01)", "max(x, 0)", "min(-x, 0)", "mix(tanh(x), erf(x))", "rbf(x, sin(x))",
    "gate(beta*x, x)", "(x*x)*x", "x*(x*x)", "beta*(x + x)", "(x**2)**3",
])  # fmt: skip
def test_round_trip_and_value(source: str) -> None:
    t = expr.parse(source)
    assert expr.parse(expr.text(t)) == t
    x = torch.linspace(-2, 2, 9, dtype=torch.float64)
    # the tree means what Python means by the same text (beta at its initial value)
    env = {"x": x, "beta": 1.0 if "sigmoid(beta" in source or "beta*" in source else 0.0}
    names = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "erf": torch.erf, "sin": torch.sin,
             "abs": torch.abs, "log": torch.log, "max": lambda a, b: torch.clamp(a, min=b),
             "min": lambda a, b: torch.clamp(a, max=b)}  # fmt: skip
    if not any(k in source for k in ("mix", "rbf", "gate")):
        expected = eval(source, {"__builtins__": {}}, {**names, **env})  # the test's reference
        assert torch.allclose(evaluate(t, x), expected)


def test_printing() -> None:
    assert expr.text(expr.parse("x * sigmoid( x )")) == "x*sigmoid(x)"
    assert expr.latex(expr.parse("x*sigmoid(beta*x)")) == r"x \cdot \sigma\left(\beta x\right)"
    assert expr.latex(expr.parse("-(x + x)")) == r"-\left(x + x\right)"
    assert expr.params(expr.parse("mix(beta*x, x + beta)")) == [
        ("beta1", 1.0), ("beta2", 0.0), ("beta3", 0.5)]  # fmt: skip


@pytest.mark.parametrize(("source", "words"), [
    ("__import__('os').system('true')", "only plain calls"),
    ("__import__('os')", "unknown function '__import__'"),
    ("os.system", "Attribute is not allowed"),
    ("x.real", "Attribute is not allowed"),
    ("foo(x)", "unknown function 'foo'"),
    ("tanhh(x)", "did you mean 'tanh'"),
    ("y + x", "unknown name 'y'"),
    ("x**4", "only the powers"),
    ("x**2**3", "only the powers"),
    ("x / 2", "Div is not a primitive"),
    ("lambda: 1", "Lambda is not allowed"),
    ("x[0]", "Subscript is not allowed"),
    ("'x'", "Constant is not allowed"),
    ("tanh(x, x)", "takes 1 argument"),
    ("log(x)", "log is only allowed as"),
    ("tanh(x=1)", "only plain calls"),
    ("x +", "not a formula"),
    ("", "non-empty"),
    ("tanh(" * 20 + "x" + ")" * 20, "nested more than"),
])  # fmt: skip
def test_refused(source: str, words: str) -> None:
    with pytest.raises(ActlabError, match=None) as err:
        expr.parse(source)
    assert words in str(err.value)
    assert "\n" not in str(err.value)


def test_parse_never_evaluates(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*a: object, **k: object) -> None:
        raise AssertionError("eval/exec called")

    monkeypatch.setattr(builtins, "eval", boom)
    monkeypatch.setattr(builtins, "exec", boom)
    assert expr.text(expr.parse("gate(beta*x, tanh(x))")) == "gate(beta*x, tanh(x))"
    with pytest.raises(ActlabError):
        expr.parse("__import__('os')")


def test_dedup_by_values() -> None:
    slots = [expr.slots(expr.parse(s)) for s in (
        "x*sigmoid(x)", "gate(x, x)", "sigmoid(x)*x", "tanh(x) + erf(x)", "erf(x) + tanh(x)",
        "x + beta", "x*x", "x**2", "max(x, 0)", "relu(x)", "max(x, minzero(x))", "x",
    )]  # fmt: skip
    keep, dup = primitives.dedup(slots)
    assert keep == [0, 3, 5, 6, 8, 10]
    assert dup == {1: 0, 2: 0, 4: 3, 7: 6, 9: 8, 11: 10}  # x + beta is not x once beta trains


def test_space_file(tmp_path: Path) -> None:
    f = tmp_path / "prims.txt"
    f.write_text("# mine\ntanh relu, sigmoid\nmul add\n")
    sp = expr.load_space(f)
    assert sp.unary == ("tanh", "relu", "sigmoid") and sp.binary == ("mul", "add")
    assert len(expr.candidates(sp, seeds=())) == 3 + 2 * 9
    f.write_text("tanh mull")
    with pytest.raises(ActlabError, match="unknown primitive 'mull'; did you mean 'mul'"):
        expr.load_space(f)
    with pytest.raises(ActlabError, match="neither a preset"):
        expr.load_space(tmp_path / "missing.txt")
    small, default, large = (len(expr.candidates(expr.load_space(p))) for p in expr.PRESETS)
    assert small < default < large


def test_program_matches_one_by_one() -> None:
    slots = expr.candidates(expr.load_space("small"))[:60]
    prog = Program(slots)
    z = torch.randn(len(slots), 7, 5, dtype=torch.float64)
    beta = prog.initial_beta(torch.float64) + 0.3
    out = prog(z, beta)
    for m, s in enumerate(slots):
        t = expr.tree(s)
        b = beta[m].tolist()
        order = [b[0] if expr.UNARY[s[1]].beta is not None else None,
                 b[1] if s[0] != expr.FIRST and expr.UNARY[s[2]].beta is not None else None,
                 b[2] if s[0] != expr.FIRST and expr.BINARY[s[0]].beta is not None else None]
        ref = evaluate(t, z[m], [v for v in order if v is not None])
        assert torch.allclose(out[m], ref), expr.text(t)


# ---------------------------------------------------------------------------------- screening


def test_screen_features_against_hand_computed_values() -> None:
    slots = [expr.slots(expr.parse(s)) for s in
             ("max(x, 0)", "x**2", "beta*x", "x - x", "exp(x)*exp(x)", "tanh(x)")]  # fmt: skip
    f = screen.screen(slots, samples=200_000, depth=2, width=32)
    relu, sq, lin, const, _, tanh = f
    assert relu["mean"] == pytest.approx(1 / math.sqrt(2 * math.pi), abs=0.01)
    assert relu["second"] == pytest.approx(0.5, abs=0.01)
    assert sq["mean"] == pytest.approx(1.0, abs=0.02)
    assert sq["second"] == pytest.approx(3, rel=0.05)
    # 1 - R^2 = 1 - cov(relu, z)^2 / var(relu): cov = E[z^2; z > 0] = 1/2, var = 1/2 - 1/(2 pi)
    assert relu["nonlinearity"] == pytest.approx(1 - 0.25 / (0.5 - 1 / (2 * math.pi)), abs=0.01)
    assert lin["reason"].startswith("linear") and lin["score"] == -math.inf
    assert const["reason"] == "constant"
    assert all(x["score"] > -math.inf for x in (relu, sq, tanh))


def test_propagation_ratios_through_identity_weights() -> None:
    prog = Program([("first", "x", "x"), ("first", "scale", "x")])
    beta = torch.tensor([[0.0, 0, 0], [2.0, 0, 0]])
    w, depth, c = 8, 3, 1.5
    weights = [c * torch.eye(w).expand(2, w, w) for _ in range(depth + 1)]
    h0 = torch.randn(64, w)
    fwd, bwd = screen.propagate(prog, beta, h0, weights, torch.randn(2, 64, w))
    # f = x: each layer multiplies by c; f = 2x: by 2c after the activations (depth of them)
    assert fwd[0] == pytest.approx(c ** (2 * depth), rel=1e-4)
    assert bwd[0] == pytest.approx(c ** (2 * depth), rel=1e-4)
    assert fwd[1] == pytest.approx(c ** (2 * depth) * 4**depth, rel=1e-4)


# ----------------------------------------------------------------------------------- racing


def _data(n: int = 240) -> dict:
    g = torch.Generator().manual_seed(0)
    X = torch.randn(n, 4, generator=g)
    y = (X[:, 0] * X[:, 1] > 0).long()
    return {"X_train": X[: n // 2], "y_train": y[: n // 2], "X_val": X[n // 2 :],
            "y_val": y[n // 2 :], "classification": True, "n_out": 2}  # fmt: skip


SLOTS = [expr.slots(expr.parse(s)) for s in (
    "x*sigmoid(x)", "tanh(x)", "max(x, 0)", "x*x", "sin(x)", "gate(beta*x, x)", "abs(x)",
    "x + tanh(x)", "erf(x)", "softplus(x)",
)]  # fmt: skip
KW = {"depth": 2, "width": 8, "seed": 3, "lr": 1e-2, "batch_size": 32}


def test_plan() -> None:
    rungs = race.plan(100, 3, 20)
    assert [(r.size, r.epochs) for r in rungs] == [(100, 1), (34, 3), (12, 9), (4, 20)]
    assert race.cost(rungs) == 100 + 34 * 2 + 12 * 6 + 4 * 11
    assert race.plan(5, 3, 20) == [race.Rung(5, 1)]


def test_successive_halving_bookkeeping_and_resume(monkeypatch: pytest.MonkeyPatch) -> None:
    rungs = [race.Rung(10, 1), race.Rung(4, 3), race.Rung(2, 5)]
    ids = list(range(100, 110))
    stored: dict = {}

    def keep(r: int, rows: list, state: bytes, survivors: list) -> None:
        stored[r] = {"rows": rows, "state": state, "survivors": survivors}

    trained = []
    real = race.Stack.run_epoch
    monkeypatch.setattr(race.Stack, "run_epoch",
                        lambda self: trained.append(len(self.slots)) or real(self))  # fmt: skip
    rows, done = race.race(SLOTS, ids, _data(), rungs, on_rung=keep, **KW)
    assert done and trained == [10] + [4] * 2 + [2] * 2
    for k, rung in enumerate(rungs):
        mine = [r for r in rows if r["rung"] == k]
        assert len(mine) == rung.size and {r["epochs"] for r in mine} == {rung.epochs}
        assert all(len(r["curve"]) == rung.epochs - (rungs[k - 1].epochs if k else 0)
                   for r in mine)  # fmt: skip
        if k + 1 < len(rungs):  # the survivors are the best of this rung
            best = sorted(mine, key=lambda r: (-r["val_score"], r["val_loss"], r["cand"]))
            nxt = {r["cand"] for r in rows if r["rung"] == k + 1}
            assert nxt == {r["cand"] for r in best[: rungs[k + 1].size]}
    # resume after rung 1: rung 0 and 1 are not retrained, and the end is the same
    trained.clear()
    again, done = race.race(SLOTS, ids, _data(), rungs, done={0: stored[0], 1: stored[1]}, **KW)
    assert done and trained == [2, 2]
    assert again == rows


def test_race_is_deterministic_and_stops_at_deadline() -> None:
    rungs = [race.Rung(10, 2), race.Rung(4, 4)]
    a, _ = race.race(SLOTS, list(range(10)), _data(), rungs, **KW)
    b, _ = race.race(SLOTS, list(range(10)), _data(), rungs, **KW)
    assert a == b
    rows, done = race.race(SLOTS, list(range(10)), _data(), rungs, deadline=0.0, **KW)
    assert rows == [] and not done


def test_stacked_training_equals_one_model_alone() -> None:
    """The stack is M independent models: one candidate trained alone gives the same numbers."""
    data = _data()
    many = race.Stack(SLOTS, data, **KW)
    one = race.Stack(SLOTS[5:6], data, **KW)
    for _ in range(2):
        many.run_epoch()
        one.run_epoch()
    torch.testing.assert_close(many.evaluate()[0][5:6], one.evaluate()[0], rtol=1e-4, atol=1e-5)


# ------------------------------------------------------------------------------ finalist files


def test_finalist_file_works_as_a_user_activation(tmp_path: Path) -> None:
    t = expr.parse("gate(beta*x, x)")
    path = found.write(tmp_path / "found", "found1", t, [1.702], "test")
    spec = f"{path}:found1"
    act = catalog.parse(spec)
    x = np.linspace(-3, 3, 7)
    assert np.allclose(act.forward(x), x / (1 + np.exp(-1.702 * x)), atol=1e-6)
    assert main(["eval", spec, "-1", "0", "2", "--derivative"]) == 0
    assert main(["plot", spec, "silu", "-o", str(tmp_path / "p.png")]) == 0
    assert (tmp_path / "p.png").stat().st_size > 1000
    from actlab import compare

    res = compare.run("iris", out=tmp_path / "c", activations=[spec, "relu"], seeds=2, epochs=2,
                      report=False)  # fmt: skip
    assert res.complete and len(res.stats.rows) == 2
    assert found.write(tmp_path / "found", "found1", t, [1.702], "test") == path  # same: kept
    with pytest.raises(ActlabError, match="not this search's finalist"):  # never replaced
        found.write(tmp_path / "found", "found1", t, [1.0])
    assert "1.702" in path.read_text()


# ------------------------------------------------------------------------------- end to end

TINY = ["--dataset", "iris", "--space", "SPACE", "--budget", "60", "--epochs", "3",
        "--seeds", "3", "--lr", "1e-2", "--width", "16", "--finalists", "2"]  # fmt: skip


def _tiny(tmp_path: Path) -> list[str]:
    sp = tmp_path / "space.txt"
    sp.write_text("tanh relu sigmoid abs\nmul max\n")
    return [str(sp) if a == "SPACE" else a for a in TINY]


def test_search_end_to_end_cli(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "s"
    assert main(["search", *_tiny(tmp_path), "--out", str(out), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert {"screened", "raced", "finalists", "baselines"} <= set(res)
    assert res["screened"]["screened"] >= res["screened"]["passed"] > 0
    assert [b["name"] for b in res["baselines"]] == ["relu", "silu", "gelu"]
    assert len(res["finalists"]) == 2
    for f in res["finalists"]:
        assert set(f["p_holm"]) == {"relu", "silu", "gelu"}
        assert Path(f["file"]).is_file() and f["test_mean"] is not None
        expr.parse(f["formula"])
    assert (out / "report.html").is_file() and (out / "report.md").is_file()
    # again without --resume: refused; with it: nothing retrained, same finalists
    assert main(["search", *_tiny(tmp_path), "--out", str(out)]) == 2
    assert main(["search", "--out", str(out), "--resume", "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["finalists"] == res["finalists"]


def test_bad_input_leaves_no_folder(tmp_path: Path) -> None:
    for bad in (["--space", "nope"], ["--budget", "-1"], ["--dataset", "digitz"],
                ["--depth", "2,3"]):  # fmt: skip
        assert main(["search", *bad, "--out", str(tmp_path / "x")]) == 2
        assert not (tmp_path / "x").exists()


def test_selection_never_reads_the_test_labels(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from actlab import data
    from actlab.search import runner

    sp = tmp_path / "space.txt"
    sp.write_text("tanh relu sigmoid abs sin\nmul max add\n")
    kw = {"space": str(sp), "budget": 60, "epochs": 3, "seeds": 2, "lr": 1e-2, "width": 16,
          "finalists": 2, "entrants": 12, "report": False}  # fmt: skip
    clean = runner.run("iris", out=tmp_path / "a", **kw)
    real = data.split

    def poisoned(*a: object, **k: object) -> object:
        s = real(*a, **k)
        return dataclasses.replace(s, y_test=(s.y_test + 1) % 3)  # every test label wrong

    monkeypatch.setattr(data, "split", poisoned)
    dirty = runner.run("iris", out=tmp_path / "b", **kw)
    assert [f["formula"] for f in dirty.finalists] == [f["formula"] for f in clean.finalists]
    assert dirty.raced["rows"] == clean.raced["rows"]
    assert [f["test_mean"] for f in dirty.finalists] != [f["test_mean"] for f in clean.finalists]


def test_rung_sizes_fit_the_time_left() -> None:
    rungs = race.plan(300, 3, 20)
    sizes = [r.size for r in rungs]
    race._fit(sizes, rungs, 0, per=0.01, left=1e6)  # plenty of time: the plan stands
    assert sizes == [r.size for r in rungs]
    race._fit(sizes, rungs, 0, per=0.01, left=5.0)
    assert all(a < b.size for a, b in zip(sizes[1:], rungs[1:], strict=True))
    done, cost = rungs[0].epochs, 0.0
    for k in range(1, len(rungs)):
        cost += sizes[k] * (rungs[k].epochs - done) * 0.01
        done = rungs[k].epochs
    assert cost <= 0.9 * 5.0 or sizes[-1] == 1


def test_budget_spent_before_racing_then_resume(tmp_path: Path) -> None:
    from actlab.search import runner
    from actlab.search.state import State

    sp = tmp_path / "space.txt"
    sp.write_text("tanh relu sigmoid abs\nmul max\n")
    kw = {"space": str(sp), "epochs": 2, "seeds": 3, "lr": 1e-2, "width": 16, "finalists": 2}
    with pytest.raises(ActlabError, match="before the first racing rung finished"):
        runner.run("iris", out=tmp_path / "s", budget=0.01, report=False, **kw)
    st = State.open(tmp_path / "s")
    assert len(st.candidates()) > 0 and not st.rungs()  # the screening is kept
    st.close()
    res = runner.run(out=tmp_path / "s", resume=True, budget=60, report=False)
    assert res.complete and len(res.finalists) == 2
    assert res.raced["entrants"] > 2  # planned again for the new budget


@pytest.mark.parametrize("content", ["empty", "foreign", "other_app"])
def test_resume_never_writes_a_state_file_it_did_not_make(tmp_path: Path, content: str) -> None:
    import hashlib
    import sqlite3

    out = tmp_path / "s"
    out.mkdir()
    path = out / "search.sqlite"
    if content == "empty":
        path.write_bytes(b"")
    else:
        db = sqlite3.connect(path)
        app = "PRAGMA application_id=7;" if content == "other_app" else ""
        db.executescript(app + "CREATE TABLE meta (key TEXT, value TEXT); CREATE TABLE t(x);")
        db.close()
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    assert main(["search", "--out", str(out), "--resume"]) == 2
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
    assert sorted(p.name for p in out.iterdir()) == ["search.sqlite"]
