"""A Playground as code: a self-contained PyTorch script, and the ``actlab compare`` command line.

:func:`script` writes what a :class:`~actlab.explore.session.Session` does, step for step: the
same data (the generator, noise and seed of :func:`actlab.data.load`, the stratified split and
standardisation of :func:`actlab.data.split`), the same ``nn.Sequential`` initialised by the same
scheme in the same order from the same seed (:func:`actlab.nets.mlp`), the same batch order,
optimiser, weight decay, dropout masks, learning-rate schedule and loss (softmax cross-entropy over
the data's classes). Weight decay and dropout are the page's current values, from the start. Run
for N epochs, its losses match the page's at epoch N (tests/test_explore_export.py measures how
closely). Nothing here runs code: the script is text built from a validated
:class:`~actlab.explore.session.PlaygroundConfig`.
"""

from __future__ import annotations

import math
import re
import shlex
from collections.abc import Mapping, Sequence
from typing import Any

from actlab import catalog, data
from actlab.data import SYNTHETIC
from actlab.explore.session import PlaygroundConfig
from actlab.nets import init_scheme

__all__ = ["command", "compare_settings", "script"]

# A PyTorch module's repr that is a plain constructor call (numbers, quoted words, booleans):
# the only text the check below evaluates, with nothing but ``nn`` in scope.
_CONSTRUCTOR = re.compile(
    r"[A-Z][A-Za-z0-9]*\((?:[a-z_]+=(?:-?[0-9.e+-]+|'[a-z_]+'|True|False|None)(?:, (?=[a-z]))?)*\)"
)

# the data generators of actlab.data._synthetic, as text (same arithmetic, same RNG calls)
_DATA = {
    "moons": "X, y = make_moons(n_samples=N_ROWS, noise=NOISE, random_state=SEED)",
    "circles": "X, y = make_circles(n_samples=N_ROWS, noise=NOISE, factor=0.5, random_state=SEED)",
    "spirals": """rng = np.random.default_rng(SEED)
half = N_ROWS // 2  # two arms of 1.75 turns, the second rotated by half a turn
t = np.sqrt(rng.uniform(0.02, 1.0, size=(2, half)))
angle = t * 1.75 * 2 * np.pi + np.array([[0.0], [np.pi]])
X = np.stack([t * np.cos(angle), t * np.sin(angle)], axis=-1).reshape(-1, 2)
X = X + rng.normal(scale=NOISE, size=X.shape) * 0.5
y = np.repeat([0, 1], half)""",
    "xor": """rng = np.random.default_rng(SEED)
X = rng.uniform(-1.0, 1.0, size=(N_ROWS, 2))
X = X + np.sign(X) * 0.05  # points kept a little off the axes
y = (X[:, 0] * X[:, 1] > 0).astype(np.int64)
X = X + rng.normal(scale=NOISE, size=X.shape)""",
    "spirals3": """rng = np.random.default_rng(SEED)
y = np.repeat([0, 1, 2], [N_ROWS - 2 * (N_ROWS // 3), N_ROWS // 3, N_ROWS // 3])
t = np.sqrt(rng.uniform(0.02, 1.0, size=N_ROWS))  # three arms of 1.5 turns, a third apart
angle = t * 1.5 * 2 * np.pi + y * (2 * np.pi / 3)
X = np.stack([t * np.cos(angle), t * np.sin(angle)], axis=-1)
X = X + rng.normal(scale=NOISE, size=X.shape) * 0.5""",
    "blobs": """rng = np.random.default_rng(SEED)
y = np.repeat(np.arange(4), N_ROWS // 4)  # four clouds centred on the unit circle
angle = np.pi / 4 + y * (np.pi / 2)
X = np.stack([np.cos(angle), np.sin(angle)], axis=-1)
X = X + rng.normal(scale=NOISE, size=X.shape)""",
    "digits": "X, y = load_digits(return_X_y=True)  # 8 x 8 images, 64 features, 10 classes",
}
_SKLEARN = {"moons": "make_moons", "circles": "make_circles", "digits": "load_digits"}

