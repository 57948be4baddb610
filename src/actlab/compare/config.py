"""The one declaration of ``actlab compare``'s settings.

Every setting is a field of a frozen dataclass (:class:`DataConfig`, :class:`ModelConfig`,
:class:`StudyConfig`, grouped in :class:`CompareConfig`) whose metadata (a :class:`Setting`: help,
kind, bounds, choices, whether a list of values is allowed, the CLI flag) is the single source for

* the argparse options of ``actlab compare`` (:func:`add_arguments`; nothing is declared by hand),
* validation and normalisation (each dataclass's ``__post_init__``; messages name the setting, what
  is allowed and a fix),
* what the store saves and compares on ``--resume`` (:meth:`CompareConfig.to_dict`,
  :func:`differences`, keys named by their flags),
* what the report prints, including the command that reproduces the run (:func:`command`).

The model is scikit-learn's ``_parameter_constraints``: constraints live next to the parameter, and
one generic validator reads them. Adding a setting means adding one field here (and using it).
"""

from __future__ import annotations

import argparse
import contextlib
import math
import numbers
from collections.abc import Callable, Iterable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any

from actlab.errors import ActlabError, read_number, suggest
from actlab.nets import COMPARE_INITS

__all__ = [
    "DEFAULT_ACTIVATIONS",
    "FACTORS",
    "INITS",
    "METRICS",
    "OPTIMIZERS",
    "CompareConfig",
    "ComputeConfig",
    "DataConfig",
    "ModelConfig",
    "Setting",
    "StudyConfig",
    "add_arguments",
    "check_metric",
    "command",
    "differences",
    "metric_key",
    "settings",
]

DEFAULT_ACTIVATIONS = ("sigmoid", "tanh", "relu", "leaky_relu", "elu", "silu", "gelu")
OPTIMIZERS = ("adam", "sgd")
INITS = COMPARE_INITS  # the one list (actlab.nets), with "auto" and "torch"


@dataclass(frozen=True)
class Setting:
    """Field metadata: everything the CLI, validation, store and report need to know."""

    help: str
    kind: str  # "int" | "float" | "choice" | "str" | "bool" | "specs" | "names" | "params"
    low: float | None = None
    high: float | None = None  # exclusive
    open_low: bool = False  # low itself is not allowed
    choices: tuple[str, ...] | None = None
    listable: bool = False  # one value or a list: a factor of the grid
    metavar: str | None = None
    flag: str | None = None  # default: --field-name
    cli: bool = True  # False: Python only (not an option of `actlab compare`)

    def bound(self) -> str:
        if self.low is None:
            return ""
        text = f"{'>' if self.open_low else '>='} {self.low:g}"
        return text + (f" and < {self.high:g}" if self.high is not None else "")


def setting(default: Any = None, **meta: Any) -> Any:
    """A dataclass field carrying a :class:`Setting`."""
    return field(default=default, metadata={"setting": Setting(**meta)})


def _flag(name: str, s: Setting) -> str:
    return s.flag or "--" + name.replace("_", "-")


# ------------------------------------------------------------------------------------------
# checks (one per kind); `name` is the Python name, as in "lr must be a finite number > 0"


def _whole(name: str, value: Any, s: Setting) -> int:
    if isinstance(value, str):  # the one number grammar (errors.read_number): '1_0' is not 10
        with contextlib.suppress(ValueError):
            value = read_number(value, integer=True)
    low = int(s.low or 0)
    high = None if s.high is None else int(s.high)
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Integral)
        or value < low
        or (high is not None and value >= high)
    ):
        top = f" and < {high}" if high is not None else ""
        raise ActlabError(f"{name} must be a whole number >= {low}{top}, got {value!r}")
    return int(value)


def _number(name: str, value: Any, s: Setting) -> float:
    try:
        if isinstance(value, bool) or not isinstance(value, (str, numbers.Real)):
            raise ValueError  # True is not 1.0; [1e-3] inside a list is not a number
        x = read_number(value, special=True) if isinstance(value, str) else float(value)
    except (TypeError, ValueError):
        raise ActlabError(f"{name} must be a number, got {value!r}") from None
    low = -math.inf if s.low is None else s.low
    high = math.inf if s.high is None else s.high
    if not (math.isfinite(x) and (x > low if s.open_low else x >= low) and x < high):
        raise ActlabError(f"{name} must be a finite number {s.bound()}, got {value}")
    return x


