"""Export of a Playground (issue 23, item 4): the PyTorch script ``POST /api/export`` returns
reproduces the page's training, and the ``actlab compare`` line names the same settings.

The comparison: the exported script, run in a fresh interpreter for N epochs, against a
:class:`~actlab.explore.session.Session` (what a server session's worker runs) at the same epoch.
Tolerance: 1e-3 relative; a frame's losses are rounded to 4 significant digits (5e-4 relative at
most) and the script prints 6, so the same computation passes and a different batch order,
initialisation or split (tens of percent apart by epoch 4) fails.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
pytest.importorskip("plotly")
httpx = pytest.importorskip("httpx")

from _explore_server import LiveServer  # noqa: E402
from actlab.explore.session import Session, validate  # noqa: E402

EPOCHS = 4
TOLERANCE = 1e-3
USER = '''
import torch

def snake(x, a=1.0):
    """x + sin^2(a x) / a"""
    return x + torch.sin(a * x) ** 2 / a
'''


@pytest.fixture(scope="module")
def place(tmp_path_factory):
    base = tmp_path_factory.mktemp("export")
    (base / "runs").mkdir()
    (base / "my_acts.py").write_text(USER)
    return base


@pytest.fixture(scope="module")
def live(place):
    with LiveServer(place / "runs", activations=f"{place / 'my_acts.py'}:snake") as server:
        yield server


@pytest.fixture()
def client(live):
    with httpx.Client(base_url=live.url, timeout=60) as c:
        yield c


def script_losses(text: str, folder: Path, extra_path: Path | None = None) -> list[tuple]:
    """(epoch, train loss, val loss) printed by the script run for EPOCHS epochs."""
    path = folder / "exported.py"
    path.write_text(text)
    env = {"PYTHONPATH": str(extra_path)} if extra_path else {}
    import os

    out = subprocess.run(
        [sys.executable, str(path), "--epochs", str(EPOCHS)],
        capture_output=True, text=True, timeout=120, env={**os.environ, **env}, cwd=folder,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    rows = re.findall(r"epoch (\d+) train_loss (\S+) val_loss (\S+)", out.stdout)
    return [(int(e), float(t), float(v)) for e, t, v in rows]


def session_losses(body: dict, activations=None) -> list[tuple]:
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        s = Session(validate(body, activations), activations)
        frames = [s.advance(False)] + [s.advance() for _ in range(EPOCHS)]
    finally:
        torch.set_num_threads(threads)
    return [(f["epoch"], f["train_loss"], f["val_loss"]) for f in frames]


def assert_same_curve(mine: list[tuple], page: list[tuple]) -> None:
    assert [e for e, *_ in mine] == [e for e, *_ in page] == list(range(EPOCHS + 1))
    for (e, t, v), (_, pt, pv) in zip(mine, page, strict=True):
        assert t == pytest.approx(pt, rel=TOLERANCE), f"train loss at epoch {e}"
        assert v == pytest.approx(pv, rel=TOLERANCE), f"val loss at epoch {e}"
    assert page[-1][1] < 0.95 * page[0][1]  # it learned: the comparison is not of flat lines


BODIES = [
    {},  # the page's defaults: moons, 2 x relu, SGD
    {
        "dataset": "spirals", "noise": 0.1, "layers": ["leaky_relu:negative_slope=0.2", "tanh",
        "prelu"], "optimizer": "adam", "lr": 0.01, "batch_size": 32, "seed": 3, "width": 12,
    },
    {"dataset": "xor", "layers": ["selu", "gelu", "hard_swish"], "seed": 5, "lr": 0.1},
    {"dataset": "circles", "layers": ["softplus:beta=2", "rational"], "batch_size": 64},
    {  # issue 23 item 5: three classes (softmax cross-entropy), a step schedule, weight decay,
        # dropout (seeded masks) and LeCun initialisation
        "dataset": "spirals3", "layers": ["relu", "tanh"], "width": 12, "optimizer": "adam",
        "lr": 0.03, "schedule": "step", "schedule_epochs": 2, "schedule_gamma": 0.3,
        "weight_decay": 0.01, "dropout": 0.2, "init": "lecun",
    },
    {"dataset": "digits", "layers": ["elu"], "width": 16, "batch_size": 64, "init": "torch",
     "schedule": "cosine", "schedule_epochs": 6, "lr": 0.1},  # 64 features, 10 classes
    {"layers": ["relu", "leaky_relu:negative_slope=0.1"], "bias": -0.5},  # twins' starting bias
]  # fmt: skip


@pytest.mark.parametrize(
    "body", BODIES,
    ids=["defaults", "spirals-adam", "xor", "circles", "spirals3-step-wd-dropout", "digits-cosine",
         "bias"],
)  # fmt: skip
def test_the_exported_script_reproduces_the_sessions_losses(client, tmp_path, body):
    r = client.post("/api/export", json=body)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert "nn.Sequential(" in text
    compile(text, "exported.py", "exec")
    assert_same_curve(script_losses(text, tmp_path), session_losses(body))


def test_pytorch_modules_are_written_as_pytorch(client):
    body = {"layers": ["leaky_relu:negative_slope=0.2", "elu"]}
    text = client.post("/api/export", json=body).text
    assert "nn.LeakyReLU(negative_slope=0.2)" in text and "nn.ELU(alpha=1.0)" in text
    assert not re.search(r"^\s*(from|import) actlab", text, re.M)  # PyTorch + sklearn only


def test_a_start_up_activation_is_named_by_its_path_not_read(client, place, tmp_path):
    body = {"layers": ["snake:a=2", "relu"], "seed": 1}
    text = client.post("/api/export", json=body).text
    assert f"from {place / 'my_acts.py'}" in text  # the path the person gave, in a comment
    assert "from my_acts import snake" in text and "x + sin" not in text  # its source not copied
    from actlab.explore import load_activations

    acts = load_activations(f"{place / 'my_acts.py'}:snake")
    assert_same_curve(script_losses(text, tmp_path, extra_path=place), session_losses(body, acts))


def test_the_actlab_command_names_the_playgrounds_settings(client, place):
    body = {"dataset": "spirals", "noise": 0.1, "layers": ["tanh", "snake:a=2", "tanh"],
            "width": 16, "lr": 0.1, "optimizer": "adam", "batch_size": 32}  # fmt: skip
    r = client.post("/api/export?format=command", json=body)
    assert r.status_code == 200 and r.text.endswith("\n") and r.text.count("\n") == 1
    args = shlex.split(r.text)
    assert args[:2] == ["actlab", "compare"]

    def value(flag):
        i = args.index(flag)
        return args[i + 1]

    assert value("--dataset") == "spirals" and value("--noise") == "0.1"
    assert value("--depth") == "3" and value("--width") == "16" and value("--lr") == "0.1"
    assert value("--optimizer") == "adam" and value("--batch-size") == "32"
    i = args.index("--activations")
    assert args[i + 1 : i + 3] == ["tanh", f"{place / 'my_acts.py'}:snake:a=2"]
    from actlab.cli import build_parser

    parsed = build_parser().parse_args(args[1:])  # the CLI accepts it as written
    assert parsed.dataset == "spirals"


@pytest.mark.parametrize(
    ("url", "body", "words"),
    [
        ("/api/export?format=pdf", {}, "format must be one of python, command"),
        ("/api/export", {"layers": ["rleu"]}, "rleu"),
        ("/api/export", {"layers": []}, "layers must be a list"),
        ("/api/export", {"epochs": 5}, "unknown setting"),
        ("/api/export", {"width": 10**6}, "width"),
    ],
)
def test_bad_exports_are_one_line_400s(client, url, body, words):
    r = client.post(url, json=body)
    assert r.status_code == 400 and set(r.json()) == {"error"}
    assert words in r.json()["error"] and "\n" not in r.json()["error"]