# the learning rate of epoch e (0: the first), as actlab.explore.session.lr_at computes it
_SCHEDULE = {
    "constant": "    return LR",
    "step": "    return LR * GAMMA ** (epoch // EPOCHS_PER)",
    "cosine": "    done = min(epoch, EPOCHS_PER) / EPOCHS_PER\n"
    "    return LR * 0.5 * (1.0 + math.cos(math.pi * done))",
}
_DROPOUT = '''

class Dropout(nn.Module):
    """Inverted dropout drawing its masks from one seeded generator, in order (as the page)."""

    def __init__(self, p, generator):
        super().__init__()
        self.p, self.generator = p, generator

    def forward(self, x):
        if not self.training or self.p == 0:
            return x
        return x * (torch.rand(x.shape, generator=self.generator) >= self.p) / (1.0 - self.p)
'''


def _module_code(
    spec: str, refs: Mapping[str, str], activations: Mapping[str, catalog.ActivationSpec]
) -> tuple[str, list[str]]:
    """(expression building the layer's module, import lines it needs)."""
    import torch
    from torch import nn

    from actlab.torch import build

    act = catalog.parse_registered(spec, None) if spec.split(":")[0] not in refs else None
    if act is None:  # a function the person loaded with --activations: named, never read here
        name = spec.split(":")[0]
        file, _, fn = refs[name].rpartition(":")
        params = catalog.parse_registered(spec, activations).params
        args = "".join(f", {k}={v!r}" for k, v in params.items())
        module = file[:-3].replace("/", ".").rsplit(".", 1)[-1] if file.endswith(".py") else file
        imports = [
            f"# {name}: your function {fn} from {file} (actlab explore --activations); make this",
            "# import work (put that file next to this script or on PYTHONPATH):",
            f"from {module} import {fn}",
        ]
        return f"Lambda(lambda x: {fn}(x{args}))", imports
    module = build(act)
    text = repr(module)
    if type(module).__module__.startswith("torch.nn") and _CONSTRUCTOR.fullmatch(text):
        try:  # PyTorch's own module, when its repr rebuilds it exactly
            again = eval(f"nn.{text}", {"nn": nn})
            x = torch.linspace(-6, 6, 97)
            if type(again) is type(module) and torch.equal(again(x), module(x)):
                return f"nn.{text}", []
        except Exception:  # any failure means: use actlab's builder instead
            pass
    return f"build({str(act)!r})", ["from actlab.torch import build  # pip install actlab"]


def _init_code(
    spec: str, index: int, fan_in: int, init: str,
    activations: Mapping[str, catalog.ActivationSpec], bias: float = 0.0,
) -> str:  # fmt: skip
    """The initialisation of Linear ``index`` (its hidden activation ``spec``, ``fan_in`` inputs)
    by the scheme ``init`` names, as in nets.mlp / nets.init_linear (hidden biases ``bias``)."""
    act = catalog.parse_registered(spec, activations)
    scheme = init_scheme(act, init)
    w, b = f"linears[{index}].weight", f"linears[{index}].bias"
    if scheme == "torch":  # PyTorch's own default, from the same generator
        bound = 1 / math.sqrt(fan_in)
        return (f"    init.kaiming_uniform_({w}, a=math.sqrt(5), generator=g)  # torch's default\n"
                f"    init.uniform_({b}, -{bound!r}, {bound!r}, generator=g)")  # fmt: skip
    if scheme == "he":
        gain = act.spec.kaiming(act.params) if act.spec.kaiming else ("relu", 0.0)
        call = f"init.kaiming_normal_({w}, a={gain[1]!r}, nonlinearity={gain[0]!r}, generator=g)"
    elif scheme == "glorot":
        call = f"init.xavier_uniform_({w}, generator=g)"
    else:  # lecun
        call = f"init.kaiming_normal_({w}, nonlinearity='linear', generator=g)"
    return f"    {call}  # {scheme} for {act.name}\n    {b}.fill_({bias!r})"