def _choice(name: str, value: Any, s: Setting) -> str:
    v = str(value).strip().lower()
    assert s.choices is not None
    if v not in s.choices:
        raise ActlabError(
            f"{name} must be one of {', '.join(s.choices)}, got {value!r}" + suggest(v, s.choices)
        )
    return v


_SCALAR: dict[str, Callable[[str, Any, Setting], Any]] = {
    "int": _whole,
    "float": _number,
    "choice": _choice,
    "str": lambda name, value, s: str(value),
    "bool": lambda name, value, s: bool(value),
}


def _items(value: Any, name: str = "value") -> list[Any]:
    """One value, a flat list/tuple, or a comma-separated string -> a list of values.

    A list inside the list (``lr=[[1e-3]]``) or bytes are refused, not flattened or dropped."""
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, (bytes, bytearray, Mapping)):
        raise ActlabError(f"{name} takes one value or a list of values, got {value!r}")
    if not isinstance(value, Iterable):
        return [value]
    out: list[Any] = []
    for item in value:
        if isinstance(item, str):
            out += _items(item, name)
        elif isinstance(item, (Iterable, bytes)):
            raise ActlabError(
                f"{name} takes one value or a flat list of values, got {value!r}; e.g. "
                f"{name}=[1, 2]"
            )
        else:
            out.append(item)
    return out


def _check(name: str, value: Any, s: Setting) -> Any:
    """Validate and normalise one setting's value (``None`` stays ``None`` = not set)."""
    if value is None:
        return None
    check = _SCALAR.get(s.kind)
    if s.listable:
        values = _items(value, name)
        if not values:
            raise ActlabError(f"{name} needs at least one value, got {value!r}")
        out = tuple(check(name, v, s) for v in values)  # type: ignore[misc]
        twice = sorted({v for v in out if out.count(v) > 1})
        if twice:
            raise ActlabError(
                f"{name}: {', '.join(map(str, twice))} listed twice; give each value once"
            )
        return out
    if s.kind == "names":
        return tuple(str(v) for v in _items(value, name))
    if s.kind == "specs":
        return value
    if s.kind == "params":
        return _user_params(name, value)
    assert check is not None
    return check(name, value, s)


def _param_value(text: Any) -> Any:
    """One value of a user factor: a whole number, a number, or the text itself."""
    if not isinstance(text, str):
        return text
    for kind in (int, float):
        try:
            value = kind(text)
        except ValueError:
            continue
        return value if kind is int or math.isfinite(value) else text
    return text


def _user_params(name: str, value: Any) -> tuple[tuple[str, tuple[Any, ...]], ...]:
    """``["scheduler=cosine,step"]``, ``{"scheduler": ["cosine", "step"]}`` or the stored pairs
    -> ``(("scheduler", ("cosine", "step")),)``: each name once, a valid identifier, not a
    built-in factor, with at least one value, each value once."""
    pairs: list[tuple[str, Any]] = []
    if isinstance(value, Mapping):
        pairs = list(value.items())
    else:
        for item in [value] if isinstance(value, str) else value:
            if isinstance(item, str):
                key, eq, rest = item.partition("=")
                if not eq:
                    raise ActlabError(
                        f"{name}: expected NAME=V1[,V2...] (e.g. scheduler=cosine,step), "
                        f"got {item!r}"
                    )
                pairs.append((key, rest))
            else:
                key, rest = item
                pairs.append((key, rest))
    out: list[tuple[str, tuple[Any, ...]]] = []
    for key, raw in pairs:
        key = str(key).strip()
        if not key.isidentifier() or key in FACTORS or key in ("seed", "activation"):
            raise ActlabError(
                f"{name}: {key!r} cannot name a factor of your own: use a Python identifier "
                f"other than {', '.join(FACTORS)}, seed and activation"
            )
        if key in dict(out):
            raise ActlabError(f"{name}: '{key}' given twice; give all its values at once")
        values = tuple(_param_value(v) for v in _items(raw))
        if not values:
            raise ActlabError(f"{name}: '{key}' needs at least one value, e.g. {key}=a,b")
        twice = sorted({str(v) for v in values if values.count(v) > 1})
        if twice:
            raise ActlabError(f"{name}: '{key}' lists {', '.join(twice)} twice; give each once")
        out.append((key, values))
    return tuple(out)


