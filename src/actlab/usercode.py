"""The user's own code: ``--model module:function`` networks, and user activations.

A user activation is a function ``f(x, **params)`` of a torch tensor, brought in by
``actlab.register`` or named in a spec as ``path/to/file.py:function[:k=v]`` or
``module:function[:k=v]``. :func:`define_activation` checks it on a grid (signature, shape,
finite values, elementwise) and turns it into an :class:`ActivationSpec` like a built-in's: NumPy
forward through the function (or the user's NumPy one), derivative by autograd (or the user's),
a PyTorch module (``actlab.torch.UserActivation``) and no fast path in the compare engine.
torch is imported only when a user activation is used.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.util
import inspect
import os
import re
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import numpy as np

from actlab.errors import ActlabError, read_number, suggest
from actlab.spec import INF, ActivationSpec, Param, Properties, TorchModule


def load_function(
    ref: str,
    option: str = "--model",
    signature: str = "function(activation_spec: str) -> torch.nn.Module",
    example: str = "",
) -> Callable[..., Any]:
    """Import ``module:function`` or ``path/to/file.py:function`` and return the function.

    A module name is looked up on ``sys.path`` and then in the current folder (the console script's
    ``sys.path`` lacks it, but users expect ``--model nets:make`` to find ``./nets.py``). Any
    failure, including an exception raised while the module runs, becomes an ActlabError naming
    ``option``.
    """
    where, _, name = ref.rpartition(":") if isinstance(ref, str) else ("", "", "")
    if not where or not name:
        raise ActlabError(
            f"{option} must look like module:function or path/to/file.py:function, got {ref!r}"
        )
    try:
        with guarded(f"{option}: importing '{where}'", "while it was imported"):
            module = _import(where, option)
    except ActlabError:
        raise
    except Exception as err:
        raise ActlabError(
            f"{option}: cannot import '{where}' ({type(err).__name__}: {err}); give a module on "
            f"PYTHONPATH or in the current folder, or a .py path, e.g. "
            + (example or f"{option} nets.py:make_net")
        ) from None
    fn = getattr(module, name, None)
    if not callable(fn):
        public = [n for n in dir(module) if not n.startswith("_")]
        raise ActlabError(
            f"{option}: '{where}' has no function '{name}'"
            + suggest(name, public)
            + f"; it must define {signature}"
        )
    return fn


# the user modules this process imported (``_import``): the CLI then exits the slow, ordinary way,
# so their open files are flushed and their threads joined (``actlab.cli._exit_without_teardown``)
imported: list[str] = []


def _import(where: str, option: str) -> Any:
    """The module ``where`` names: a .py path, or a module on sys.path or in the current folder."""
    imported.append(where)
    if where.endswith(".py") or os.sep in where:
        path = os.path.abspath(os.path.expanduser(where))
        if not os.path.isfile(path):
            raise ActlabError(f"{option}: the file '{where}' does not exist")
        loader = importlib.util.spec_from_file_location(
            f"actlab_user_{os.path.basename(path)[:-3]}", path
        )
        if loader is None or loader.loader is None:
            raise ActlabError(f"{option}: cannot load '{where}' as a Python module")
        module = importlib.util.module_from_spec(loader)
        loader.loader.exec_module(module)
    else:
        try:
            module = importlib.import_module(where)
        except ModuleNotFoundError as err:
            cwd = os.getcwd()
            if err.name != where.split(".")[0] or cwd in sys.path:
                raise
            sys.path.insert(0, cwd)
            try:
                module = importlib.import_module(where)
            finally:
                sys.path.remove(cwd)
    return module


# ---------------------------------------------------------------------------- running user code
# The user's code is run under `guarded`: a time limit, and sys.exit() or a changed torch default
# dtype turned into one ActlabError line naming it. The limit is SIGALRM (setitimer) in the main
# thread, not a child process: the function (a register()ed lambda, a module's closure) and what
# the probe measured must live in this process, a child would re-import torch (1-2 s per probe)
# and could not re-create a function given in Python. A real signal interrupts a Python loop
# (`while True: pass`) and blocking calls (sleep, read) alike; only a single C call that never
# returns escapes it, and Ctrl-C still ends the CLI then (cli.run exits without joining). Outside
# the main thread (a server's worker) or without SIGALRM (Windows) no limit is set here.

PROBE_TIMEOUT_S = 30.0  # seconds user code may take to import or to pass its checks
_TIMEOUT_ENV = "ACTLAB_PROBE_TIMEOUT"


class _TimeUp(BaseException):  # BaseException: the user's `except Exception` must not eat it
    pass


_active: list[bool] = []  # a limit is already running (nested guarded blocks share it)


def probe_timeout() -> float:
    """The time limit for user code's checks: ``ACTLAB_PROBE_TIMEOUT`` seconds, default 30."""
    text = os.environ.get(_TIMEOUT_ENV, "").strip()
    if not text:
        return PROBE_TIMEOUT_S
    try:
        value = float(read_number(text))
    except ValueError:
        value = -1.0
    if not 0 < value <= 86400:
        raise ActlabError(
            f"{_TIMEOUT_ENV} must be a number of seconds from 0 to 86400, got {text!r}"
        )
    return value