def script(
    config: PlaygroundConfig,
    activations: Mapping[str, catalog.ActivationSpec] | None = None,
    refs: Mapping[str, str] | None = None,
) -> str:
    """A Python script training ``config`` as the Playground does, printing each epoch's losses.

    ``activations``/``refs``: the explorer's start-up functions and their ``file.py:fn`` (only the
    path is written, in a comment and an import, never read)."""
    activations = activations or {}
    refs = refs or {}
    c = config
    layers, imports = [], []
    for spec in c.layers:
        code, extra = _module_code(spec, refs, activations)
        layers.append(code)
        imports += [line for line in extra if line not in imports]
    shape = data.load(c.dataset)  # only its numbers of features and classes (a few ms)
    n_in, n_out = shape.X.shape[1], len(shape.class_names)
    drop = ", Dropout(DROPOUT, drop)" if c.dropout > 0 else ""
    body = ",\n".join(
        f"    nn.Linear({n_in if i == 0 else c.width}, {c.width}), {code}{drop}"
        for i, code in enumerate(layers)
    )
    inits = "\n".join(
        _init_code(s, i, n_in if i == 0 else c.width, c.init, activations, c.bias)
        for i, s in enumerate(c.layers)
    )
    gen = _DATA[c.dataset]
    sk = f"from sklearn.datasets import {_SKLEARN[c.dataset]}\n" if c.dataset in _SKLEARN else ""
    noise = f"noise {c.noise}, " if c.dataset in data.SYNTHETIC else ""
    load_args = f'"{c.dataset}", noise=NOISE, seed=SEED' if noise else f'"{c.dataset}"'
    regular = (f"weight decay {c.weight_decay:g}, dropout {c.dropout:g}, "
               f"{c.schedule} schedule, init {c.init}")  # fmt: skip
    optimizer = "torch.optim.Adam" if c.optimizer == "adam" else "torch.optim.SGD"
    lambda_class = (
        '\n\nclass Lambda(nn.Module):\n    """A function as a layer."""\n\n'
        "    def __init__(self, fn):\n        super().__init__()\n        self.fn = fn\n\n"
        "    def forward(self, x):\n        return self.fn(x)\n"
        if any(code.startswith("Lambda(") for code in layers)
        else ""
    )
    extra_imports = ("\n" + "\n".join(imports)) if imports else ""
    return f'''"""An actlab explore Playground as a plain PyTorch script (from actlab explore).

{c.dataset}, {noise}seed {c.seed}; {len(c.layers)} hidden layer(s) of {c.width}:
{", ".join(c.layers)}; {c.optimizer} lr {c.lr}, batch size {c.batch_size},
{regular}.
Its losses match the page's, epoch for epoch.
Run: python this_script.py --epochs 100
"""

import argparse
import math

import numpy as np
import torch
from sklearn.model_selection import train_test_split
from torch import nn
from torch.nn import functional as F
from torch.nn import init
{sk}{extra_imports}{lambda_class}{_DROPOUT if drop else ""}
SEED = {c.seed}
NOISE = {c.noise!r}
N_ROWS = {data.SYNTHETIC_ROWS}
LR, GAMMA, EPOCHS_PER = {c.lr!r}, {c.schedule_gamma!r}, {c.schedule_epochs}  # {c.schedule} schedule
WEIGHT_DECAY, DROPOUT = {c.weight_decay!r}, {c.dropout!r}

# ---- data: {c.dataset}, as actlab.data.load({load_args})
{gen}
X, y = np.asarray(X, dtype=np.float64), np.asarray(y, dtype=np.int64)
# 80/20 stratified split (split seed 0), standardised with the training part's statistics
idx_train, idx_val = train_test_split(
    np.arange(len(y)), test_size=int(np.ceil(0.2 * len(y))), random_state=0, shuffle=True,
    stratify=y,
)
mean, std = X[idx_train].mean(axis=0), X[idx_train].std(axis=0)
std[std == 0] = 1.0
X_train = torch.from_numpy(((X[idx_train] - mean) / std).astype(np.float32))
X_val = torch.from_numpy(((X[idx_val] - mean) / std).astype(np.float32))
y_train, y_val = torch.from_numpy(y[idx_train]), torch.from_numpy(y[idx_val])

# ---- the network: each hidden layer with its activation, then a linear output of {n_out} logits
# (softmax and cross-entropy, for two classes or more)
drop = torch.Generator().manual_seed(SEED + 2)  # dropout masks, in order, as the page's
net = nn.Sequential(
{body},
    nn.Linear({c.width}, {n_out}),
)
linears = [m for m in net if isinstance(m, nn.Linear)]
g = torch.Generator().manual_seed(SEED)  # one generator, layer by layer, as the page's
with torch.no_grad():
{inits}
    init.xavier_uniform_(linears[-1].weight, generator=g)  # glorot for the output layer
    linears[-1].bias.fill_(0.0)


def lr_at(epoch):
    """The learning rate of epoch `epoch` (0: the first)."""
{_SCHEDULE[c.schedule]}


# ---- training: {c.optimizer}, cross-entropy, batches of {c.batch_size} in a seeded order
optimizer = {optimizer}(net.parameters(), lr=lr_at(0), weight_decay=WEIGHT_DECAY)
order = torch.Generator().manual_seed(SEED + 1)


def losses():
    """Cross-entropy on the training and validation rows."""
    net.eval()
    with torch.no_grad():
        train = F.cross_entropy(net(X_train), y_train).item()
        return train, F.cross_entropy(net(X_val), y_val).item()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=100)
    epochs = parser.parse_args().epochs
    print("epoch 0 train_loss %.6g val_loss %.6g" % losses())
    for epoch in range(1, epochs + 1):
        net.train()
        for group in optimizer.param_groups:
            group["lr"] = lr_at(epoch - 1)
        perm = torch.randperm(len(X_train), generator=order)
        for start in range(0, len(X_train), {c.batch_size}):
            idx = perm[start : start + {c.batch_size}]
            optimizer.zero_grad(set_to_none=True)
            loss = F.cross_entropy(net(X_train[idx]), y_train[idx])
            loss.backward()
            optimizer.step()
            if not torch.isfinite(loss):
                raise SystemExit(f"diverged at epoch {{epoch}}: lower the learning rate")
        print("epoch %d train_loss %.6g val_loss %.6g" % (epoch, *losses()))


if __name__ == "__main__":
    main()
'''