def _objective_ref(ref: str) -> str:
    """``FILE.py:FUNCTION`` with the file made absolute (a resume from elsewhere finds it)."""
    where, _, func = ref.rpartition(":")
    if not where or not func.isidentifier():
        raise ActlabError(
            f"objective must look like path/to/train.py:function or module:function, got {ref!r}"
        )
    if where.endswith(".py"):
        where = str(Path(where).expanduser().resolve())
    return f"{where}:{func}"


def _validate_fields(obj: Any) -> None:
    for f in fields(obj):
        s = f.metadata.get("setting")
        if s is not None:
            object.__setattr__(obj, f.name, _check(f.name, getattr(obj, f.name), s))


# ------------------------------------------------------------------------------------------
# the declaration


@dataclass(frozen=True)
class DataConfig:
    """Where the rows come from and how they are split into train / validation / test."""

    dataset: str | None = setting(
        "digits", kind="str", metavar="NAME",
        help="built-in dataset: digits (default), iris, wine, breast_cancer, diabetes, moons, "
        "circles, spirals, xor",
    )  # fmt: skip
    csv: str | None = setting(None, kind="str", metavar="PATH",
                              help="a CSV file with a header row (use --target)")  # fmt: skip
    data: str | None = setting(
        None, kind="str", metavar="FILE",
        help="your data file: .csv, .parquet, .feather/.arrow (with --target COLUMN), .npz (arrays "
        "X and y) or X.npy,y.npy; arrays keep their shape for --model / --objective networks",
    )  # fmt: skip
    target: str | None = setting(None, kind="str", metavar="COLUMN",
                                 help="the CSV column to predict")  # fmt: skip
    task: str | None = setting(None, kind="choice", choices=("classification", "regression"),
                               help="override the inferred task")  # fmt: skip
    drop_missing: bool = setting(
        False, kind="bool",
        help="leave out the CSV rows with a missing value (they are counted in the report)",
    )  # fmt: skip
    drop_columns: tuple[str, ...] | None = setting(
        None, kind="names", metavar="COLUMN[,COLUMN...]",
        help="leave these CSV columns out (an identifier, a constant, a leak of the target)",
    )  # fmt: skip
    noise: float | None = setting(
        None, kind="float", low=0.0, metavar="X",
        help="noise level of the synthetic datasets (moons, circles, spirals, xor)",
    )  # fmt: skip
    val_fraction: float = setting(
        0.2, kind="float", low=0.0, high=1.0, open_low=True, metavar="F",
        help="share of rows held out for validation (selection), 0 < F < 1 (default 0.2)",
    )  # fmt: skip
    test_fraction: float = setting(
        0.2, kind="float", low=0.0, high=1.0, metavar="F",
        help="share of rows held out for the final test, scored once per model, 0 <= F < 1 "
        "(default 0.2; 0: report validation scores, which selection has seen)",
    )  # fmt: skip
    split_seed: int = setting(0, kind="int", low=0, high=2**32, metavar="N",
                              help="seed of the split (default 0)")  # fmt: skip
    resample_split: bool = setting(
        False, kind="bool",
        help="give every seed its own split (seed N uses split seed + N), shared by all "
        "activations at that seed: the split becomes a source of variance",
    )  # fmt: skip

    def __post_init__(self) -> None:
        _validate_fields(self)
        from actlab import data

        setattr_ = object.__setattr__
        if self.data is not None:  # (dataforms: a file, or "python:..." for data given in Python)
            if self.csv is not None:
                raise ActlabError("give the data once: --data FILE or --csv FILE, not both")
            setattr_(self, "dataset", None)
            if self.noise is not None:
                raise ActlabError("noise applies only to the synthetic datasets, not to --data")
            text = str(self.data)
            if not text.startswith("python:"):
                parts = [str(Path(p.strip()).expanduser().resolve()) for p in text.split(",")]
                setattr_(self, "data", ",".join(parts))
        elif self.csv is not None:
            setattr_(self, "dataset", None)
            if not self.target:
                raise ActlabError("a CSV file needs a target column: add --target COLUMN")
            setattr_(self, "csv", str(Path(self.csv).expanduser().resolve()))
            if self.noise is not None:
                raise ActlabError("noise applies only to the synthetic datasets, not to a CSV file")
        else:
            if self.target is not None:
                raise ActlabError(
                    "--target goes with --csv PATH (built-in datasets have their target)"
                )
            if self.drop_missing:
                raise ActlabError(
                    "--drop-missing applies to --csv data (built-in datasets have no gaps)"
                )
            if self.drop_columns:
                raise ActlabError(
                    "--drop-columns applies to --csv data (built-in datasets have fixed columns)"
                )
            name = data._canonical_name(self.dataset or "digits")
            if name not in data.DATASETS:
                data.load(name)  # raises the "unknown dataset ... did you mean" error
            setattr_(self, "dataset", name)
            if self.noise is not None:
                setattr_(self, "noise", data._check_noise(self.noise, name))
        if self.val_fraction + self.test_fraction >= 1.0:
            raise ActlabError(
                f"val_fraction {self.val_fraction:g} + test_fraction {self.test_fraction:g} leave "
                "no training rows; lower one of them (e.g. 0.2 each)"
            )

    def split_seed_for(self, seed: int) -> int:
        """The split seed the models of ``seed`` use."""
        return self.split_seed + seed if self.resample_split else self.split_seed


