"""Networks the stacked MLP cannot train: the user's ``--model`` and activations with parameters."""

from __future__ import annotations

import copy
import hashlib
import inspect
import math
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import nn

from actlab.catalog import Activation, parse
from actlab.compare.training.data import _EVAL_ROWS, _Data
from actlab.compare.training.optim import _Optimizer
from actlab.compare.training.types import Job, TrainConfig, _Trainer, check_jobs
from actlab.data import Split
from actlab.errors import ActlabError
from actlab.health import measures_saturation, unit_health
from actlab.nets import init_linear, loss, mlp
from actlab.torch import catalog_name
from actlab.usercode import guarded, load_function


def _build_net(
    factory: Callable[[str], Any], act: Activation, seed: int, data: _Data, config: TrainConfig
) -> nn.Module:
    where = f"model: {config.model}('{act}')"
    with torch.random.fork_rng(devices=[]), guarded(where):
        torch.manual_seed(seed)
        try:
            net = factory(str(act))
        except ActlabError:
            raise
        except Exception as err:
            raise ActlabError(f"{where} raised {type(err).__name__}: {err}") from None
    if not isinstance(net, nn.Module):
        raise ActlabError(
            f"{where} returned {type(net).__name__}; it must return a torch.nn.Module"
        )
    if not any(p.requires_grad for p in net.parameters()):
        raise ActlabError(
            f"{where}: the network has no trainable parameters (nn.Identity, or every parameter "
            "set to requires_grad_(False)), so there is nothing to train; return a network with "
            "learnable layers such as nn.Linear"
        )
    net = net.float().cpu()  # initialised with a CPU generator, then moved to the device
    if config.init not in ("auto", "torch"):
        g = torch.Generator().manual_seed(seed)
        linears = [m for m in net.modules() if isinstance(m, nn.Linear)]
        with torch.no_grad():
            for k, lin in enumerate(linears):
                hidden = k < len(linears) - 1
                init_linear(lin.weight, lin.bias, config.init, act if hidden else None, g)
    net = net.to(data.device)
    try:
        net.eval()
        with guarded(f"{where}: its forward"), torch.enable_grad():
            out = net(data.X_train[:2])
        net.train()
    except ActlabError:
        raise
    except Exception as err:
        raise ActlabError(
            f"{where}: the network fails on a batch of shape {tuple(data.X_train[:2].shape)}: "
            f"{type(err).__name__}: {err}"
        ) from None
    if isinstance(out, torch.Tensor) and not (out.is_floating_point() and out.requires_grad):
        raise ActlabError(
            f"{where}: its output (dtype {str(out.dtype).replace('torch.', '')}) has no gradient "
            "with respect to the network's parameters (.detach(), torch.no_grad() or an integer "
            "result cut it), so training cannot change it; return the last layer's float output"
        )
    out = out.detach() if isinstance(out, torch.Tensor) else out
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (2, data.n_out):
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ActlabError(
            f"{where}: for a batch of shape {tuple(data.X_train[:2].shape)} the network must "
            "return "
            f"{'logits' if data.classification else 'predictions'} of shape (2, {data.n_out}), "
            f"got {shape}"
        )
    return net


_batch_loss = loss  # the one loss (actlab.nets)


def _epoch_sums(
    perms: torch.Tensor, batch_size: int, n_weights: int, device: torch.device
) -> tuple[int, torch.Tensor, torch.Tensor]:
    """An epoch over the rows ``perms`` (models x rows) of both generic trainers: its number of
    steps and the zeroed sums of each model's loss (M,) and weight-gradient norms (M, layers)."""
    n_models, n = perms.shape
    steps = math.ceil(n / batch_size)
    return (steps, torch.zeros(n_models, device=device),
            torch.zeros(n_models, n_weights, device=device))  # fmt: skip


def _weight_names(net: nn.Module) -> list[str]:
    return [k for k, p in net.named_parameters() if k.endswith("weight") and p.ndim >= 2]


