"""The run directory's SQLite store (``DIR/results.sqlite``): results are committed as they are
produced.

Each epoch's records are committed in one transaction as the epoch ends (with the group's
checkpoint when one is due: ``compare.GroupRun`` writes them on a time interval), so an interrupted
run (Ctrl-C, kill, power cut in WAL mode) loses no finished epoch's records, and ``--resume``
continues from the group's last checkpoint: the epochs after it are retrained (bit-identical on
the same device) and their records replaced. The stored configuration guards against mixing results
of different comparisons.

Schema versions (``meta.schema_version``): 1 = actlab 0.1.0 (one group of activation x seed models,
one checkpoint); 2 = factor grids: every model has a ``cell`` (JSON of its factor values) and a
``grp`` (the engine call it trains in), and each group has its own checkpoint row. Version 1 stores
are read (``actlab report``) as a grid of one cell; resuming them needs actlab 0.1.0.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import sqlite3
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from actlab.errors import ActlabError

FILENAME = "results.sqlite"
SCHEMA_VERSION = 2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS models (
    id INTEGER PRIMARY KEY,            -- 0-based index in the run's job list
    activation TEXT NOT NULL,          -- canonical spec string
    seed INTEGER NOT NULL,
    status TEXT NOT NULL,              -- running | done | diverged
    epochs_done INTEGER NOT NULL DEFAULT 0,
    diverged_epoch INTEGER,
    cell TEXT NOT NULL,                -- JSON object: the model's factor values (depth, lr, ...)
    grp TEXT NOT NULL,                 -- the group (one engine call) it trains in
    UNIQUE (activation, seed, cell)
);
CREATE TABLE IF NOT EXISTS epochs (
    model_id INTEGER NOT NULL REFERENCES models(id),
    epoch INTEGER NOT NULL,            -- 1-based
    train_loss REAL,
    val_loss REAL,
    metrics TEXT NOT NULL,             -- JSON object
    grad_norms TEXT NOT NULL,          -- JSON list, per weight layer
    dead_fraction TEXT NOT NULL,       -- JSON list, per hidden layer
    saturated_fraction TEXT NOT NULL,  -- JSON list, per hidden layer
    diverged INTEGER NOT NULL,
    seconds REAL,
    PRIMARY KEY (model_id, epoch)
);
CREATE TABLE IF NOT EXISTS checkpoint (
    grp TEXT PRIMARY KEY,              -- one per group still training
    epoch INTEGER NOT NULL,
    blob BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    id INTEGER PRIMARY KEY,
    started REAL NOT NULL,
    finished REAL,
    outcome TEXT,                      -- complete | stopped | interrupted | failed
    versions TEXT NOT NULL
);
"""


def library_versions() -> dict[str, str]:
    """Versions that can change results: Python and the numeric libraries (read from their
    installed metadata: importing scikit-learn for its version alone took 2 s)."""
    from importlib.metadata import version

    import numpy
    import torch

    from actlab import __version__

    return {
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "torch": torch.__version__,
        "scipy": version("scipy"),
        "scikit-learn": version("scikit-learn"),
        "actlab": __version__,
        "platform": f"{platform.system()} {platform.machine()}",
    }


def _dumps(value: Any) -> str:
    # NaN/inf survive as JSON's non-standard tokens, which json.loads reads back
    return json.dumps(value, allow_nan=True)