FACTORS = ("depth", "width", "batch_size", "lr", "weight_decay")  # listable: the grid's axes

# --metric: name -> (task, higher is better); stored records name f1_macro "macro_f1"
METRICS = {
    "accuracy": ("classification", True), "balanced_accuracy": ("classification", True),
    "f1_macro": ("classification", True), "log_loss": ("classification", False),
    "roc_auc": ("classification", True), "rmse": ("regression", False),
    "mae": ("regression", False), "r2": ("regression", True),
}  # fmt: skip
DEFAULT_METRIC = {"classification": "accuracy", "regression": "rmse"}


def metric_key(metric: str) -> str:
    """The name a metric has in the stored records (after the ``val_`` / ``test_`` prefix)."""
    return "macro_f1" if metric == "f1_macro" else metric


def check_metric(metric: str | None, task: str, n_classes: int = 0) -> str:
    """The run's metric for ``task`` (None: accuracy / rmse); refuses one of the other task, and
    roc_auc with more than two classes, naming the metrics that apply."""
    name = metric or DEFAULT_METRIC[task]
    allowed = [m for m, (t, _) in METRICS.items() if t == task]
    if task == "classification" and n_classes > 2:
        allowed.remove("roc_auc")
    if name not in allowed:
        why = (
            "roc_auc is defined here for two classes only"
            if name == "roc_auc" and task == "classification"
            else f"{name} is a {METRICS[name][0]} metric and this is a {task} task"
        )
        raise ActlabError(f"--metric {name} does not apply: {why}; use one of {', '.join(allowed)}")
    return name