class _Health:
    """Hooks on a network's elementwise activation modules: unit health per call, in order."""

    def __init__(self, net: nn.Module) -> None:

        self.results: list[tuple[float, float]] = []
        self.handles = []
        self.saturation: dict[int, bool] = {}  # per module: is saturation meaningful for it?
        for m in net.modules():
            name = catalog_name(m)
            if name is not None and parse(name).spec.elementwise:
                # by name: the rule depends on the spec alone, and the base module of a vmapped
                # network lives on the meta device (identify() would read its parameters)
                self.saturation[id(m)] = measures_saturation(parse(name))
                self.handles.append(m.register_forward_hook(self._hook))

    def _hook(self, module: nn.Module, args: tuple, output: Any) -> None:
        if not args or not isinstance(args[0], torch.Tensor) or args[0].ndim < 2:
            return
        with torch.enable_grad():
            z = args[0].detach().requires_grad_(True)
            h = module.forward(z)  # .forward: calling the module would re-enter this hook
            d = torch.autograd.grad(h, z, torch.ones_like(h))[0]
        dead, sat = unit_health(d.reshape(d.shape[0], -1))
        measured = self.saturation[id(module)]
        self.results.append((float(dead), float(sat) if measured else math.nan))

    def measure(self, run: Callable[[], Any]) -> tuple[list[float], list[float]]:
        """Dead and saturated fractions of each hooked call while ``run()`` runs."""
        self.results = []
        run()
        return [r[0] for r in self.results], [r[1] for r in self.results]

    def __enter__(self) -> _Health:
        return self

    def __exit__(self, *exc: object) -> None:
        for h in self.handles:
            h.remove()


