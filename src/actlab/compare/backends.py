"""Where the groups of a comparison train: in this process (``local``) or on Ray (``ray``).

A *group* is the batched engine's unit of work: models that share a shape and a training
configuration, trained by one :func:`actlab.compare.engine.train` call. A :class:`GroupTask` is
what that call needs (jobs, configuration, checkpoint to resume from, which split). A backend trains
a list of them and hands every finished epoch back to the caller, in this process, as a
:class:`GroupEpoch` (the records and the checkpoint that resumes the group after it). The caller
alone writes the store, so resuming, the time budget and the report work the same way on every
backend.

``LocalBackend`` trains the groups one after another here. ``RayBackend`` sends each group out as a
Ray task (a streaming generator that yields one item per epoch) with a resource request (one CPU,
or one GPU for ``cuda``); each split goes to Ray's object store once (``ray.put``). A group whose
worker dies (killed process, lost node) is sent out again from its last checkpoint, up to
``max_retries`` times; Ctrl-C cancels every task, and the store keeps every finished epoch.
Ray is optional (``pip install "actlab[ray]"``) and imported only here, only when used.

>>> from actlab.compare.backends import GroupTask, LocalBackend
>>> from actlab.compare.engine import Job, TrainConfig
>>> group = GroupTask((Job("relu", 0), Job("tanh", 0)), TrainConfig(epochs=2, width=8))
>>> from actlab import data
>>> split = data.split(data.load("iris"))
>>> seen = []
>>> LocalBackend().train([group], split, on_epoch=lambda u: seen.append((u.group, u.epoch)))
>>> seen
[(0, 1), (0, 2)]
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import re
import signal
import socket
import threading
import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from actlab import devices
from actlab.compare import engine, objective
from actlab.compare.engine import Job, ModelEpoch, TrainConfig
from actlab.errors import ActlabError, suggest

__all__ = [
    "BACKENDS",
    "Backend",
    "GroupEpoch",
    "GroupTask",
    "LocalBackend",
    "RayBackend",
    "make",
]

BACKENDS = ("local", "ray")
INSTALL_RAY = 'pip install "actlab[ray]"'


@dataclass(frozen=True)
class GroupTask:
    """One engine call: its jobs, their training configuration, the checkpoint to resume from and
    the key of its split in the ``splits`` given to :meth:`Backend.train` (0 for a lone split)."""

    jobs: tuple[Job, ...]
    config: TrainConfig
    resume_from: bytes | None = field(default=None, repr=False)
    split: Hashable = 0


def _splits(splits: Any) -> Mapping[Hashable, Any]:
    """``splits`` as a mapping: a lone Split stands for ``{0: split}``."""
    return splits if isinstance(splits, Mapping) else {0: splits}


@dataclass
class GroupEpoch:
    """One finished epoch of one group, as the caller receives it.

    ``records``: the engine's :class:`ModelEpoch` list (``job`` indexes the group's jobs);
    ``checkpoint()``: bytes for ``GroupTask.resume_from`` that continue after this epoch (``None``
    after the group's last epoch); call it inside ``on_epoch``: locally it serialises the state
    of that moment (on Ray the worker made it and it is already here); ``device``: what it
    trained on (``actlab.devices.label``, e.g. ``"cpu (x86_64, PyTorch 2.13.0 without CUDA
    support)"``); ``worker``: the process, ``"host pid 123"``.
    """

    group: int
    epoch: int
    records: list[ModelEpoch]
    checkpoint: Callable[[], bytes | None]
    device: str
    worker: str


OnEpoch = Callable[[GroupEpoch], None]
Progress = Callable[[dict], None]


class Backend(Protocol):
    """What ``compare.run`` needs from a backend."""

    name: str

    def prepare(self, device: str) -> str:
        """Check ``device`` (and connect) before anything is stored; a one-line description."""
        ...

    def train(
        self,
        groups: Sequence[GroupTask],
        splits: Mapping[Hashable, Any] | Any,
        *,
        on_epoch: OnEpoch,
        device: str = "auto",
        deadline: float | None = None,
        progress: Progress | None = None,
    ) -> None:
        """Train every group; ``on_epoch`` runs here, in the caller's thread, once per epoch.

        ``splits``: the data, a mapping from ``GroupTask.split`` to an ``actlab.data.Split`` (or
        one Split, for groups whose ``split`` is 0). ``deadline``: a ``time.monotonic()`` value.
        """
        ...


def _where(device: Any) -> tuple[str, str]:
    """(device label, worker) of this process for ``device``."""
    label = devices.label(devices.describe(devices.resolve(device)))
    return label, f"{socket.gethostname()} pid {os.getpid()}"


def _with_group(progress: Progress | None, index: int, n: int) -> Progress | None:
    if progress is None:
        return None
    return lambda info: progress({**info, "group": index, "groups": n})


class LocalBackend:
    """Train the groups one after another in this process."""

    name = "local"

    def prepare(self, device: str) -> str:
        devices.resolve(device)  # a device that is not there: the one-line error, now
        return "local (this process)"

    def train(
        self,
        groups: Sequence[GroupTask],
        splits: Mapping[Hashable, Any] | Any,
        *,
        on_epoch: OnEpoch,
        device: str = "auto",
        deadline: float | None = None,
        progress: Progress | None = None,
    ) -> None:
        dev = devices.resolve(device)
        label, worker = _where(dev)
        for index, group in enumerate(groups):
            if deadline is not None and time.monotonic() >= deadline:
                return

            def hand_over(
                epoch: int, records: list, checkpoint: Callable[[], bytes], index: int = index,
                epochs: int = group.config.epochs,
            ) -> None:  # fmt: skip
                ck = (lambda: None) if epoch >= epochs else checkpoint
                on_epoch(GroupEpoch(index, epoch, records, ck, label, worker))

            _trainer(group.config)(
                list(group.jobs),
                _splits(splits)[group.split],
                group.config,
                resume_from=group.resume_from,
                on_epoch=hand_over,
                deadline=deadline,
                progress=_with_group(progress, index, len(groups)),
                device=dev,
            )


def _trainer(config: Any) -> Callable[..., Any]:
    """What trains a group: the engine, or the user's function (``--objective``)."""
    return objective.train if isinstance(config, objective.ObjectiveConfig) else engine.train


# ------------------------------------------------------------------------------------------ Ray


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ActlabError(
            f"--backend ray needs Ray, which is not installed; install it with: {INSTALL_RAY} "
            '(from a checkout: pip install -c constraints.txt -e ".[ray]"), or use --backend local'
        ) from None
    return ray


def _ray_group(
    group: GroupTask, split: Any, device: str, threads: int, stop_at: float | None,
    progress: bool,
) -> Any:  # fmt: skip
    """The Ray task (a generator): train one group, yield one tuple per epoch or progress note.

    The engine calls back from inside ``train``; it runs in a thread here so that this generator
    can yield each epoch as soon as it ends. Items: ``("epoch", epoch, records, blob, device,
    worker)`` and, if ``progress``, ``("progress", info)`` (at most every 0.25 s).
    """
    import torch


    torch.set_num_threads(threads)
    # stop_at is wall-clock time (time.time()): a task may wait in Ray's queue before it starts,
    # and the budget runs meanwhile
    deadline = None if stop_at is None else time.monotonic() + (stop_at - time.time())
    label, worker = _where(device)
    items: queue.Queue = queue.Queue()

    def on_epoch(epoch: int, records: list, checkpoint: Callable[[], bytes]) -> None:
        blob = None if epoch >= group.config.epochs else checkpoint()
        items.put(("epoch", epoch, records, blob, label, worker))

    def body() -> None:
        try:
            _trainer(group.config)(
                list(group.jobs), split, group.config, resume_from=group.resume_from,
                on_epoch=on_epoch, deadline=deadline, device=device,
                progress=(lambda info: items.put(("progress", info))) if progress else None,
            )  # fmt: skip
            items.put(("done",))
        except BaseException as err:  # handed to the driver as the task's error
            items.put(("error", err))

    threading.Thread(target=body, name="actlab-group", daemon=True).start()
    while True:
        item = items.get()
        if item[0] == "done":
            return
        if item[0] == "error":
            raise item[1]
        yield item


class RayBackend:
    """Train each group as a Ray task; the caller's process stays the only writer of the store.

    ``address``: a running cluster's address (``ray start --head`` prints it), ``None`` to join a
    local instance if one runs or else start one (shut down again after ``train``). ``num_cpus``
    caps a started local instance (default: every core). ``cpus_per_group``: the CPU request of a
    group's task on the CPU, which is also its PyTorch thread count; default: this process's thread
    count (capped by the largest node), because the engine cuts the models into one stack per
    thread and the stacking changes results in the last bits: so a group gives the numbers it gives
    locally (measured: 35 digits models, 1 vs 2 stacks, differ after one epoch). Groups run side
    by side when the nodes have CPUs for several. A GPU group asks for one GPU and one CPU (the
    engine makes one stack on an accelerator). ``max_retries``: how often a group whose worker
    died is sent out again from its last checkpoint.
    """

    name = "ray"

    def __init__(
        self,
        address: str | None = None,
        *,
        num_cpus: int | None = None,
        cpus_per_group: int | None = None,
        max_retries: int = 3,
    ) -> None:
        self.ray = _import_ray()
        self.address = address
        self.num_cpus = num_cpus
        self.cpus_per_group = cpus_per_group
        self.max_retries = int(max_retries)
        self._started = False
        self._gpus = 0.0
        self._cpus = 1

    # ------------------------------------------------------------------ connecting

    def _connect(self) -> None:
        ray = self.ray
        if self.address is not None:
            _reachable(self.address)  # fails in seconds; ray.init would retry for minutes
        if ray.is_initialized():
            return
        # the workers' logs and Ray's INFO lines stay out of actlab's output (errors still show)
        options: dict[str, Any] = {
            "include_dashboard": False, "log_to_driver": False, "logging_level": logging.ERROR,
        }  # fmt: skip
        # ray.init installs its own SIGTERM handler, which ends the process on the spot; keep the
        # caller's (actlab compare turns SIGTERM into Ctrl-C: the store is closed cleanly)
        handlers = _signal_handlers()
        try:
            if self.address is None and _running_cluster() is None:
                # nothing to join (no 'ray start' on this machine, no RAY_ADDRESS): start one
                ray.init(address="local", num_cpus=self.num_cpus, **options)
                self._started = True
            else:
                ray.init(address=self.address, **options)
        except ConnectionError as err:
            where = self.address or "this machine"
            raise ActlabError(
                f"cannot reach a Ray cluster at {where} ({str(err).splitlines()[0]}); start one "
                "with 'ray start --head' and pass the address it prints as --ray-address"
            ) from None
        finally:
            _restore_signal_handlers(handlers)

    def close(self) -> None:
        """Shut down the local Ray instance this backend started (if it started one)."""
        if self._started and self.ray.is_initialized():
            self.ray.shutdown()
        self._started = False

    def prepare(self, device: str) -> str:
        """Connect, and check that the cluster has what ``device`` asks for."""
        text = str(device).strip().lower()
        if text.startswith("cuda:"):
            raise ActlabError(
                f"--device {text} names a GPU of this machine, but Ray assigns each task its GPU: "
                "use --device cuda (or auto) with --backend ray"
            )
        if text not in ("auto", "cpu", "cuda", "mps"):
            raise ActlabError(
                f"device must be one of auto, cpu, cuda, mps with --backend ray, got {device!r}"
                + suggest(text, ["auto", "cpu", "cuda", "mps"])
            )
        self._connect()
        resources = self.ray.cluster_resources()
        gpus = float(resources.get("GPU", 0.0))
        if text == "cuda" and gpus < 1:
            raise ActlabError(
                "device 'cuda' is not available: the Ray cluster has no GPU "
                f"({int(resources.get('CPU', 0))} CPUs); use --device auto or --device cpu"
            )
        self._gpus = 1.0 if text == "cuda" or (text == "auto" and gpus >= 1) else 0.0
        if self._gpus:
            self._cpus = 1
        else:
            import torch

            largest = max(
                (int(n["Resources"].get("CPU", 0)) for n in self.ray.nodes() if n.get("Alive")),
                default=1,
            )
            want = self.cpus_per_group or torch.get_num_threads()
            self._cpus = max(1, min(int(want), largest))
        each = "one GPU" if self._gpus else f"{self._cpus} CPU{'s' if self._cpus > 1 else ''}"
        return f"Ray ({int(resources.get('CPU', 0))} CPUs, {int(gpus)} GPUs): {each} per group"

    # ------------------------------------------------------------------ training

    def train(
        self,
        groups: Sequence[GroupTask],
        splits: Mapping[Hashable, Any] | Any,
        *,
        on_epoch: OnEpoch,
        device: str = "auto",
        deadline: float | None = None,
        progress: Progress | None = None,
    ) -> None:
        ray = self.ray
        self.prepare(device)
        task = ray.remote(_ray_group).options(
            num_returns="streaming",
            num_cpus=self._cpus,
            num_gpus=self._gpus,
            max_retries=0,  # retried here, from the last checkpoint rather than from the start
        )
        worker_device = "cuda" if self._gpus else str(device)
        data = _splits(splits)
        # each split goes out once, and only those the groups use
        refs = {key: ray.put(data[key]) for key in dict.fromkeys(g.split for g in groups)}
        latest = list(groups)  # each group as it would be sent out now (its latest checkpoint)
        failures = [0] * len(groups)
        delivered = [0] * len(groups)  # the last epoch handed over, per group

        def submit(index: int) -> Any:
            stop_at = None if deadline is None else time.time() + (deadline - time.monotonic())
            return task.remote(
                latest[index], refs[groups[index].split], worker_device, self._cpus, stop_at,
                progress is not None,
            )

        running = {submit(i): i for i in range(len(groups))}
        try:
            while running:
                # a short timeout: Python's signal handlers (Ctrl-C, SIGTERM) run between waits
                ready, _ = ray.wait(list(running), num_returns=1, timeout=0.5)
                for stream in ready:
                    index = running.pop(stream)
                    try:
                        item = ray.get(next(stream))
                    except StopIteration:
                        continue  # the group is finished
                    except ray.exceptions.RayTaskError as err:
                        raise _task_error(err, index) from None
                    except (
                        ray.exceptions.WorkerCrashedError,
                        ray.exceptions.NodeDiedError,
                        ray.exceptions.ObjectLostError,
                        ray.exceptions.OwnerDiedError,
                        ray.exceptions.RaySystemError,
                    ) as err:
                        if delivered[index] >= groups[index].config.epochs:
                            continue  # died after its last epoch: nothing is missing
                        failures[index] += 1
                        if failures[index] > self.max_retries:
                            raise ActlabError(
                                f"group {index + 1} lost its Ray worker {failures[index]} time"
                                f"{'s' if failures[index] > 1 else ''} "
                                f"(last: {type(err).__name__}); every finished epoch is stored: "
                                "finish the run with --resume"
                            ) from None
                        running[submit(index)] = index  # again, from its last checkpoint
                        continue
                    running[stream] = index
                    if item[0] == "progress":
                        if progress is not None:
                            progress({**item[1], "group": index, "groups": len(groups)})
                        continue
                    _, epoch, records, blob, label, worker = item
                    if epoch <= delivered[index]:
                        continue  # a retried group repeats nothing it already handed over
                    delivered[index] = epoch
                    if blob is not None:
                        latest[index] = replace(latest[index], resume_from=blob)
                    on_epoch(GroupEpoch(index, epoch, records, lambda b=blob: b, label, worker))
        except BaseException:
            for stream in running:  # Ctrl-C or an error: stop every task still out
                ray.cancel(stream, force=True)
            raise
        finally:
            self.close()


def _signal_handlers() -> dict[int, Any]:
    return {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}


def _restore_signal_handlers(handlers: dict[int, Any]) -> None:
    for sig, handler in handlers.items():
        if handler is not None and signal.getsignal(sig) is not handler:
            with contextlib.suppress(ValueError):  # not the main thread: nothing to keep
                signal.signal(sig, handler)


def _running_cluster() -> str | None:
    """The address ``ray.init()`` would join (RAY_ADDRESS, or a 'ray start' on this machine)."""
    try:
        from ray._private.services import canonicalize_bootstrap_address

        return canonicalize_bootstrap_address(None)
    except Exception:  # a Ray without that helper: let ray.init() decide (it may start one)
        return None


def _task_error(err: Any, index: int) -> Exception:
    """A group's task raised: the user's mistake stays an ActlabError (exit 2), with its text."""
    cause = getattr(err, "cause", None)
    if isinstance(cause, ActlabError):
        return ActlabError(str(cause))
    if isinstance(cause, BaseException):
        return RuntimeError(f"group {index + 1} failed on its Ray worker: {cause!r}")
    return RuntimeError(f"group {index + 1} failed on its Ray worker: {err}")


def make(name: str = "local", *, ray_address: str | None = None) -> Backend:
    """The backend called ``name`` ("local" or "ray"); ``ray_address`` only goes with "ray"."""
    text = str(name).strip().lower()
    if text not in BACKENDS:
        raise ActlabError(
            f"backend must be one of {', '.join(BACKENDS)}, got {name!r}" + suggest(text, BACKENDS)
        )
    if text == "local":
        if ray_address is not None:
            raise ActlabError("--ray-address goes with --backend ray; add --backend ray")
        return LocalBackend()
    if ray_address is not None:
        check_ray_address(ray_address)
    return RayBackend(ray_address)


_RAY_ADDRESS = re.compile(
    r"(?P<scheme>ray://)?(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252}))"
    r":(?P<port>[0-9]{1,5})"
)
RAY_CONNECT_S = 10.0  # a TCP connect to a live head answers in milliseconds


def check_ray_address(address: Any) -> tuple[str, int] | None:
    """(host, port) of a Ray address (``HOST:PORT``, ``ray://HOST:PORT``), None for ``auto`` /
    ``local``; anything else is one line saying what an address looks like."""
    hint = (
        "give the address 'ray start --head' prints, HOST:PORT (e.g. 127.0.0.1:6379), or "
        "ray://HOST:10001 for Ray Client"
    )
    if not isinstance(address, str) or not address.strip():
        raise ActlabError(f"--ray-address is empty; {hint}")
    text = address.strip()
    if text in ("auto", "local"):
        return None
    if "://" in text and not text.startswith("ray://"):
        raise ActlabError(
            f"--ray-address {text!r} is a URL; Ray wants no scheme (the dashboard's http:// "
            f"address is not the cluster's); {hint}"
        )
    m = _RAY_ADDRESS.fullmatch(text)
    if m is None or not 0 < int(m["port"]) < 65536:
        raise ActlabError(f"--ray-address {text!r} is not an address; {hint}")
    return m["host"].strip("[]"), int(m["port"])


def _reachable(address: str) -> None:
    """Refuse an address nothing listens on within RAY_CONNECT_S (ray.init would retry for
    minutes, printing its C++ log lines)."""
    target = check_ray_address(address)
    if target is None:
        return
    try:
        socket.create_connection(target, timeout=RAY_CONNECT_S).close()
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise ActlabError(
            f"cannot reach a Ray cluster at {address} ({reason}); start one with 'ray start "
            "--head' and pass the address it prints as --ray-address"
        ) from None