@dataclass(frozen=True)
class ModelConfig:
    """The network and its training; the listable settings are the factors of the grid."""

    depth: tuple[int, ...] = setting(
        (2,), kind="int", low=1, listable=True, metavar="N[,N...]",
        help="hidden layers, one value or a list (default 2); a studied factor",
    )  # fmt: skip
    width: tuple[int, ...] = setting((128,), kind="int", low=1, listable=True,
                                     metavar="N[,N...]", help="units per layer (128)")  # fmt: skip
    epochs: int = setting(
        30, kind="int", low=1, metavar="N",
        help="the most epochs a model trains (30); each model is scored at its best validation "
        "epoch",
    )  # fmt: skip
    patience: int | None = setting(
        None, kind="int", low=1, metavar="N",
        help="stop a model after N epochs without a better validation score (default: none, "
        "train every epoch; the best epoch is used either way)",
    )  # fmt: skip
    batch_size: tuple[int, ...] = setting((64,), kind="int", low=1, listable=True,
                                          metavar="N[,N...]", help="batch size (64)")  # fmt: skip
    lr: tuple[float, ...] = setting(
        (1e-3,), kind="float", low=0.0, open_low=True, listable=True, metavar="X[,X...]",
        help="learning rate, one value or a list (1e-3); a list is tuned per activation",
    )  # fmt: skip
    optimizer: str = setting("adam", kind="choice", choices=OPTIMIZERS,
                             help="optimizer (adam)")  # fmt: skip
    weight_decay: tuple[float, ...] = setting(
        (0.0,), kind="float", low=0.0, listable=True, metavar="X[,X...]", help="weight decay (0)"
    )
    init: str = setting(
        "auto", kind="choice", choices=INITS,
        help="weight init; auto = He for ReLU-like, Glorot for sigmoid/tanh, LeCun for SELU",
    )  # fmt: skip
    model: str | None = setting(
        None, kind="str", metavar="MODULE:FUNCTION",
        help="your own network: FUNCTION(activation_spec) -> torch.nn.Module",
    )  # fmt: skip
    objective: str | None = setting(
        None, kind="str", metavar="FILE.py:FUNCTION",
        help="your own training function: FUNCTION(trial) -> dict of test metrics, called once "
        "per activation x factor values x seed (see actlab.compare.objective)",
    )  # fmt: skip
    param: tuple[tuple[str, tuple[Any, ...]], ...] | None = setting(
        None, kind="params", metavar="NAME=V1[,V2...]",
        help="a factor of your own for --objective (repeatable), e.g. --param "
        "scheduler=cosine,step; read as trial.params['scheduler']",
    )  # fmt: skip

    def __post_init__(self) -> None:
        _validate_fields(self)
        if self.model is not None:
            module, _, func = str(self.model).partition(":")
            if not module or not func or ":" in func:
                raise ActlabError(
                    f"model must look like 'module:function' (e.g. 'mynets:build'), got "
                    f"{self.model!r}"
                )
            object.__setattr__(self, "model", f"{module.strip()}:{func.strip()}")
        if self.objective is not None:
            if self.model is not None:
                raise ActlabError(
                    "--objective and --model exclude each other: your training function builds "
                    "its own network (trial.activation() gives the activation module)"
                )
            object.__setattr__(self, "objective", _objective_ref(str(self.objective)))
        elif self.param:
            raise ActlabError(
                "--param declares a factor of your own training function: add --objective "
                "FILE.py:FUNCTION (the built-in trainer reads only the built-in factors)"
            )

    def __getattr__(self, name: str) -> Any:
        """A factor of the user's own (``--param``) reads like a built-in one: its values."""
        if not name.startswith("_"):
            for key, values in self.__dict__.get("param") or ():
                if key == name:
                    return values
        raise AttributeError(name)

    @property
    def factors(self) -> tuple[str, ...]:
        """Every factor of the grid: the built-in ones, then the user's own (``--param``)."""
        return FACTORS + tuple(key for key, _ in self.param or ())

    def cells(self) -> list[dict[str, Any]]:
        """Every combination of factor values, in declaration order (the grid, without seeds)."""
        import itertools

        names = self.factors
        axes = [getattr(self, f) for f in names]
        return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*axes)]