class _Vmapped:
    """The seeds of one activation of a user network, batched with torch.func."""

    def __init__(self, nets: list[nn.Module], data: _Data, config: TrainConfig) -> None:
        self.data, self.config = data, config
        self.params, self.buffers = torch.func.stack_module_state(nets)
        self.base = copy.deepcopy(nets[0]).to("meta")
        self.weights = _weight_names(nets[0])
        self.n_weights = len(self.weights)
        for p in self.params.values():
            p.grad = torch.zeros_like(p)
        self.optimizer = _Optimizer(list(self.params.values()), config)
        self.frozen = torch.zeros(len(nets), dtype=torch.bool)
        self.mask = torch.ones(len(nets), device=data.device)
        self.units = 1

        def call(p: dict, b: dict, x: torch.Tensor) -> torch.Tensor:
            return torch.func.functional_call(self.base, (p, b), (x,))

        self.call = torch.func.vmap(call, in_dims=(0, 0, 0), randomness="error")
        self.call_shared = torch.func.vmap(call, in_dims=(0, 0, None), randomness="error")

    def dry_run(self) -> None:
        """Raise if the network cannot run under vmap (tried on copies, nothing changes)."""
        p = {k: v.detach().clone().requires_grad_(True) for k, v in self.params.items()}
        b = {k: v.clone() for k, v in self.buffers.items()}
        n = len(self.frozen)
        x = self.data.X_train[:2].expand(n, 2, -1)
        y = self.data.y_train[:2].expand(n, *self.data.y_train[:2].shape)
        self.base.train()
        loss = _batch_loss(self.call(p, b, x), y, self.data.classification).sum()
        torch.autograd.grad(loss, list(p.values()), allow_unused=True)
        self.base.eval()
        with torch.no_grad():
            self.call_shared(p, b, self.data.X_val[:2])

    def run_epoch(
        self, perms: torch.Tensor, on_step: Callable[[], None]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        X, Y = self.data.X_train, self.data.y_train
        n_models, bs = perms.shape[0], self.config.batch_size
        steps, loss_sum, norm_sum = _epoch_sums(perms, bs, self.n_weights, X.device)
        plist = list(self.params.values())
        self.base.train()
        for s in range(steps):
            idx = perms[:, s * bs : (s + 1) * bs].reshape(-1)
            x = X.index_select(0, idx).view(n_models, -1, *X.shape[1:])
            y = Y.index_select(0, idx).view(n_models, -1, *Y.shape[1:])
            loss = _batch_loss(self.call(self.params, self.buffers, x), y, self.data.classification)
            grads = torch.autograd.grad((loss * self.mask).sum(), plist, allow_unused=True)
            with torch.no_grad():
                for p, g in zip(plist, grads, strict=True):
                    # fused Adam needs gradients laid out like their parameters (vmap's may be
                    # transposed)
                    if g is None:
                        p.grad.zero_()
                    else:
                        p.grad.copy_(g)
                loss_sum += loss.detach()
                for k, name in enumerate(self.weights):
                    norm_sum[:, k] += torch.linalg.vector_norm(
                        self.params[name].grad.flatten(1), dim=1
                    )
                self.optimizer.step()
            on_step()
        return loss_sum / steps, norm_sum / steps

    @torch.no_grad()
    def outputs(self, X: torch.Tensor, transpose: bool = True) -> torch.Tensor:
        """Outputs (M, n_out, rows) on ``X`` (the test part), or (M, rows, n_out) untransposed."""
        self.base.eval()
        out = self.call_shared(self.params, self.buffers, X)
        return out.transpose(1, 2) if transpose else out

    @torch.no_grad()
    def evaluate(self) -> tuple[torch.Tensor, list[list[float]], list[list[float]]]:
        self.base.eval()
        X = self.data.X_val
        if len(X) <= _EVAL_ROWS:
            probed = self._probed()
            if probed is not None:
                return probed
        out = self.outputs(X, transpose=False)
        with _Health(self.base) as probe:
            health = [probe.measure(partial(
                torch.func.functional_call, self.base, ({n: v[k] for n, v in self.params.items()},
                {n: v[k] for n, v in self.buffers.items()}), (self.data.X_val[:_EVAL_ROWS],),
            )) for k in range(len(self.frozen))]  # fmt: skip
        return out.transpose(1, 2), [h[0] for h in health], [h[1] for h in health]

    def _probed(self) -> tuple[torch.Tensor, list[list[float]], list[list[float]]] | None:
        """``evaluate`` in one vmapped validation pass: the hooked activations' inputs come out
        of the same call as the outputs, and their derivatives are taken on all models at once
        (elementwise modules without parameters or buffers; else None: probe model by model).
        Measured on the CNN example (15 models, 1 thread): evaluate 0.68-0.96 CPU-s per epoch
        model by model, of which the validation outputs alone are 0.15-0.19."""
        probe = _Health(self.base)
        with probe:
            mods = [m for m in self.base.modules() if id(m) in probe.saturation]
        if any(True for m in mods for _ in [*m.parameters(), *m.buffers()]):
            return None
        seen: list[tuple[nn.Module, torch.Tensor]] = []

        def record(module: nn.Module, args: tuple, output: Any) -> None:
            if args and isinstance(args[0], torch.Tensor) and args[0].ndim >= 2:
                seen.append((module, args[0]))

        def call(p: dict, b: dict, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
            seen.clear()
            out = torch.func.functional_call(self.base, (p, b), (x,))
            return out, [z for _, z in seen]

        handles = [m.register_forward_hook(record) for m in mods]
        try:
            out, zs = torch.func.vmap(call, in_dims=(0, 0, None), randomness="error")(
                self.params, self.buffers, self.data.X_val
            )
        finally:
            for h in handles:
                h.remove()
        dead, sat = [], []
        for (module, _), z in zip(seen, zs, strict=True):  # (models, rows, ...) per call
            with torch.enable_grad():
                z = z.detach().requires_grad_(True)
                h = module.forward(z)
                d = torch.autograd.grad(h, z, torch.ones_like(h))[0]
            d_, s_ = unit_health(d.reshape(d.shape[0], d.shape[1], -1))
            dead.append(d_.tolist())
            sat.append(s_.tolist() if probe.saturation[id(module)] else [math.nan] * len(z))
        models = len(self.frozen)
        return (
            out.transpose(1, 2),
            [[c[k] for c in dead] for k in range(models)],
            [[c[k] for c in sat] for k in range(models)],
        )

    def freeze(self, rows: torch.Tensor) -> None:
        with torch.no_grad():
            for k, p in enumerate(self.params.values()):
                for t in [p, *self.optimizer.moments(k)]:
                    t[rows] = 0
            self.mask[rows] = 0
            self.frozen[rows] = True

    def state(self) -> dict[str, Any]:
        return {
            "params": {k: v.detach().clone() for k, v in self.params.items()},
            "buffers": {k: v.clone() for k, v in self.buffers.items()},
            "optimizer": self.optimizer.state_dict(),
            "frozen": self.frozen.clone(),
        }

    def load_state(self, state: dict[str, Any]) -> None:
        with torch.no_grad():
            for k, v in self.params.items():
                v.copy_(state["params"][k])
            for k, v in self.buffers.items():
                v.copy_(state["buffers"][k])
        self.optimizer.load_state_dict(state["optimizer"])
        self.frozen.copy_(state["frozen"])
        self.mask.copy_((~self.frozen).to(torch.float32))


def _device_rng(device: torch.device) -> tuple[Callable[[], Any], Callable[[Any], Any]] | None:
    """Get/set of an accelerator's global generator (dropout on a GPU draws from it), or None."""
    if device.type == "cuda":
        return partial(torch.cuda.get_rng_state, device), partial(
            torch.cuda.set_rng_state, device=device
        )
    if device.type == "mps":
        return torch.mps.get_rng_state, torch.mps.set_rng_state
    return None


class _OneByOne:
    """User networks vmap cannot batch (dropout, in-place buffer updates...): a plain loop each."""

    def __init__(self, nets: list[nn.Module], data: _Data, config: TrainConfig) -> None:
        self.nets, self.data, self.config = nets, data, config
        self.optimizers = [_Optimizer(list(net.parameters()), config) for net in nets]
        self.n_weights = len(_weight_names(nets[0]))
        self.frozen = torch.zeros(len(nets), dtype=torch.bool)
        self.units = len(nets)
        # each model's own global-RNG stream (dropout masks...), seeded like its initialisation;
        # on an accelerator also its generator's stream (the caller's streams are restored)
        self.dev_rng = _device_rng(data.device)
        self.rng, self.device_rng = [], []
        for net in nets:
            saved = self.dev_rng[0]() if self.dev_rng else None
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(net._actlab_seed)  # type: ignore[attr-defined]
                self.rng.append(torch.get_rng_state())
                if self.dev_rng:
                    self.device_rng.append(self.dev_rng[0]())
                    self.dev_rng[1](saved)

    def run_epoch(
        self, perms: torch.Tensor, on_step: Callable[[], None]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        X, Y = self.data.X_train, self.data.y_train
        bs = self.config.batch_size
        steps, loss_sum, norm_sum = _epoch_sums(perms, bs, self.n_weights, X.device)
        for k, (net, opt) in enumerate(zip(self.nets, self.optimizers, strict=True)):
            if self.frozen[k]:
                for _ in range(steps):
                    on_step()
                continue
            weights = [dict(net.named_parameters())[w] for w in _weight_names(net)]
            net.train()
            saved = self.dev_rng[0]() if self.dev_rng else None
            with torch.random.fork_rng(devices=[]):
                torch.set_rng_state(self.rng[k])
                if self.dev_rng:
                    self.dev_rng[1](self.device_rng[k])
                for s in range(steps):
                    idx = perms[k, s * bs : (s + 1) * bs]
                    loss = _batch_loss(net(X[idx]), Y[idx], self.data.classification)
                    net.zero_grad(set_to_none=False)
                    loss.backward()
                    with torch.no_grad():
                        loss_sum[k] += loss.detach()
                        for j, w in enumerate(weights):
                            if w.grad is not None:
                                norm_sum[k, j] += torch.linalg.vector_norm(w.grad)
                    opt.step()
                    on_step()
                self.rng[k] = torch.get_rng_state()
                if self.dev_rng:
                    self.device_rng[k] = self.dev_rng[0]()
                    self.dev_rng[1](saved)
        return loss_sum / steps, norm_sum / steps

    @torch.no_grad()
    def outputs(self, X: torch.Tensor) -> torch.Tensor:
        outs = []
        for net in self.nets:
            net.eval()
            outs.append(net(X))
        return torch.stack(outs).transpose(1, 2)

    @torch.no_grad()
    def evaluate(self) -> tuple[torch.Tensor, list[list[float]], list[list[float]]]:
        health = []
        for net in self.nets:
            net.eval()
            with _Health(net) as probe:
                health.append(probe.measure(partial(net, self.data.X_val[:_EVAL_ROWS])))
        return self.outputs(self.data.X_val), [h[0] for h in health], [h[1] for h in health]

    def freeze(self, rows: torch.Tensor) -> None:
        for k in rows.tolist():
            self.frozen[k] = True
            with torch.no_grad():
                for p in self.nets[k].parameters():
                    p.zero_()
            self.optimizers[k].state.clear()

    def state(self) -> dict[str, Any]:
        return {
            "nets": [net.state_dict() for net in self.nets],
            "optimizers": [opt.state_dict() for opt in self.optimizers],
            "rng": [r.clone() for r in self.rng],
            "frozen": self.frozen.clone(),
            **({"device_rng": [r.clone() for r in self.device_rng]} if self.dev_rng else {}),
        }

    def load_state(self, state: dict[str, Any]) -> None:
        for net, sd in zip(self.nets, state["nets"], strict=True):
            net.load_state_dict(sd)
        for opt, sd in zip(self.optimizers, state["optimizers"], strict=True):
            opt.load_state_dict(sd)
        self.rng = [r.clone() for r in state["rng"]]
        if self.dev_rng and "device_rng" in state:  # absent when resumed from a CPU run
            self.device_rng = [r.clone() for r in state["device_rng"]]
        self.frozen.copy_(state["frozen"])


def _first_nets(jobs: Sequence[Job], split: Split, config: TrainConfig) -> dict[str, nn.Module]:
    """The user's network built for each activation (first seed), checked (``_build_net``)."""
    acts, data = check_jobs(jobs), _Data(split)
    factory = load_function(str(config.model))
    nets: dict[str, nn.Module] = {}
    for act, job in zip(acts, jobs, strict=True):
        if str(act) not in nets:
            nets[str(act)] = _build_net(factory, act, int(job.seed), data, config)
    return nets


def model_signature(jobs: Sequence[Job], split: Split, config: TrainConfig) -> dict[str, Any]:
    """What a resumed run must find unchanged in the user's ``--model``: a hash of its source
    file and the parameter shapes of the network built for each activation (first seed).

    Building the networks checks the model too (missing file, syntax error, raising function,
    non-Module, wrong output shape), so a rejected one stops the run before its folder is made.
    Empty for the built-in MLP (its shapes follow from the stored settings)."""
    if config.model is None:
        return {}
    nets = _first_nets(jobs, split, config)
    factory = load_function(config.model)
    try:  # the whole file: an edit anywhere in it (a helper, a constant) can change the network
        path = inspect.getsourcefile(factory)
        source = Path(path).read_text(encoding="utf-8") if path else inspect.getsource(factory)
    except (OSError, TypeError, UnicodeDecodeError):
        source = ""
    shapes = {a: [f"{n}{list(p.shape)}" for n, p in m.named_parameters()] for a, m in nets.items()}
    sha = hashlib.sha256(source.encode()).hexdigest() if source else None
    return {"source_sha256": sha, "parameters": shapes}


def model_changes(stored: dict[str, Any], now: dict[str, Any]) -> str | None:
    """One line naming what changed between two :func:`model_signature` s, or None."""
    if not stored or not now:
        return None
    for act, shapes in now.get("parameters", {}).items():
        before = stored.get("parameters", {}).get(act)
        if before is not None and before != shapes:
            diff = [f"{a} -> {b}" for a, b in zip(before, shapes, strict=False) if a != b]
            if len(before) != len(shapes):
                diff.append(f"{len(before)} parameter tensors -> {len(shapes)}")
            return f"the network built for '{act}' has other parameters ({'; '.join(diff[:3])})"
    if stored.get("source_sha256") and stored.get("source_sha256") != now.get("source_sha256"):
        return "the source file of the model function was edited since the run started"
    return None


def _plain_mlp(act: Activation, seed: int, data: _Data, config: TrainConfig) -> nn.Module:
    """The default MLP as an ``nn.Sequential`` (:func:`actlab.nets.mlp`), initialised by the recipe
    in docs/ARCHITECTURE.md (exactly the stacked ``_MLP``'s), for activations with parameters."""
    n_in = data.X_train.shape[1]
    net = mlp(n_in, config.width, data.n_out, [act] * config.depth, config.init, seed=seed)
    net = net.to(data.device)
    net._actlab_seed = seed  # type: ignore[attr-defined]
    return net


def _generic_trainer(nets: list[nn.Module], data: _Data, config: TrainConfig) -> _Trainer:
    """Seeds of one activation batched with torch.func where the network allows, else one by one."""
    if len({tuple((n, p.shape) for n, p in net.named_parameters()) for net in nets}) == 1:
        try:
            trainer = _Vmapped(nets, data, config)
            trainer.dry_run()
            return trainer
        except Exception:  # the model does not allow vmap: train it one model at a time
            pass
    return _OneByOne(nets, data, config)