@contextlib.contextmanager
def _time_limit(seconds: float, where: str) -> Iterator[None]:
    usable = (
        hasattr(signal, "setitimer")
        and threading.current_thread() is threading.main_thread()
        and not _active
    )
    if not usable:
        yield
        return

    def alarm(signum: int, frame: Any) -> None:
        raise _TimeUp

    previous = signal.signal(signal.SIGALRM, alarm)
    _active.append(True)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    except _TimeUp:
        raise ActlabError(
            f"{where}: no answer within {seconds:g} s (an endless loop?); fix the function, or "
            f"give it more time with {_TIMEOUT_ENV}=SECONDS"
        ) from None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        _active.pop()


@contextlib.contextmanager
def guarded(where: str, when: str = "when called") -> Iterator[None]:
    """Run user code inside the block: under the probe time limit; ``sys.exit()`` and a change of
    torch's default dtype (global state every later tensor would inherit) become one line
    naming ``where``."""
    torch = sys.modules.get("torch")
    dtype = torch.get_default_dtype() if torch is not None else None
    try:
        with _time_limit(probe_timeout(), where):
            yield
    except SystemExit:
        raise ActlabError(
            f"{where}: it called sys.exit() {when}; a function for actlab must return a value "
            "(raise an exception to report a problem)"
        ) from None
    finally:
        torch = sys.modules.get("torch")
        now = torch.get_default_dtype() if torch is not None else None
        if now is not None and dtype is not None and now != dtype:
            torch.set_default_dtype(dtype)  # put it back before anything else runs
            changed = str(now).replace("torch.", "")
            raise ActlabError(
                f"{where}: it changed torch's default dtype to {changed} {when}; user code must "
                "not change global torch state: give tensors their dtype instead "
                "(torch.zeros(3, dtype=...), x.to(...))"
            )
        if now is not None and dtype is None and now != torch.float32:
            torch.set_default_dtype(torch.float32)
            raise ActlabError(
                f"{where}: it changed torch's default dtype to {str(now).replace('torch.', '')} "
                f"{when}; user code must not change global torch state"
            )


def _no_exit(fn: Callable[..., Any], where: str) -> Callable[..., Any]:
    """``fn`` with sys.exit() inside it (at any call, during training too) as one ActlabError."""

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except SystemExit:
            raise ActlabError(
                f"{where}: it called sys.exit(); a function for actlab must return a value"
            ) from None

    return call


# ---------------------------------------------------------------------------- user activations

_REFERENCE = re.compile(r"^(?:[^:]+\.py|[A-Za-z_][\w.]*):[A-Za-z_]\w*$")
_SIGNATURE = "function(x: torch.Tensor, **params) -> torch.Tensor"
# the probe grid: where a user activation is checked before anything uses it
_PROBE = (-6.0, 6.0, 97)


def is_reference(text: str) -> bool:
    """True for ``file.py:function`` and ``module:function`` (no parameters)."""
    text = text.strip()
    return bool(_REFERENCE.match(text)) and (text.split(":")[0].endswith(".py") or "/" not in text)