@dataclass(frozen=True)
class StudyConfig:
    """What is compared, over how many seeds, and which factors are tuned per activation."""

    activations: tuple[str, ...] = setting(
        DEFAULT_ACTIVATIONS, kind="specs", metavar="SPEC",
        help="activations, space- or comma-separated (default: sigmoid tanh relu leaky_relu elu "
        "silu gelu); parameters as in leaky_relu:alpha=0.1",
    )  # fmt: skip
    seeds: int = setting(5, kind="int", low=1, high=2**32, metavar="N",
                         help="seeds per activation (5)")  # fmt: skip
    metric: str | None = setting(
        None, kind="choice", choices=tuple(METRICS),
        help="what tuning, the best epoch, the ranking and the tests use: accuracy (default), "
        "balanced_accuracy, f1_macro, log_loss, roc_auc (two classes); regression: rmse "
        "(default), mae, r2",
    )  # fmt: skip
    margin: float | None = setting(
        None, kind="float", low=0.0, open_low=True, metavar="X",
        help="the smallest difference that matters, in the metric's units (default per metric: "
        "0.01 for accuracy-like scores, 0.02 for log_loss, 2%% of the target's sd for rmse/mae, "
        "0.01 for r2); a confidence interval inside +/-X is 'practically equivalent'",
    )  # fmt: skip
    tune: tuple[str, ...] | None = setting(
        None, kind="names", metavar="FACTOR[,FACTOR...]",
        help="factors chosen per activation on validation data (default: every listed factor "
        "with several values except depth, which is studied); 'none' tunes nothing",
    )  # fmt: skip

    def __post_init__(self) -> None:
        _validate_fields(self)
        from actlab import catalog

        acts = self.activations
        if isinstance(acts, str):
            acts = [acts]
        if not isinstance(acts, (list, tuple)) or not all(
            isinstance(a, str) or type(a).__name__ in ("Activation", "ActivationSpec") for a in acts
        ):
            raise ActlabError(
                f"activations must be spec strings, e.g. ['relu', 'elu:alpha=0.5'], got {acts!r}"
            )
        object.__setattr__(
            self, "activations", tuple(str(a) for a in catalog.parse_many([str(a) for a in acts]))
        )
        if self.tune is not None:
            names = tuple(n.strip().lower().replace("-", "_") for n in self.tune)
            names = () if names == ("none",) else names
            object.__setattr__(self, "tune", names)  # (checked against the factors: CompareConfig)


SECTIONS = {"data": DataConfig, "study": StudyConfig, "model": ModelConfig}


@dataclass(frozen=True)
class ComputeConfig:
    """Where the models train. Not part of the stored configuration: a run may be resumed on
    another device or backend (the report says so), so these settings are neither saved nor
    compared on ``--resume``."""

    device: str = setting(
        "auto", kind="str", metavar="DEVICE",
        help="auto (CUDA, then MPS, then the CPU; default), cpu, cuda, cuda:N or mps",
    )  # fmt: skip
    backend: str = setting(
        "local", kind="choice", choices=("local", "ray"),
        help="local: this process (default); ray: each group of models as a Ray task "
        '(pip install "actlab[ray]")',
    )  # fmt: skip
    ray_address: str | None = setting(
        None, kind="str", metavar="ADDRESS",
        help="the Ray cluster to use ('ray start --head' prints it); default: the Ray instance "
        "running on this machine, or a new one",
    )  # fmt: skip

    max_models: int | None = setting(
        None, kind="int", low=1, metavar="N",
        help="refuse a run of more models than this (default 20000), before anything is made",
    )  # fmt: skip
    max_memory: float | None = setting(
        None, kind="float", low=0.0, open_low=True, metavar="GB",
        help="refuse a grid whose largest group needs more memory than this many GB (default: "
        "the memory available now)",
    )  # fmt: skip
    track: tuple[str, ...] | None = setting(
        None, kind="names", metavar="TRACKER[,TRACKER...]",
        help="also log every model as it trains, and the summary, to mlflow, tensorboard and/or "
        "wandb (offline, in the run folder; pip install \"actlab[track]\")",
    )  # fmt: skip
    objective_timeout: float | None = setting(
        None, kind="float", low=0.0, open_low=True, metavar="SECONDS",
        help="the longest one call of your --objective may take (default: no limit)",
    )  # fmt: skip

    def __post_init__(self) -> None:
        _validate_fields(self)  # the device itself and the address: checked by the backend


COMPUTE = {"compute": ComputeConfig}  # options and checks like SECTIONS', never stored