def compare_settings(
    config: PlaygroundConfig,
    refs: Mapping[str, str] | None = None,
    activations: Sequence[str] | None = None,
    seeds: int = 5,
    epochs: int = 100,
) -> dict[str, Any]:
    """The settings of :func:`actlab.compare.run` for the Playground's data and network: the
    ``activations`` (canonical specs; default: every distinct activation of its layers) compared,
    each in every hidden layer, over ``seeds``. A start-up function appears as the reference the
    person gave (``file.py:fn``), never read here. compare has no dropout or learning-rate
    schedule: those stay on the page. :func:`command` writes the same settings as a
    command line, and ``POST /api/compare`` runs them (:mod:`actlab.explore.studies`)."""
    refs = refs or {}
    c = config
    acts: list[str] = []
    for spec in activations if activations is not None else c.layers:
        name, _, rest = spec.partition(":")
        text = f"{refs[name]}:{rest}" if name in refs and rest else refs.get(name, spec)
        if text not in acts:
            acts.append(text)
    return {
        "dataset": c.dataset,
        "noise": c.noise if c.dataset in SYNTHETIC else None,  # digits has none
        "activations": acts,
        "depth": len(c.layers),
        "width": c.width,
        "optimizer": c.optimizer,
        "lr": c.lr,
        "batch_size": c.batch_size,
        "seeds": seeds,
        "epochs": epochs,
        "weight_decay": c.weight_decay,
        "init": c.init,
    }


def command(
    config: PlaygroundConfig,
    refs: Mapping[str, str] | None = None,
    activations: Sequence[str] | None = None,
    seeds: int = 5,
    epochs: int = 100,
) -> str:
    """The ``actlab compare`` line of :func:`compare_settings`: by default every distinct
    activation of the Playground's layers compared, each in every hidden layer, over 5 seeds."""
    s = compare_settings(config, refs, activations, seeds, epochs)
    args = [
        "actlab", "compare", "--dataset", s["dataset"],
        *(["--noise", f"{s['noise']:g}"] if s["noise"] is not None else []),
        "--activations", *s["activations"], "--depth", str(s["depth"]), "--width",
        str(s["width"]), "--optimizer", s["optimizer"], "--lr", f"{s['lr']:g}", "--batch-size",
        str(s["batch_size"]), "--weight-decay", f"{s['weight_decay']:g}", "--seeds",
        str(s["seeds"]), "--epochs", str(s["epochs"]), "--init", s["init"],
    ]  # fmt: skip
    line = shlex.join(args)
    if config.bias:  # compare starts hidden biases at 0; say so rather than differ silently
        line += f"  # the page's starting hidden bias {config.bias:g} is not a compare setting"
    return line
