"""Diagnose: Monitor hooks and statistics, verdicts, demos and the `actlab diagnose` command."""

from __future__ import annotations

import gc
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import nn

from actlab import diagnose
from actlab.cli import main
from actlab.diagnose import Monitor, unit_health
from actlab.errors import ActlabError


def _mlp(act: nn.Module | None = None, inplace: bool = False, seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    a = act if act is not None else nn.ReLU(inplace=inplace)
    return nn.Sequential(nn.Linear(8, 16), a, nn.Linear(16, 3))


def _hook_count(model: nn.Module) -> int:
    n = 0
    for m in model.modules():
        n += len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
    for p in model.parameters():
        n += len(p._backward_hooks or {})
    return n


def _batches(n: int, seed: int = 0, size: int = 32) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return [
        (torch.randn(size, 8, generator=g), torch.randint(0, 3, (size,), generator=g))
        for _ in range(n)
    ]


def _train_steps(model: nn.Module, batches: list) -> None:
    for xb, yb in batches:
        model.zero_grad()
        F.cross_entropy(model(xb), yb).backward()


# --- unit statistics ---------------------------------------------------------------------------


@pytest.mark.parametrize("act", [nn.ReLU(), nn.Sigmoid(), nn.Hardsigmoid()])
def test_running_counts_equal_unit_health_on_all_samples(act: nn.Module) -> None:
    torch.manual_seed(1)
    lin = nn.Linear(8, 16)
    with torch.no_grad():  # push some units far negative / far positive so dead and saturated occur
        lin.bias[:4] = -50.0
        lin.bias[4:8] = 8.0
        lin.weight[4:8] *= 0.1
    model = nn.Sequential(lin, act, nn.Linear(16, 3))
    batches = _batches(5)
    with Monitor(model) as mon:
        _train_steps(model, batches)
    layer = mon.report().activations[0]
    with torch.no_grad():
        pre = torch.cat([lin(xb) for xb, _ in batches]).requires_grad_(True)
    with torch.enable_grad():
        (d,) = torch.autograd.grad(act(pre).sum(), pre)
    dead, saturated = unit_health(d)
    assert layer.samples == 5 * 32
    assert layer.dead_fraction == pytest.approx(float(dead))
    if isinstance(act, nn.ReLU):  # one-sided: the flat side is sparsity, reported as not applicable
        assert layer.saturated_fraction is None
        assert layer.dead_fraction >= 4 / 16
    else:
        assert layer.saturated_fraction == pytest.approx(float(saturated))
        assert layer.saturated_fraction + layer.dead_fraction >= 8 / 16
    out = torch.cat([act(lin(xb)) for xb, _ in batches]).detach().double()
    assert layer.mean == pytest.approx(float(out.mean()), rel=1e-9)
    assert layer.std == pytest.approx(float(out.std(unbiased=False)), rel=1e-9)


def test_inplace_relu_gives_the_same_statistics_as_out_of_place() -> None:
    batches = _batches(4)
    reports = []
    for inplace in (False, True):
        model = _mlp(inplace=inplace)
        with torch.no_grad():
            model[0].bias[:5] = -100.0  # 5 of 16 units can never fire
        with Monitor(model) as mon:
            _train_steps(model, batches)
        reports.append(mon.report())
    a, b = (r.activations[0] for r in reports)
    assert a.dead_fraction == b.dead_fraction == pytest.approx(5 / 16)
    assert (a.mean, a.std) == pytest.approx((b.mean, b.std))
    assert [w.grad_norm for w in reports[0].weights] == pytest.approx(
        [w.grad_norm for w in reports[1].weights]
    )


def test_inplace_elu_uses_the_input_not_the_overwritten_output() -> None:
    # ELU(inplace) overwrites x with elu(x); f' computed from the output would be wrong for x < 0
    model = _mlp(nn.ELU(inplace=True))
    with torch.no_grad():
        model[0].bias[:] = -200.0  # exp(-200) underflows: f' is exactly 0, so every unit is dead
    with Monitor(model) as mon:
        _train_steps(model, _batches(2))
    assert mon.report().activations[0].dead_fraction == 1.0


def test_eval_mode_no_grad_and_shared_module_calls() -> None:
    act = nn.Tanh()
    model = nn.Sequential(nn.Linear(8, 16), act, nn.Linear(16, 16), act, nn.Linear(16, 3)).eval()
    with Monitor(model) as mon, torch.no_grad():
        for xb, _ in _batches(3):
            model(xb)
    rep = mon.report()
    assert [a.name for a in rep.activations] == ["1", "1#1"]  # one module, two call sites
    assert all(a.samples == 96 for a in rep.activations)
    assert all(w.grad_norm is None for w in rep.weights)
    assert any("no gradient was seen" in n for n in rep.notes)
    assert rep.forwards == 3


def test_conv_units_are_channels() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 6, 3), nn.ReLU(), nn.Flatten(), nn.Linear(6 * 6 * 6, 2))
    with torch.no_grad():
        model[0].bias[:2] = -100.0
    with Monitor(model) as mon:
        out = model(torch.randn(4, 1, 8, 8))
        out.sum().backward()
    layer = mon.report().activations[0]
    assert layer.units == 6
    assert layer.samples == 4 * 6 * 6
    assert layer.dead_fraction == pytest.approx(2 / 6)


