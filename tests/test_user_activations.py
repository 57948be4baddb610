"""Your own activations: actlab.register and path/to/file.py:function specs, through the CLI."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch

import actlab
from actlab import catalog
from actlab.cli import main
from actlab.errors import ActlabError

ROOT = Path(__file__).resolve().parents[1]
PSERF = ROOT / "examples" / "pserf.py"

USER_CODE = '''
import torch

def scaled_tanh(x, a=1.7159, b=0.6667):
    """f(x) = a * tanh(b * x)"""
    return a * torch.tanh(b * x)

def two_args(x, y):
    return x + y

def total(x):
    return x.sum()

def log(x):
    return torch.log(x)

def centre(x):
    return x - x.mean()

def as_list(x):
    return [1.0]

def fails(x):
    raise ValueError("inside the user's function")
'''


@pytest.fixture
def code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "acts.py").write_text(USER_CODE)
    (tmp_path / "broken.py").write_text("import no_such_module_for_actlab\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def registered():
    actlab.register(
        "lecun_tanh", lambda x, a=1.7159: a * torch.tanh(2 * x / 3), params={"a": 1.7159}
    )
    yield
    actlab.unregister("lecun_tanh")


def run(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_eval_from_a_file_numpy_through_torch_and_derivative_by_autograd(code, capsys):
    rc, out, _ = run(capsys, "eval", "acts.py:scaled_tanh:a=2", "--json", "--", "-1", "0", "3")
    assert rc == 0
    data = json.loads(out)
    assert data["spec"] == "acts.py:scaled_tanh:a=2"
    np.testing.assert_allclose(data["y"], [2 * math.tanh(0.6667 * v) for v in (-1, 0, 3)])
    rc, out, _ = run(capsys, "eval", "acts.py:scaled_tanh", "--derivative", "--json", "1")
    d = 1.7159 * 0.6667 * (1 - math.tanh(0.6667) ** 2)
    assert rc == 0 and json.loads(out)["y"] == pytest.approx([d], rel=1e-12)


def test_file_activation_has_the_functions_parameters_and_docstring(code):
    act = catalog.parse("acts.py:scaled_tanh:b=1")
    assert act.params == {"a": 1.7159, "b": 1.0} and str(act) == "acts.py:scaled_tanh:b=1"
    assert act.spec.formula == "f(x) = a * tanh(b * x)"
    assert act.spec.properties.monotonic and act.spec.properties.saturating == "both"
    assert catalog.parse(str(act)) == act  # the canonical string names it again (compare stores it)
    y = act.forward(np.array([0.5, -2.0], dtype=np.float32))
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, 1.7159 * np.tanh([0.5, -2.0]), rtol=1e-6)


def test_register_in_python_builds_identifies_and_parses(registered):
    act = actlab.parse("lecun_tanh:a=1")
    assert "lecun_tanh" in catalog.names()
    assert float(act.forward(3.0)) == pytest.approx(math.tanh(2.0), rel=1e-14)
    assert float(act.derivative(0.0)) == pytest.approx(2 / 3, rel=1e-12)
    from actlab.torch import build, fast_path, identify

    module = build(act)
    assert torch.allclose(module(torch.tensor([3.0])), torch.tanh(torch.tensor([2.0])))
    assert identify(module) == act
    assert fast_path(module) is None  # trained through autograd, beside the fast built-ins
    assert fast_path(build("relu")) is not None


def test_register_with_numpy_and_analytic_derivative(registered):
    spec = actlab.register(
        "cube_root_ish",
        lambda x: x / (1 + x.abs()),
        numpy_fn=lambda x: x / (1 + np.abs(x)),
        derivative=lambda x: 1 / (1 + np.abs(x)) ** 2,
    )
    try:
        assert spec.derivative_formula == "user function"
        np.testing.assert_allclose(actlab.parse("cube_root_ish").derivative([0.0, 1.0]), [1, 0.25])
    finally:
        actlab.unregister("cube_root_ish")


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: actlab.register("relu", torch.relu), "is a built-in activation"),
        (lambda: actlab.register("not a name", torch.relu), "identifier"),
        (lambda: actlab.register("lecun_tanh", torch.relu), "already registered"),
        (lambda: actlab.register("nan_act", torch.log), "NaN or inf"),
        (
            lambda: actlab.register("disagree", torch.tanh, numpy_fn=np.sin),
            "numpy_fn and torch_fn disagree",
        ),
        (lambda: actlab.register("p", torch.relu, params={"mode": "x"}), "numbers or booleans"),
    ],
)
def test_register_rejects_bad_definitions(registered, call, message):
    with pytest.raises(ActlabError, match=message):
        call()


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("acts.py:two_args", "'acts.py:two_args': wrong signature"),
        ("acts.py:total", "'acts.py:total': not elementwise: a tensor of shape"),
        ("acts.py:centre", "'acts.py:centre': not elementwise: f at a point changed"),
        ("acts.py:log", "'acts.py:log': it returns NaN or inf for the finite input x = -6"),
        ("acts.py:as_list", "'acts.py:as_list': it returned a list, not a torch.Tensor"),
        ("acts.py:fails", r"'acts.py:fails': calling it .*ValueError: inside the user's function"),
        ("acts.py:nope", "'acts.py' has no function 'nope'"),
        ("broken.py:f", "'broken.py:f': cannot import 'broken.py' .*ModuleNotFoundError"),
        ("missing.py:f", "the file 'missing.py' does not exist"),
        ("acts.py:scaled_tanh:c=1", "unknown parameter 'c' for acts.py:scaled_tanh"),
    ],
)
def test_bad_user_code_is_one_line_exit_2(code, capsys, spec, message):
    for argv in (["eval", spec, "1"], ["plot", spec, "-o", "x.png"]):
        rc, _, err = run(capsys, *argv)
        assert rc == 2, err
        assert err.count("\n") == 1 and "Traceback" not in err
        assert err.startswith("actlab: error: ")

        assert re.search(message, err), err
    assert not (code / "x.png").exists()


def test_plot_and_gallery_show_a_user_activation(code, registered, capsys, tmp_path):
    rc, _, err = run(capsys, "plot", "acts.py:scaled_tanh", "relu", "--derivative", "-o", "f.png")
    assert rc == 0, err
    assert (code / "f.png").stat().st_size > 10_000
    from actlab import plot

    assert "lecun_tanh" in [a.name for a in plot._gallery_activations()]


def test_compare_trains_a_user_activation_beside_builtins(code, capsys):
    rc, out, err = run(
        capsys,
        "compare",
        "--dataset", "moons",
        "--activations", f"relu,{PSERF}:pserf:gamma=1.5",
        "--epochs", "2", "--seeds", "2", "--width", "8", "--depth", "1",
        "--out", "cmp", "--json",
    )  # fmt: skip
    assert rc == 0, err
    text = json.dumps(json.loads(out))
    assert "pserf:gamma=1.5" in text and "relu" in text


def test_diagnose_demo_with_a_user_activation(code, capsys):
    rc, out, err = run(
        capsys, "diagnose", "--demo", "dying-relu", "--activations", "relu,acts.py:scaled_tanh",
        "--epochs", "1", "--json",
    )  # fmt: skip
    assert rc == 0, err
    assert "acts.py:scaled_tanh" in out


def test_example_pserf_runs_as_a_script_and_through_plot(code, capsys):
    rc, _, err = run(capsys, "plot", f"{PSERF}:pserf:gamma=1.5", "gelu", "-o", "pserf.png")
    assert rc == 0, err
    act = catalog.parse(f"{PSERF}:pserf")
    # Pserf(x) = x erf(gamma softplus(delta x)); at x = 1 with gamma = delta = 1:
    assert float(act.forward(1.0)) == pytest.approx(math.erf(math.log1p(math.e)), rel=1e-12)
