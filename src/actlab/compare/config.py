"""The one declaration of ``actlab compare``'s settings: dataclass fields carrying a ``Setting``,
whence its options, checks, stored configuration, ``--resume`` refusals and reproduce command."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any

from actlab import catalog, data
from actlab.errors import ActlabError, suggest
from actlab.settings import (
    BATCH_SIZE,
    DEPTH,
    EPOCHS,
    LR,
    WEIGHT_DECAY,
    WIDTH,
    Setting,
    check,
    items,
    setting,
    validate,
)
from actlab.settings import flag as _flag
from actlab.spec import COMPARE_INITS, OPTIMIZERS

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
INITS = COMPARE_INITS  # the one list (actlab.spec), with "auto" and "torch"


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
        values = tuple(_param_value(v) for v in items(raw))
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
        validate(self)
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


# the stored validation metrics that may pick a model's best epoch -> whether higher is better
SELECT = {f"val_{metric_key(m)}": up for m, (_, up) in METRICS.items()}


def primary_metric(task: str, part: str = "test", metric: str | None = None) -> tuple[str, bool]:
    """The metric the comparison ranks by (on ``part``) and whether higher is better: the run's
    ``--metric`` (None: accuracy for classification, rmse for regression)."""
    name = metric or DEFAULT_METRIC[task]
    return f"{part}_{metric_key(name)}", METRICS[name][1]


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
        (2,), DEPTH, listable=True, metavar="N[,N...]",
        help="hidden layers, one value or a list (default 2); a studied factor",
    )  # fmt: skip
    width: tuple[int, ...] = setting((128,), WIDTH, listable=True, metavar="N[,N...]",
                                     help="units per layer (128)")  # fmt: skip
    epochs: int = setting(
        30, EPOCHS,
        help="the most epochs a model trains (30); each model is scored at its best validation "
        "epoch",
    )  # fmt: skip
    patience: int | None = setting(
        None, kind="int", low=1, metavar="N",
        help="stop a model after N epochs without a better validation score (default: none, "
        "train every epoch; the best epoch is used either way)",
    )  # fmt: skip
    batch_size: tuple[int, ...] = setting((64,), BATCH_SIZE, listable=True, metavar="N[,N...]",
                                          help="batch size (64)")  # fmt: skip
    lr: tuple[float, ...] = setting(
        (1e-3,), LR, listable=True, metavar="X[,X...]",
        help="learning rate, one value or a list (1e-3); a list is tuned per activation",
    )  # fmt: skip
    optimizer: str = setting("adam", kind="choice", choices=OPTIMIZERS,
                             help="optimizer (adam)")  # fmt: skip
    weight_decay: tuple[float, ...] = setting(
        (0.0,), WEIGHT_DECAY, listable=True, metavar="X[,X...]", help="weight decay (0)",
    )  # fmt: skip
    init: str = setting(
        "auto", kind="choice", choices=INITS,
        help="weight init; auto = He for ReLU-like, Glorot for sigmoid/tanh, LeCun for SELU",
    )  # fmt: skip
    model: str | None = setting(
        None, kind="model", metavar="MODULE:FUNCTION",
        help="your own network: FUNCTION(activation_spec) -> torch.nn.Module",
    )  # fmt: skip
    objective: str | None = setting(
        None, kind="str", metavar="FILE.py:FUNCTION",
        help="your own training function: FUNCTION(trial) -> dict of test metrics, called once "
        "per activation x factor values x seed (see actlab.compare.objective)",
    )  # fmt: skip
    param: tuple[tuple[str, tuple[Any, ...]], ...] | None = setting(
        None, kind="params", metavar="NAME=V1[,V2...]", read=lambda n, v: _user_params(n, v),
        help="a factor of your own for --objective (repeatable), e.g. --param "
        "scheduler=cosine,step; read as trial.params['scheduler']",
    )  # fmt: skip

    def __post_init__(self) -> None:
        validate(self)
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
        validate(self)
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
        validate(self)  # the device itself and the address: checked by the backend


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


def cell(name: str) -> Any:
    """ModelConfig's setting ``name`` as a field of one value (a cell of the grid, as
    ``training.TrainConfig`` holds it): the same declaration and check, its first default."""
    f = next(f for f in fields(ModelConfig) if f.name == name)
    s: Setting = f.metadata["setting"]
    return setting(f.default[0] if s.listable else f.default, s, listable=False)


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


def _arg_type(name: str, s: Setting) -> Callable[[str], Any]:
    """argparse type for one setting: its one check (:func:`actlab.settings.check`), reworded
    in argparse's style ("expected a finite number > 0, got -1")."""

    def parse(text: str) -> Any:
        if s.kind not in ("int", "float"):
            return text
        try:
            return check(name, text, s)
        except ActlabError as err:
            raise argparse.ArgumentTypeError(
                "expected " + str(err).partition(" must be ")[2] if " must be " in str(err)
                else str(err)
            ) from None

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
                kwargs.update(type=_arg_type(f.name, s), metavar=s.metavar)
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