def test_histogram_keeps_every_output_in_bounded_memory() -> None:
    model = _mlp(nn.Sigmoid())
    batches = _batches(300, size=4)
    with Monitor(model, bins=10, history=16) as mon, torch.no_grad():
        for xb, _ in batches:
            model(xb)
    layer = mon.report().activations[0]
    assert layer.hist.shape[1] == 10 and layer.hist.shape[0] <= 16
    assert layer.hist_stride == 32  # 300 batches folded into rows of 32 batches
    assert layer.hist.sum() == 300 * 4 * 16  # nothing lost, out-of-range values in edge bins
    assert (layer.hist_edges[0], layer.hist_edges[-1]) == (0.0, 1.0)  # sigmoid's range


# --- gradients and verdicts ----------------------------------------------------------------------


def test_gradient_norms_are_per_backward_pass_with_accumulation() -> None:
    batches = _batches(4)
    norms = []
    for accumulate in (False, True):
        model = _mlp()
        with Monitor(model) as mon:
            for xb, yb in batches:
                if not accumulate:
                    model.zero_grad()
                F.cross_entropy(model(xb), yb).backward()  # .grad accumulates when not zeroed
        norms.append([w.grad_norm for w in mon.report().weights])
    assert norms[0] == pytest.approx(norms[1])
    # against a direct computation for the first layer, one backward at a time
    model = _mlp()
    expected = []
    for xb, yb in batches:
        model.zero_grad()
        F.cross_entropy(model(xb), yb).backward()
        expected.append(float(model[0].weight.grad.norm()))
    assert norms[0][0] == pytest.approx(np.mean(expected), rel=1e-6)


def test_exploding_verdict_and_report_outputs() -> None:
    model = _mlp(nn.Tanh())
    with torch.no_grad():
        model[2].weight.mul_(1e4)  # the last layer amplifies what flows back to the first
    with Monitor(model) as mon:
        for xb, _ in _batches(2):
            model.zero_grad()
            model(xb).pow(2).sum().backward()
    rep = mon.report()
    assert rep.first_last_ratio is not None and rep.first_last_ratio > diagnose.EXPLODING
    (v,) = [v for v in rep.verdicts if v.problem == "exploding"]
    assert "1e+02" in v.message or "100" in v.message
    assert "learning rate" in v.advice
    rows = rep.table()
    assert [r["kind"] for r in rows] == ["weight", "activation", "weight"]
    assert rows[-1]["ratio_to_last"] == 1.0
    d = rep.to_dict()
    json.dumps(d)  # plain data
    assert d["verdicts"][0]["problem"] == "exploding" and d["thresholds"]["exploding"]
    figs = diagnose.figures(rep)  # the display draws the plain report
    assert isinstance(figs["gradient_flow"], Figure)
    fig = figs["activations"]
    assert isinstance(fig, Figure) and len(fig.axes) >= 1
    assert type(diagnose.render(rep, "t")).__name__ == "Table"