def may_exist(ref: str) -> bool:
    """False when ``ref``'s module is nowhere to be found (then it is likely a misspelt
    activation name, 'rleu:alpha', and the catalog says so); a .py path always may."""
    where = ref.strip().rpartition(":")[0]
    if where.endswith(".py") or os.sep in where:
        return True
    top = where.split(".")[0]
    try:
        found = importlib.util.find_spec(top) is not None
    except (ImportError, ValueError):
        found = False
    return found or os.path.exists(os.path.join(os.getcwd(), top + ".py")) or os.path.isdir(top)


def reference_key(ref: str) -> str:
    """What identifies the code a reference names: a file's absolute path, or the module name."""
    where, _, name = ref.strip().rpartition(":")
    if where.endswith(".py") or os.sep in where:
        where = os.path.abspath(os.path.expanduser(where))
    return f"{where}:{name}"


def load_activation(ref: str) -> ActivationSpec:
    """The activation defined by the function ``ref`` names (``file.py:fn`` or ``module:fn``).

    Its parameters are the function's keyword arguments with float, int or bool defaults.
    """
    fn = load_function(
        ref, option=f"activation '{ref}'", signature=_SIGNATURE, example="path/to/acts.py:my_act"
    )
    sig = _signature(fn, f"'{ref}'")
    params = {
        p.name: p.default
        for p in (list(sig.parameters.values())[1:] if sig is not None else [])
        if p.default is not inspect.Parameter.empty
    }
    doc = (inspect.getdoc(fn) or "").strip().splitlines()
    return define_activation(
        ref, fn, params=params, source=ref, formula=doc[0] if doc else None, display_name=ref
    )