@dataclass(frozen=True)
class CompareConfig:
    """A whole comparison; ``CompareConfig.from_settings(lr=[1e-3, 1e-2], depth=[2, 8])``."""

    data: DataConfig = field(default_factory=DataConfig)
    study: StudyConfig = field(default_factory=StudyConfig)
    model: ModelConfig = field(default_factory=ModelConfig)

    def __post_init__(self) -> None:
        last = self.data.split_seed_for(self.study.seeds - 1)
        if last >= 2**32:  # scikit-learn's random_state is a 32-bit seed
            raise ActlabError(
                f"split_seed {self.data.split_seed} + {self.study.seeds - 1} (resample_split: "
                f"seed N uses split seed + N) is {last}, past the largest split seed "
                f"{2**32 - 1}; lower --split-seed"
            )
        factors = self.model.factors  # the built-in ones and the user's own (--param)
        for n in self.study.tune or ():
            if n not in factors:
                raise ActlabError(
                    f"tune: '{n}' is not a factor; choose from {', '.join(factors)} (or "
                    f"'none'){suggest(n, factors)}"
                )

    @classmethod
    def from_settings(cls, given: Mapping[str, Any] | None = None, **kwargs: Any) -> CompareConfig:
        """Build from flat settings (``None`` = the default); unknown names are refused."""
        flat = {**(given or {}), **kwargs}
        known = {f.name: sec for sec, typ in SECTIONS.items() for f in fields(typ)}
        for key in flat:
            if key not in known:
                raise ActlabError(
                    f"unknown setting '{key}'{suggest(key, known)}; settings: {', '.join(known)}"
                )
        parts: dict[str, dict[str, Any]] = {sec: {} for sec in SECTIONS}
        for key, value in flat.items():
            if value is not None:
                parts[known[key]][key] = value
        return cls(**{sec: typ(**parts[sec]) for sec, typ in SECTIONS.items()})

    def flat(self) -> dict[str, Any]:
        return {f.name: getattr(getattr(self, sec), f.name)
                for sec, typ in SECTIONS.items() for f in fields(typ)}  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready nested dict (tuples as lists): what the store saves."""
        return {
            sec: {f.name: _jsonable(getattr(getattr(self, sec), f.name)) for f in fields(typ)}
            for sec, typ in SECTIONS.items()
        }

    @property
    def tuned(self) -> tuple[str, ...]:
        """Factors selected per activation on validation data."""
        names = self.model.factors
        if self.study.tune is not None:
            return tuple(f for f in names if f in self.study.tune)
        return tuple(f for f in names if f != "depth" and len(getattr(self.model, f)) > 1)

    @property
    def studied(self) -> tuple[str, ...]:
        """Factors with several values that are not tuned: reported value by value."""
        names = self.model.factors
        return tuple(f for f in names if len(getattr(self.model, f)) > 1 and f not in self.tuned)


def _jsonable(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def settings() -> dict[str, tuple[str, Any, Setting]]:
    """Flat name -> (section, default, Setting), in declaration order."""
    out = {}
    for sec, typ in SECTIONS.items():
        for f in fields(typ):
            default = f.default if f.default is not MISSING else None
            out[f.name] = (sec, default, f.metadata["setting"])
    return out


def flat_from_stored(stored: Mapping[str, Any]) -> dict[str, Any]:
    """Flat settings from a stored config: this version's (sections) or 0.1.0's (data/train)."""
    if "model" in stored and "study" in stored:
        return {k: v for sec in SECTIONS for k, v in stored[sec].items()}
    # actlab 0.1.0: {"data": {...}, "activations": [...], "seeds": N, "train": {...}}
    flat = {**stored.get("data", {}), **stored.get("train", {})}
    flat["activations"] = stored.get("activations")
    flat["seeds"] = stored.get("seeds")
    flat.setdefault("test_fraction", 0.0)  # 0.1.0 had no test part
    known = settings()
    return {k: v for k, v in flat.items() if k in known}


def differences(stored: CompareConfig, new: CompareConfig) -> list[str]:
    """``--flag: stored X, now Y`` for every setting that differs (names the CLI flags)."""
    import json

    a, b = stored.to_dict(), new.to_dict()
    out = []
    for name, (sec, _, s) in settings().items():
        va, vb = a[sec][name], b[sec][name]
        if va != vb:
            flag = _flag(name, s)
            out.append(f"{flag}: stored {json.dumps(_scalar(va))}, now {json.dumps(_scalar(vb))}")
    return out


def _scalar(v: Any) -> Any:
    return v[0] if isinstance(v, list) and len(v) == 1 else v


# ------------------------------------------------------------------------------------------ CLI


def _arg_type(s: Setting) -> Callable[[str], Any]:
    """argparse type for one setting: the same rule as validation, argparse's message style."""

    def parse_one(text: str) -> Any:
        if s.kind == "int":
            try:
                return _whole("", read_number(text, integer=True), s)
            except (ValueError, ActlabError):
                low = int(s.low or 0)
                top = f" and < {int(s.high)}" if s.high is not None else ""
                raise argparse.ArgumentTypeError(
                    f"expected a whole number >= {low}{top}, got {text!r}"
                ) from None
        if s.kind == "float":
            try:
                x = read_number(text, special=True)
            except ValueError:
                raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
            try:
                return _number("", x, s)
            except ActlabError:
                raise argparse.ArgumentTypeError(
                    f"expected a finite number {s.bound()}, got {text}"
                ) from None
        return text

    def parse(text: str) -> Any:
        if not s.listable:
            return parse_one(text)
        values = [v.strip() for v in text.split(",") if v.strip()]
        if not values:
            raise argparse.ArgumentTypeError(f"expected one value or a comma list, got {text!r}")
        return tuple(parse_one(v) for v in values)

    return parse