def test_one_layer_numbering_in_table_verdicts_and_figure_panels() -> None:
    """Issue 20 item 14: a dead ReLU after the 2nd Linear of a Sequential (module '3') is 'act 2'
    in the table, the verdict and the histogram panel, never its Sequential index."""
    from rich.console import Console

    torch.manual_seed(0)
    layers = [nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 3)]
    model = nn.Sequential(*layers)
    with torch.no_grad():
        model[2].bias.fill_(-100.0)  # every unit of act 2 is dead
    with Monitor(model) as mon:
        _train_steps(model, _batches(2))
    rep = mon.report()
    (dead,) = [v for v in rep.verdicts if v.problem == "dead"]
    assert dead.layer == "act 2"
    console = Console(width=120, record=True)
    console.print(diagnose.render(rep, "t"))
    text = console.export_text()
    assert "act 2" in text and "dead in act 2" in text
    titles = [ax.get_title(loc="left") for ax in diagnose.figures(rep)["activations"].axes]
    assert "act 2: relu" in titles and "act 1: tanh" in titles
    assert not any(t.startswith(("1:", "3:")) for t in titles)  # no module indices

def test_results_are_plain_data_without_rich_or_matplotlib() -> None:
    import subprocess
    import sys

    code = (
        "import sys; import actlab.diagnose.demos, actlab.diagnose.report; "
        "print(sorted(m for m in ('matplotlib', 'rich') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_verdict_rules_exist_in_the_advice_table() -> None:
    advice = pytest.importorskip("actlab.advice")
    ids = {r.id for r in advice.load_rules().rules}
    for problem, rules in diagnose.ADVICE_RULES.items():
        assert set(rules) <= ids, problem
        assert problem in diagnose.ADVICE and problem in diagnose.THRESHOLDS


# --- hooks and memory ----------------------------------------------------------------------------


def test_hooks_removed_after_block_and_after_exception() -> None:
    model = _mlp()
    before = _hook_count(model)
    with Monitor(model) as mon:
        _train_steps(model, _batches(1))
        assert _hook_count(model) > before
    assert _hook_count(model) == before
    with pytest.raises(RuntimeError, match="boom"), Monitor(model):
        model(torch.randn(2, 8)).sum().backward()
        raise RuntimeError("boom")
    assert _hook_count(model) == before
    # the statistics survive the block; a model run afterwards is not observed
    n = mon.report().forwards
    model(torch.randn(2, 8))
    assert mon.report().forwards == n


def test_memory_stays_flat_over_200_batches() -> None:
    model = _mlp(nn.Sigmoid())
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    batches = _batches(200, size=16)
    with Monitor(model, history=32) as mon:
        counts = []
        for i, (xb, yb) in enumerate(batches):
            opt.zero_grad()
            F.cross_entropy(model(xb), yb).backward()
            opt.step()
            if i in (19, 199):
                gc.collect()
                counts.append(
                    (mon.nbytes(), sum(issubclass(type(o), torch.Tensor) for o in gc.get_objects()))
                )
        held = [t for s in mon._sites.values() for t in (s.nonzero, s.small, s.history.buf)]
    assert counts[0] == counts[1]  # same bytes held, same number of live tensors
    assert all(t.grad_fn is None and not t.requires_grad for t in held)


def test_functional_activations_are_explained() -> None:
    class Functional(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = nn.Linear(8, 16), nn.Linear(16, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.b(F.relu(self.a(x)))

    model = Functional()
    with Monitor(model) as mon:
        _train_steps(model, _batches(1))
    rep = mon.report()
    assert rep.activations == [] and len(rep.weights) == 2
    (note,) = [n for n in rep.notes if "F.relu" in n]
    assert "actlab.torch.swap" in note and "2 Linear/Conv" in note
    assert note in rep.to_dict()["notes"]


def test_user_activation_modules_are_hooked() -> None:
    class Swish(nn.Module):  # the user's own, named like a catalog entry
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * torch.sigmoid(x)

    class Gate(nn.Module):  # unknown name: passed explicitly
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.clamp(x, 0.0, 1.0)

    class MyLeaky(nn.LeakyReLU):  # a subclass of a native module
        pass

    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(8, 16),
        Swish(),
        nn.Linear(16, 16),
        Gate(),
        nn.Linear(16, 16),
        MyLeaky(0.2),
        nn.Linear(16, 3),
    )
    with torch.no_grad():
        model[2].bias[:4] = -100.0  # Gate'(x) = 0 below 0: 4 dead units
    with Monitor(model, extra=[Gate]) as mon:
        _train_steps(model, _batches(2))
    acts = mon.report().activations
    assert [a.activation for a in acts] == [
        "Swish (user module)",
        "Gate (user module)",
        "leaky_relu:negative_slope=0.2",
    ]
    assert acts[1].dead_fraction == pytest.approx(4 / 16)
    assert acts[2].dead_fraction == 0.0


def test_monitor_rejects_bad_arguments() -> None:
    with pytest.raises(ActlabError, match=r"torch\.nn\.Module"):
        Monitor("model")  # type: ignore[arg-type]
    with pytest.raises(ActlabError, match="bins"):
        Monitor(_mlp(), bins=1)
    with pytest.raises(ActlabError, match="hist_range"):
        Monitor(_mlp(), hist_range=(1.0, 0.0))
    with pytest.raises(ActlabError, match="extra"):
        Monitor(_mlp(), extra=["relu"])  # type: ignore[list-item]


# --- demos ---------------------------------------------------------------------------------------


def test_vanishing_demo_sigmoid_vanishes_relu_with_he_does_not() -> None:
    demo = diagnose.demo_vanishing(depth=10, activations="sigmoid,relu", epochs=1, batches=2)
    sig, relu = demo.ratio("sigmoid"), demo.ratio("relu")
    assert sig is not None and sig < 1e-2
    assert relu is not None and 0.1 <= relu <= 10
    assert "vanishing" in demo.run("sigmoid").report.problems()
    assert "vanishing" not in demo.run("relu").report.problems()
    assert demo.run("relu").init == "he" and demo.run("sigmoid").init == "standard"
    assert demo.ratio("sigmoid", "trained") < 1e-2  # training does not rescue it
    rows = demo.table()
    assert len(rows) == 2 * 2 * 11  # activations x phases x weight layers
    json.dumps(demo.to_dict())
    assert isinstance(diagnose.figures(demo)["gradient_flow"], Figure)


def test_dying_demo_kills_relu_not_leaky_relu() -> None:
    demo = diagnose.demo_dying("relu,leaky_relu", epochs=3, lr=0.1)  # a harder push
    relu, leaky = demo.mean_dead("relu"), demo.mean_dead("leaky_relu")
    assert demo.mean_dead("relu", 0) < 0.1  # healthy at initialisation ...
    assert relu > 0.5  # ... most units dead after training with a too-high learning rate
    assert leaky < relu and leaky < 0.1
    assert {r["epoch"] for r in demo.table()} == {0, 1, 2, 3}
    assert isinstance(diagnose.figures(demo)["dead_fraction"], Figure)



def test_dying_demo_lesson_shows_at_its_defaults() -> None:
    """Issue 20 item 18: at the defaults ReLU units die while LeakyReLU and ELU keep theirs and
    still learn (at lr 0.1 ELU ended 100% dead in whole layers at 10% accuracy)."""
    demo = diagnose.demo_dying()
    assert set(demo.activations) == {"relu", "leaky_relu", "elu"}
    assert demo.mean_dead("relu", 0) < 0.05 < 0.25 < demo.mean_dead("relu")
    for act in ("leaky_relu", "elu"):
        assert max(d for d in demo.dead(act) if d is not None) < 0.05, act  # every layer lives
        assert demo.val_accuracy[act][-1] > 0.5, act  # far above chance (10 classes)

def test_demo_arguments_are_checked() -> None:
    with pytest.raises(ActlabError, match="depth"):
        diagnose.demo_vanishing(depth=0)
    for bad in (2.0, True, float("nan")):  # the Python API takes ints only
        with pytest.raises(ActlabError, match="depth must be a whole number >= 1 and < 101"):
            diagnose.demo_vanishing(depth=bad)
    with pytest.raises(ActlabError, match="lr must be a finite number >= 0 and < 10, got nan"):
        diagnose.demo_vanishing(lr=float("nan"))
    with pytest.raises(ActlabError, match="lr must be a finite number >= 0 and < 100, got 200"):
        diagnose.demo_dying(lr=200)  # the dying demo's own bound
    with pytest.raises(ActlabError, match="epochs must be a whole number >= 1"):
        diagnose.demo_dying(epochs=0)
    with pytest.raises(ActlabError, match="init"):
        diagnose.demo_vanishing(init="xavier")
    with pytest.raises(ActlabError, match="did you mean"):
        diagnose.demo_dying("rleu")
    with pytest.raises(ActlabError, match="not a hidden-layer activation"):
        diagnose.demo_dying(["softmax"])


# --- CLI -----------------------------------------------------------------------------------------

MODEL_FILE = """
import torch.nn as nn
import torch.nn.functional as F


def good():
    return nn.Sequential(nn.Linear(64, 32), nn.ReLU(inplace=True), nn.Linear(32, 10))


def with_activation(spec):
    from actlab.torch import build
    return nn.Sequential(nn.Linear(4, 8), build(spec), nn.Linear(8, 3))


class Functional(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(64, 32), nn.Linear(32, 10)

    def forward(self, x):
        return self.b(F.relu(self.a(x)))


def functional():
    return Functional()


def empty():
    return nn.Identity()


def wrong_width():
    return nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 7))


def not_a_model():
    return 42
"""


@pytest.fixture()
def model_file(tmp_path):
    path = tmp_path / "mymodels.py"
    path.write_text(MODEL_FILE)
    return path


def test_cli_model_report_json_and_plots(model_file, tmp_path, capsys) -> None:
    out = tmp_path / "figs"
    code = main(
        [
            "diagnose",
            "--model",
            f"{model_file}:good",
            "--batches",
            "5",
            "--json",
            "--plot",
            str(out),
        ]
    )
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert [r["kind"] for r in data["layers"]] == ["weight", "activation", "weight"]
    assert data["forwards"] == 5 and data["backwards"] == 5
    assert (out / "gradient_flow.png").stat().st_size > 0
    assert (out / "activations.png").stat().st_size > 0
    # figures are not overwritten silently
    assert (
        main(["diagnose", "--model", f"{model_file}:good", "--batches", "1", "--plot", str(out)])
        == 2
    )
    assert "--force" in capsys.readouterr().err


def test_cli_model_with_activation_argument_and_functional_note(model_file, capsys) -> None:
    code = main(
        [
            "diagnose",
            "--model",
            f"{model_file}:with_activation",
            "--activation",
            "tanh",
            "--dataset",
            "iris",
            "--batches",
            "3",
        ]
    )
    assert code == 0
    assert "tanh" in capsys.readouterr().out
    code = main(["diagnose", "--model", f"{model_file}:functional", "--batches", "2"])
    assert code == 0
    assert "actlab.torch.swap" in capsys.readouterr().out


def test_cli_model_on_csv(tmp_path, capsys) -> None:
    rows = ["a,b,c,label"] + [
        f"{i % 7},{(i * 3) % 5},{i / 10},{'yes' if i % 2 else 'no'}" for i in range(40)
    ]
    csv = tmp_path / "data.csv"
    csv.write_text("\n".join(rows) + "\n")
    models = tmp_path / "csvmodel.py"
    models.write_text(
        "import torch.nn as nn\n"
        "def net():\n"
        "    return nn.Sequential(nn.Linear(3, 8), nn.Sigmoid(), nn.Linear(8, 2))\n"
    )
    argv = ["diagnose", "--model", f"{models}:net", "--csv", str(csv), "--target", "label"]
    assert main([*argv, "--batches", "4", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["layers"][1]["type"] == "sigmoid" and data["layers"][1]["saturated_fraction"] == 0
    assert main([*argv[:-1], "missing"]) == 2
    assert "missing" in capsys.readouterr().err


def test_learnable_activation_under_inference_mode() -> None:
    model = nn.Sequential(nn.Linear(8, 16), nn.PReLU(), nn.Linear(16, 3), nn.Softmax(dim=1))
    with torch.no_grad():
        model[0].bias[:] = -100.0  # all inputs negative: PReLU still passes 0.25 x the gradient
    with Monitor(model) as mon, torch.inference_mode():
        model(torch.randn(4, 8))
    prelu, softmax = mon.report().activations
    assert prelu.dead_fraction == 0.0 and prelu.saturated_fraction is None
    assert softmax.dead_fraction is None  # not elementwise: no per-unit derivative
    assert softmax.hist.sum() == 4 * 3


def test_cli_demo_vanishing(capsys) -> None:
    code = main(
        [
            "diagnose",
            "--demo",
            "vanishing",
            "--depth",
            "6",
            "--epochs",
            "0",
            "--activations",
            "sigmoid",
            "relu",
            "--json",
        ]
    )
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    ratios = {r["activation"]: r["first_last_ratio"] for r in data["summary"]}
    assert ratios["sigmoid"] < 1e-2 < 0.1 <= ratios["relu"] <= 10


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["diagnose"], "exactly one of --demo"),
        (["diagnose", "--demo", "vanishing", "--model", "m:f"], "exactly one of --demo"),
        (
            ["diagnose", "--demo", "vanishing", "--batches", "3"],
            "--batches only apply with --model",
        ),
        (["diagnose", "--demo", "vanishing", "--activations", "rleu"], "did you mean"),
        (["diagnose", "--demo", "vanishing", "--depth", "0"], "depth must be"),
        (["diagnose", "--model", "m:f", "--csv", "x.csv"], "--csv and --target go together"),
        (["diagnose", "--model", "m:f", "--depth", "3"], "--depth only apply with --demo"),
        (["diagnose", "--model", "no_such_module_xyz:f"], "cannot import 'no_such_module_xyz'"),
        (["diagnose", "--model", "nocolon"], "module:function"),
        (["diagnose", "--model", "{file}:missing"], "has no function 'missing'"),
        (["diagnose", "--model", "{file}:not_a_model"], "expected a torch.nn.Module"),
        (["diagnose", "--model", "{file}:empty"], "nothing to diagnose"),
        (["diagnose", "--model", "{file}:wrong_width"], "expected (batch, 10)"),
        (["diagnose", "--model", "{file}:good", "--dataset", "nope"], "nope"),
        (["diagnose", "--model", "{file}:good", "--activation", "relu"], "takes no argument"),
    ],
)
def test_cli_usage_errors_exit_2(argv, message, model_file, capsys) -> None:
    argv = [a.replace("{file}", str(model_file)) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("actlab: error:") and message in err
    assert "Traceback" not in err


def test_cli_argparse_errors_exit_2(capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["diagnose", "--demo", "exploding"])
    assert exc.value.code == 2


def test_cli_plot_dir_that_is_a_file(tmp_path, capsys) -> None:
    f = tmp_path / "file.png"
    f.write_text("x")
    assert main(["diagnose", "--demo", "dying-relu", "--epochs", "1", "--plot", str(f)]) == 2
    assert "is a file" in capsys.readouterr().err


def test_histogram_range_grows_with_the_outputs_and_keeps_counts_exact():
    torch.manual_seed(0)
    relu = nn.ReLU()
    net = nn.Sequential(nn.Linear(4, 32), relu, nn.Linear(32, 1))
    scale = [1.0, 1.0, 50.0, 400.0]  # later batches reach far past the first batch's range
    batches = [torch.randn(64, 4) * s for s in scale]
    with Monitor(net) as mon:
        for x in batches:
            net(x).sum().backward()
    samples = [relu(net[0](x)).detach() for x in batches]  # no optimiser step: same weights
    layer = next(a for a in mon.report().layers if getattr(a, "hist", None) is not None)
    top = float(torch.cat(samples).max())
    assert layer.hist_edges[0] == 0.0 and layer.hist_edges[-1] >= top  # nothing piled at the edge
    assert layer.hist.sum() == sum(t.numel() for t in samples)  # merging lost no count
    expected = np.histogram(torch.cat(samples).numpy(), bins=layer.hist_edges)[0]
    np.testing.assert_array_equal(layer.hist.sum(axis=0), expected)


def test_odd_bin_counts_are_refused():
    with pytest.raises(ActlabError, match="even integer"):
        Monitor(nn.Sequential(nn.Linear(2, 2), nn.ReLU()), bins=5)