class Store:
    """One run directory's database: :meth:`create` or :meth:`open`, then :meth:`close`."""

    def __init__(self, directory: Path, conn: sqlite3.Connection) -> None:
        self.directory = directory
        self.conn = conn
        self._session: int | None = None
        self._lock: Any = None
        self.version = SCHEMA_VERSION
        self.write_s = 0.0  # seconds spent storing epochs and checkpoints (compare.run adds)
        self.checkpoint_bytes = 0  # checkpoint bytes written

    # ------------------------------------------------------------------ opening

    @staticmethod
    def path(directory: str | Path) -> Path:
        return Path(directory) / FILENAME

    @classmethod
    def exists(cls, directory: str | Path) -> bool:
        return cls.path(directory).is_file()

    @classmethod
    def _connect(cls, directory: Path) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(cls.path(directory), timeout=10.0)
            # large pages: a checkpoint blob (megabytes) is written ~5x faster than with 4 KiB
            # overflow pages; only takes effect when the file is created
            conn.execute("PRAGMA page_size=65536")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA wal_autocheckpoint=256")  # keep the -wal file near 16 MiB
            conn.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across process kills
        except sqlite3.DatabaseError as exc:
            raise _open_failed(cls.path(directory), exc) from None
        return conn

    @classmethod
    def create(
        cls,
        directory: str | Path,
        *,
        config: Mapping[str, Any],
        fingerprint: str,
        data: Mapping[str, Any],
        jobs: Sequence[tuple[Any, ...]],
        command: str,
        extra: Mapping[str, Any] | None = None,
        lock: Any = None,
    ) -> Store:
        """A new run's database. ``jobs``: ``(activation, seed, cell, group)`` per model, in id
        order (``(activation, seed)`` alone: one cell, one group, as actlab 0.1.0 wrote);
        ``extra``: more meta entries; ``lock``: a :func:`take_lock` handle already held on
        ``directory`` (kept until :meth:`close`)."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        store = cls(d, cls._connect(d))
        store._lock = lock
        with store.conn:
            store.conn.executescript(_SCHEMA)
            meta = {
                "schema_version": SCHEMA_VERSION,
                "config": dict(config),
                "fingerprint": fingerprint,
                "data": dict(data),
                "versions": library_versions(),
                "command": command,
                "created": time.time(),
                **dict(extra or {}),
            }
            store.conn.executemany(
                "INSERT INTO meta (key, value) VALUES (?, ?)",
                [(k, _dumps(v)) for k, v in meta.items()],
            )
            store.conn.executemany(
                "INSERT INTO models (id, activation, seed, status, cell, grp) "
                "VALUES (?, ?, ?, 'running', ?, ?)",
                [(i, job[0], job[1], _dumps(dict(job[2] if len(job) > 2 else {})),
                  job[3] if len(job) > 3 else "") for i, job in enumerate(jobs)],
            )  # fmt: skip
        return store

    @classmethod
    def open(cls, directory: str | Path) -> Store:
        d = Path(directory)
        if not cls.exists(d):
            raise ActlabError(
                f"'{d}' holds no actlab results ({FILENAME} is missing); "
                "give the folder that 'actlab compare --out' wrote"
            )
        check_integrity(cls.path(d))
        store = cls(d, cls._connect(d))
        try:
            store.meta("config")
            store.version = int(store.meta("schema_version"))
        except (sqlite3.DatabaseError, KeyError, TypeError, ValueError):
            store.close()
            raise ActlabError(f"'{cls.path(d)}' is not an actlab results database") from None
        if store.version > SCHEMA_VERSION:
            store.close()
            raise ActlabError(
                f"'{cls.path(d)}' was written by a newer actlab (store schema {store.version}, "
                f"this one reads up to {SCHEMA_VERSION}); upgrade actlab to read it"
            )
        return store

    def close(self) -> None:
        self.unlock()
        self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def lock(self) -> None:
        """Hold an exclusive lock while training so that two processes never write one run."""
        if self._lock is None:
            self._lock = take_lock(self.directory)

    def unlock(self) -> None:
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    # ------------------------------------------------------------------ reading

    def meta(self, key: str) -> Any:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        if row is None:
            raise KeyError(key)
        return json.loads(row[0])

    @property
    def config(self) -> dict[str, Any]:
        return self.meta("config")

    def _cell_columns(self) -> str:
        # schema 1 (actlab 0.1.0) had no grid: every model is in the one cell, the one group
        return "m.cell, m.grp" if self.version >= 2 else "'{}', ''"

    def models(self) -> list[dict[str, Any]]:
        """Every model: id, activation, seed, status, epochs_done, diverged_epoch, cell, group."""
        cur = self.conn.execute(
            "SELECT m.id, m.activation, m.seed, m.status, m.epochs_done, m.diverged_epoch, "
            f"{self._cell_columns()} FROM models m ORDER BY m.id"
        )
        keys = ("id", "activation", "seed", "status", "epochs_done", "diverged_epoch")
        return [
            {**dict(zip(keys, row[:6], strict=True)), "cell": json.loads(row[6]), "group": row[7]}
            for row in cur
        ]

    def epochs(self) -> list[dict[str, Any]]:
        """Every stored epoch record, joined with its model, ordered by model then epoch."""
        cur = self.conn.execute(
            "SELECT m.activation, m.seed, e.model_id, e.epoch, e.train_loss, e.val_loss, "
            "e.metrics, "
            "e.grad_norms, e.dead_fraction, e.saturated_fraction, e.diverged, e.seconds, "
            f"{self._cell_columns()} "
            "FROM epochs e JOIN models m ON m.id = e.model_id ORDER BY e.model_id, e.epoch"
        )
        rows = []
        for act, seed, mid, ep, tl, vl, metrics, gn, dead, sat, div, sec, cell, grp in cur:
            rows.append(
                {
                    "activation": act,
                    "seed": seed,
                    "cell": json.loads(cell),
                    "group": grp,
                    "model": mid,
                    "epoch": ep,
                    "train_loss": math.nan if tl is None else tl,
                    "val_loss": math.nan if vl is None else vl,
                    **json.loads(metrics),
                    "grad_norms": json.loads(gn),
                    "dead_fraction": json.loads(dead),
                    "saturated_fraction": json.loads(sat),
                    "diverged": bool(div),
                    "seconds": sec,
                }
            )
        return rows

    def checkpoint(self, group: str) -> tuple[int, bytes] | None:
        """The last committed checkpoint of ``group`` (epoch, blob), or ``None``."""
        self._writable()
        row = self.conn.execute(
            "SELECT epoch, blob FROM checkpoint WHERE grp = ?", (group,)
        ).fetchone()
        return None if row is None else (int(row[0]), bytes(row[1]))

    def _writable(self) -> None:
        if self.version < SCHEMA_VERSION:
            raise ActlabError(
                f"'{self.directory}' was written by actlab 0.1.0 (store schema {self.version}): "
                "'actlab report' reads it, but finishing it needs actlab 0.1.0; or start a new "
                "run with a new --out"
            )

    def sessions(self) -> list[dict[str, Any]]:
        cur = self.conn.execute(
            "SELECT started, finished, outcome, versions FROM sessions ORDER BY id"
        )
        return [
            {"started": s, "finished": f, "outcome": o, "versions": json.loads(v)}
            for s, f, o, v in cur
        ]

    # ------------------------------------------------------------------ writing

    def begin_session(self, about: Mapping[str, str] | None = None) -> None:
        """Start a training session; ``about`` (e.g. ``device``, ``backend``) is stored with the
        session's library versions."""
        with self.conn:
            cur = self.conn.execute(
                "INSERT INTO sessions (started, versions) VALUES (?, ?)",
                (time.time(), _dumps({**library_versions(), **dict(about or {})})),
            )
        self._session = cur.lastrowid

    def update_session(self, about: Mapping[str, str]) -> None:
        """Add to or change what the running session records (say, the devices workers used)."""
        if self._session is None:
            return
        with self.conn:
            row = self.conn.execute(
                "SELECT versions FROM sessions WHERE id = ?", (self._session,)
            ).fetchone()
            self.conn.execute(
                "UPDATE sessions SET versions = ? WHERE id = ?",
                (_dumps({**json.loads(row[0]), **dict(about)}), self._session),
            )

    def end_session(self, outcome: str) -> None:
        if self._session is None:
            return
        with contextlib.suppress(sqlite3.Error), self.conn:
            self.conn.execute(
                "UPDATE sessions SET finished = ?, outcome = ? WHERE id = ?",
                (time.time(), outcome, self._session),
            )
        self._session = None

    def save_epoch(
        self,
        epoch: int,
        records: Iterable[Any],
        model_ids: Sequence[int],
        epochs_total: int,
        blob: bytes | None,
        group: str = "",
        finished: bool = False,
    ) -> None:
        """Commit one epoch: its records (engine ``ModelEpoch``s) and the group's checkpoint (if
        ``blob``), atomically; ``finished``: the group is done, its checkpoint goes.

        ``model_ids[r.job]`` maps the engine's job index to the stored model id. An epoch already
        stored (retrained after an older checkpoint) is replaced, and ``epochs_done`` never
        goes back.
        """
        rows, done, diverged, running = [], [], [], []
        for r in records:
            mid = model_ids[r.job]
            rows.append(
                (
                    mid,
                    int(r.epoch),
                    float(r.train_loss),
                    float(r.val_loss),
                    _dumps({k: float(v) for k, v in r.metrics.items()}),
                    _dumps([float(x) for x in r.grad_norms]),
                    _dumps([float(x) for x in r.dead_fraction]),
                    _dumps([float(x) for x in r.saturated_fraction]),
                    int(bool(r.diverged)),
                    float(r.seconds),
                )
            )
            if r.diverged:
                diverged.append((int(r.epoch), int(r.epoch), mid))
            elif r.epoch >= epochs_total or getattr(r, "stopped", False):  # (early stopping)
                done.append((int(r.epoch), mid))
            else:
                running.append((int(r.epoch), mid))
        with self.conn:  # one transaction: all or nothing
            self.conn.executemany(
                "INSERT OR REPLACE INTO epochs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows
            )
            self.conn.executemany(
                "UPDATE models SET epochs_done = ?, status = 'diverged', diverged_epoch = ? "
                "WHERE id = ?",
                diverged,
            )
            self.conn.executemany(
                "UPDATE models SET epochs_done = ?, status = 'done' WHERE id = ?", done
            )
            self.conn.executemany(
                "UPDATE models SET epochs_done = max(epochs_done, ?) WHERE id = ?", running
            )
            if blob is not None:
                self._put_checkpoint(group, epoch, blob)
            elif finished:  # its checkpoint is no longer needed
                self.conn.execute("DELETE FROM checkpoint WHERE grp = ?", (group,))

    def save_checkpoint(self, group: str, epoch: int, blob: bytes) -> None:
        """Store ``group``'s checkpoint after ``epoch`` (its records are already stored)."""
        with self.conn:
            self._put_checkpoint(group, epoch, blob)

    def _put_checkpoint(self, group: str, epoch: int, blob: bytes) -> None:
        self.conn.execute("INSERT OR REPLACE INTO checkpoint (grp, epoch, blob) VALUES (?, ?, ?)",
                          (group, int(epoch), sqlite3.Binary(blob)))  # fmt: skip
        self.checkpoint_bytes += len(blob)

    def drop_checkpoint(self) -> None:
        """Free every checkpoint once every model is finished (they are the bulk of the file)."""
        with self.conn:
            self.conn.execute("DELETE FROM checkpoint")
        with contextlib.suppress(sqlite3.Error):
            self.conn.execute("VACUUM")

    def reset_models(self, ids: Iterable[int]) -> None:
        """Forget partial records of models that will be retrained from scratch (no checkpoint)."""
        ids = list(ids)
        with self.conn:
            self.conn.executemany("DELETE FROM epochs WHERE model_id = ?", [(i,) for i in ids])
            self.conn.executemany(
                "UPDATE models SET epochs_done = 0, status = 'running', diverged_epoch = NULL "
                "WHERE id = ?",
                [(i,) for i in ids],
            )