def _signature(fn: Callable[..., Any], where: str) -> inspect.Signature | None:
    """The function's signature; None where Python cannot tell (builtins such as torch.log)."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return None
    if not sig.parameters:
        raise ActlabError(f"{where}: the function takes no argument; it must be {_SIGNATURE}")
    return sig


def _as_params(params: Mapping[str, Any] | Iterable[Param], where: str) -> tuple[Param, ...]:
    if isinstance(params, Mapping):
        out = []
        for name, default in params.items():
            if not isinstance(name, str) or not name.isidentifier():
                raise ActlabError(
                    f"{where}: parameter name {name!r} is not a keyword-argument name; "
                    "e.g. {'alpha': 1.0}"
                )
            if not isinstance(default, (bool, int, float)) or isinstance(default, complex):
                raise ActlabError(
                    f"{where}: parameter '{name}' has default {default!r}; user activation "
                    "parameters are numbers or booleans, e.g. alpha=1.0"
                )
            kind = type(default) if isinstance(default, (bool, int)) else float
            out.append(Param(str(name), kind(default), kind, "user parameter"))
        return tuple(out)
    if isinstance(params, (str, bytes)) or not isinstance(params, Iterable):
        raise ActlabError(
            f"{where}: params must map names to defaults, e.g. {{'alpha': 1.0}}, or be Param "
            f"objects; got {type(params).__name__}"
        )
    out = list(params)
    if not all(isinstance(p, Param) for p in out):
        raise ActlabError(f"{where}: params must map names to defaults, or be Param objects")
    return tuple(out)


def _probe(fn: Callable[..., Any], params: Mapping[str, Any], where: str) -> np.ndarray:
    """Check ``fn`` on the probe grid; return f on it (float64)."""
    import torch

    x = torch.linspace(*_PROBE, dtype=torch.float32)
    given = x.clone()
    try:
        y = fn(x, **params)
        y2 = fn(x.flip(0).reshape(-1, 1), **params) if isinstance(y, torch.Tensor) else None
        part = fn(x[:40], **params) if isinstance(y, torch.Tensor) else None
    except ActlabError:
        raise
    except Exception as err:
        raise ActlabError(
            f"{where}: calling it on a tensor failed ({type(err).__name__}: {err}); "
            f"it must be {_SIGNATURE}"
        ) from None
    if not isinstance(y, torch.Tensor):
        raise ActlabError(f"{where}: it returned a {type(y).__name__}, not a torch.Tensor")
    if not torch.equal(x, given):
        raise ActlabError(
            f"{where}: it changes its input in place (like x.relu_() or x += 1), which corrupts "
            "the values autograd keeps; compute a new tensor instead (torch.relu(x), x + 1)"
        )
    if y.shape != x.shape or y2 is None or y2.shape != (x.numel(), 1):
        raise ActlabError(
            f"{where}: not elementwise: a tensor of shape {tuple(x.shape)} gave shape "
            f"{tuple(y.shape)}; an activation returns one value per input value"
        )
    yy = y.detach().double().numpy()
    if not np.isfinite(yy).all():
        bad = float(x[~np.isfinite(yy)][0])
        raise ActlabError(f"{where}: it returns NaN or inf for the finite input x = {bad:g}")
    _check_gradient(fn, params, where)
    back = y2.detach().double().numpy()[::-1, 0]
    sub = part.detach().double().numpy() if isinstance(part, torch.Tensor) else None
    if (
        not np.allclose(back, yy, rtol=1e-5, atol=1e-6)
        or sub is None
        or sub.shape != yy[:40].shape
        or not np.allclose(sub, yy[:40], rtol=1e-5, atol=1e-6)
    ):
        raise ActlabError(
            f"{where}: not elementwise: f at a point changed when the other inputs were "
            "reordered or left out (it mixes values, like softmax or a normalisation)"
        )
    return yy


def _check_gradient(fn: Callable[..., Any], params: Mapping[str, Any], where: str) -> None:
    """Training needs df/dx: the output must be a float tensor that autograd connects to x."""
    import torch

    x = torch.linspace(*_PROBE, dtype=torch.float32).requires_grad_(True)
    try:
        with torch.enable_grad():
            y = fn(x, **params)
    except ActlabError:
        raise
    except RuntimeError as err:
        if "in-place" not in str(err):
            raise ActlabError(f"{where}: calling it with gradients on failed ({err})") from None
        raise ActlabError(
            f"{where}: it changes its input in place (like x.relu_()), which autograd cannot "
            "differentiate; compute a new tensor instead (torch.relu(x))"
        ) from None
    except Exception as err:
        raise ActlabError(
            f"{where}: calling it with gradients on failed ({type(err).__name__}: {err})"
        ) from None
    if not isinstance(y, torch.Tensor) or not (y.is_floating_point() or y.is_complex()):
        dtype = str(getattr(y, "dtype", type(y).__name__)).replace("torch.", "")
        raise ActlabError(
            f"{where}: it returns a tensor of dtype {dtype}, which has no gradient; an activation "
            "returns floating-point values (e.g. x * (x > 0) rather than (x > 0).long())"
        )
    if not y.requires_grad:
        raise ActlabError(
            f"{where}: its output has no gradient with respect to x (.detach(), torch.no_grad() "
            "or a NumPy round trip cuts it), so no network could learn through it; keep the "
            "computation in torch operations on x"
        )


def _float_input(x: Any) -> tuple[np.ndarray, np.dtype, Any]:
    """``x`` as a float array, its dtype, and the dtype to compute in (float32 for float16)."""
    a = np.asarray(x)
    if a.dtype.kind in "biu":
        a = a.astype(np.float64)
    if a.dtype.kind != "f":
        raise ActlabError(f"a user activation takes float arrays, got dtype {a.dtype}")
    return a, a.dtype, np.float32 if a.dtype == np.float16 else a.dtype


def _deliver(y: Any, dtype: np.dtype, shape: tuple[int, ...], out: Any, scalar: bool) -> Any:
    y = np.asarray(y)
    if y.shape != shape:
        raise ActlabError(f"a user activation returned shape {y.shape} for input shape {shape}")
    if out is not None:
        np.copyto(out, y, casting="unsafe")
        return out
    y = y.astype(dtype, copy=False)
    return y[()] if scalar else y


def _numpy_via_torch(fn: Callable[..., Any], grad: bool) -> Callable[..., Any]:
    """f (or, with ``grad``, f' by autograd) of a torch function, on NumPy arrays."""

    def run(x: Any, *, out: Any = None, **params: Any) -> Any:
        import torch

        a, dtype, comp = _float_input(x)
        t = torch.from_numpy(np.array(a, dtype=comp))
        if grad:
            t.requires_grad_(True)
            with torch.enable_grad():
                y = fn(t, **params)
                (r,) = torch.autograd.grad(y.sum(), t, allow_unused=True)
            r = torch.zeros_like(t) if r is None else r
        else:
            with torch.no_grad():
                r = fn(t, **params)
        return _deliver(r.detach().numpy(), dtype, a.shape, out, a.ndim == 0 and out is None)

    return run


def _numpy_user(fn: Callable[..., Any]) -> Callable[..., Any]:
    def run(x: Any, *, out: Any = None, **params: Any) -> Any:
        a, dtype, comp = _float_input(x)
        y = fn(a.astype(comp, copy=False), **params)
        return _deliver(y, dtype, a.shape, out, a.ndim == 0 and out is None)

    return run


def define_activation(
    name: str,
    torch_fn: Callable[..., Any],
    *,
    numpy_fn: Callable[..., Any] | None = None,
    derivative: Callable[..., Any] | None = None,
    params: Mapping[str, Any] | Iterable[Param] = (),
    display_name: str | None = None,
    formula: str | None = None,
    source: str = "",
) -> ActivationSpec:
    """The definition of a user activation, after checking ``torch_fn`` (and ``numpy_fn``)."""
    where = f"activation '{name}'" if source in ("", "actlab.register") else f"'{source}'"
    if not callable(torch_fn):
        raise ActlabError(f"{where}: torch_fn must be a function, got {type(torch_fn).__name__}")
    bound = _as_params(params, where)
    defaults = {p.name: p.default for p in bound}
    sig = _signature(torch_fn, where)
    try:
        if sig is not None:
            sig.bind(0.0, **defaults)
    except TypeError as err:
        raise ActlabError(f"{where}: wrong signature ({err}); it must be {_SIGNATURE}") from None
    torch_fn = _no_exit(torch_fn, where)
    with guarded(where):
        y = _probe(torch_fn, defaults, where)
    forward = _numpy_via_torch(torch_fn, grad=False)
    if numpy_fn is not None:
        forward = _numpy_user(numpy_fn)
        x = np.linspace(*_PROBE)
        try:
            with guarded(f"{where}: numpy_fn"):
                mine = np.asarray(forward(x, **defaults), dtype=np.float64)
        except ActlabError:
            raise
        except Exception as err:
            raise ActlabError(f"{where}: numpy_fn failed ({type(err).__name__}: {err})") from None
        if not np.allclose(mine, y, rtol=1e-4, atol=1e-5):
            raise ActlabError(
                f"{where}: numpy_fn and torch_fn disagree on [-6, 6]; they must agree"
            )
    deriv = _numpy_via_torch(torch_fn, grad=True) if derivative is None else _numpy_user(derivative)
    props = _measured_properties(y)
    low = float(np.min(y)) if props.bounded_below else -INF
    high = float(np.max(y)) if props.bounded_above else INF
    return ActivationSpec(
        name=name,
        display_name=display_name or name,
        formula=formula or f"user function {source or name}",
        formula_latex="",
        derivative_formula="by autograd" if derivative is None else "user function",
        derivative_latex="",
        # measured on the probe grid, not proved: the user's function is a black box
        output_range=(low, high),
        properties=props,
        family="user",
        recommended_init="none",
        year=0,
        reference=source or "actlab.register",
        pros=(),
        cons=(),
        use=(),
        params=bound,
        numpy_forward=forward,
        numpy_derivative=deriv,
        torch=TorchModule("UserActivation", build=_build_user(name, torch_fn), read=_read_user),
        source=source or "actlab.register",
    )


def _measured_properties(y: np.ndarray) -> Properties:
    steps = np.diff(y)
    tail = (y[-1] - y[-2], y[1] - y[0])  # slopes at the ends of the grid
    flat = [abs(s) < 1e-3 for s in tail]
    return Properties(
        monotonic=bool(np.all(steps >= -1e-7)),
        smoothness="C0",  # unknown: the weakest claim
        zero_centred=bool(y.min() < 0 < y.max()),
        bounded_below=bool(flat[1] or y[0] > y.min()),
        bounded_above=bool(flat[0] or y[-1] < y.max()),
        saturating={(True, True): "both", (True, False): "right", (False, True): "left"}.get(
            (flat[0], flat[1]), "none"
        ),
    )


def _build_user(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    def build(resolve: Callable[[str], Any], params: Mapping[str, Any]) -> Any:
        return resolve("UserActivation")(name, fn, dict(params))

    return build


def _read_user(module: Any) -> dict[str, Any]:
    return dict(module.params)