_GROUPS = {"data": "data", "model": "models and training", "study": "comparison",
           "compute": "where to train"}  # fmt: skip


def add_arguments(
    parser: argparse.ArgumentParser, sections: Mapping[str, type] | None = None
) -> None:
    """Add one option per declared setting of ``sections`` (default: the stored ``SECTIONS``;
    ``COMPUTE`` for where to train). Defaults are ``None``: unset = default or stored."""
    for sec, typ in (SECTIONS if sections is None else sections).items():
        group = parser.add_argument_group(_GROUPS[sec])
        exclusive = group.add_mutually_exclusive_group() if sec == "data" else None
        for f in fields(typ):
            s: Setting = f.metadata["setting"]
            if not s.cli:
                continue
            target = exclusive if f.name in ("dataset", "csv", "data") and exclusive else group
            kwargs: dict[str, Any] = {"dest": f.name, "help": s.help, "default": None}
            if s.kind == "bool":
                kwargs.update(action="store_true", default=None)
            elif s.kind == "choice":
                kwargs.update(choices=s.choices)
            elif s.kind == "specs":
                kwargs.update(nargs="+", metavar=s.metavar)
            elif s.kind == "params":
                kwargs.update(action="append", metavar=s.metavar)
            else:
                kwargs.update(type=_arg_type(s), metavar=s.metavar)
            target.add_argument(_flag(f.name, s), **kwargs)


def from_namespace(args: argparse.Namespace) -> dict[str, Any]:
    """The settings given on the command line (unset options are left out)."""
    return {name: v for name in settings() if (v := getattr(args, name, None)) is not None}


def compute_from_namespace(args: argparse.Namespace) -> ComputeConfig:
    """Where to train, from the command line (unset options take ComputeConfig's defaults)."""
    given = {f.name: getattr(args, f.name, None) for f in fields(ComputeConfig)}
    return ComputeConfig(**{k: v for k, v in given.items() if v is not None})


def command(config: CompareConfig, out: str | Path) -> str:
    """The ``actlab compare`` command line that reproduces ``config`` into ``out``."""
    import shlex

    parts = ["actlab", "compare"]
    flat = config.flat()
    for name, (_, _, s) in settings().items():
        value = flat[name]
        if value is None or not s.cli or (s.kind == "bool" and not value):
            continue
        flag = _flag(name, s)
        if s.kind == "bool":
            parts.append(flag)
        elif s.kind == "specs":
            parts += [flag, *value]
        elif s.kind == "names":
            parts += [flag, ",".join(value) or "none"]
        elif s.kind == "params":
            for key, values in value:
                parts += [flag, f"{key}={','.join(str(v) for v in values)}"]
        elif s.listable:
            parts += [flag, ",".join(_text(v) for v in value)]
        else:
            parts += [flag, _text(value)]
    parts += ["--out", str(out)]
    return " ".join(shlex.quote(p) for p in parts)


def _text(value: Any) -> str:
    return repr(value) if isinstance(value, float) else str(value)