def _open_failed(path: Path, exc: sqlite3.DatabaseError) -> ActlabError:
    """Why a results database could not be opened: a read-only place is not a damaged file."""
    folder = path.parent
    read_only = ""
    with contextlib.suppress(OSError):
        if os.statvfs(folder).f_flag & os.ST_RDONLY:
            read_only = "read-only file system"
    if not read_only and not (os.access(folder, os.W_OK) and os.access(path, os.W_OK | os.R_OK)):
        read_only = "permission denied"
    message = str(exc)
    if read_only or "readonly" in message or "unable to open" in message:
        reason = read_only or message
        return ActlabError(
            f"cannot open '{path}' for writing ({reason}); actlab keeps its lock, journal and "
            f"reports beside it. Copy the run folder somewhere writable (cp -r {folder} NEW) "
            "and use NEW"
        )
    return ActlabError(
        f"'{path}' is not a readable actlab results database ({message}); choose another --out"
    )


def check_integrity(path: Path) -> None:
    """Refuse a damaged database with one line saying what is wrong and what can be recovered.

    ``PRAGMA quick_check`` (the cheap form of integrity_check: it reads every page, skips index
    cross-checks) runs on a read-only connection, so a damaged file is never written to; a torn
    page in the middle of the file otherwise surfaced as ``sqlite3.DatabaseError`` deep inside
    ``report`` or ``--resume``. Cost: 87 ms for a 50 MB file (a large checkpoint), 0.6 ms for a
    finished run's 0.6 MB (measured on a loaded, shared 2-core machine).
    """
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=10.0)
    except sqlite3.Error:
        return  # cannot open read-only (e.g. a live -wal without -shm): the normal open decides
    try:
        try:
            problems = [str(r[0]) for r in conn.execute("PRAGMA quick_check(3)").fetchall()]
        except sqlite3.DatabaseError as err:
            problems = [str(err)]
        if problems == ["ok"]:
            return
        readable = []
        for table in ("meta", "models", "epochs"):
            try:
                n = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                readable.append(f"{table} ({n} rows)")
            except sqlite3.DatabaseError:
                pass
    finally:
        conn.close()
    first = problems[0].replace("*** in database main ***", "").strip().splitlines()[0]
    can = ", ".join(readable) if readable else "nothing"
    raise ActlabError(
        f"'{path}' is damaged ({first}); actlab leaves it untouched. Still readable: {can}. "
        f"Keep a copy, try 'sqlite3 {path} .recover' to salvage rows, and rerun the comparison "
        "with a new --out"
    )


def take_lock(directory: Path) -> Any:
    """Lock ``directory/.lock`` (exclusive, non-blocking) and record who holds it; the handle.

    Taken before a new run's database is created, so that of two ``actlab compare`` started at
    once into one new folder the second stops with a message naming the first (pid and start
    time), before it has written anything. None where the OS has no ``fcntl`` (no guard there).
    """
    try:
        import fcntl
    except ImportError:  # not POSIX: no cross-process guard
        return None
    path = directory / ".lock"
    try:
        handle = open(path, "a+")  # noqa: SIM115 - held until released; "a+": keep the holder's note
    except OSError as err:
        raise ActlabError(
            f"cannot write in '{directory}': {err.strerror}; choose a folder you may write to"
        ) from None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise ActlabError(
            f"another 'actlab compare' ({holder}) is writing to '{directory}' right now; "
            "wait for it to finish, or choose another --out"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()}, started {time.strftime('%Y-%m-%d %H:%M:%S')}")
    handle.flush()
    return handle
