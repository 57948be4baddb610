"""The run directory's SQLite store (``DIR/results.sqlite``): each epoch committed as it ends, the
stored configuration, checkpoints; a file is written only once recognised (docs/ARCHITECTURE.md)."""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import sqlite3
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from actlab import __version__
from actlab.compare.config import SECTIONS, CompareConfig, flat_from_stored
from actlab.errors import ActlabError


@dataclass
class ModelEpoch:
    """What was measured for one model in one epoch, as training reports it (``job``: its index
    in the group's jobs) and the store keeps it (one ``epochs`` row; diverged: NaN metrics)."""

    job: int
    epoch: int
    train_loss: float
    val_loss: float
    metrics: dict[str, float]
    grad_norms: list[float]
    dead_fraction: list[float]
    saturated_fraction: list[float]
    diverged: bool
    seconds: float
    stopped: bool = False  # early stopping (patience): this is the model's last record


# the columns of an `epochs` row after model_id -> their type: the record's fields (job: model_id)
EPOCH_COLUMNS = {f.name: str(f.type) for f in fields(ModelEpoch) if f.name not in ("job",
                                                                                   "stopped")}

FILENAME = "results.sqlite"
SCHEMA_VERSION = 2
BUSY_S = 10.0  # how long a statement waits for another connection's lock before it fails
# "actL": the SQLite header's application id of stores made since it was introduced (0 before)
APPLICATION_ID = int.from_bytes(b"actL", "big")
_MAGIC = b"SQLite format 3\x00"

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


def _column(value: Any, kind: str) -> Any:
    """One field of a record as its ``epochs`` column: the lists and metrics as JSON."""
    if kind in ("int", "float"):
        return int(value) if kind == "int" else float(value)
    if kind == "bool":
        return int(bool(value))
    if kind.startswith("dict"):
        return _dumps({k: float(v) for k, v in value.items()})
    return _dumps([float(x) for x in value])


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
        """The writing connection to a store that is recognised or was just made (WAL mode)."""
        try:
            conn = sqlite3.connect(cls.path(directory), timeout=BUSY_S)
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
        models = [(i, job[0], job[1], _dumps(dict(job[2] if len(job) > 2 else {})),
                   job[3] if len(job) > 3 else "") for i, job in enumerate(jobs)]  # fmt: skip
        _initialise(cls.path(d), meta, models)
        store = cls(d, cls._connect(d))
        store._lock = lock
        return store

    @classmethod
    def open(cls, directory: str | Path) -> Store:
        """An existing run's database, for reading and writing, once :func:`recognise` has read
        it (read-only) as a complete actlab store; anything else is refused, untouched."""
        d = Path(directory)
        if not cls.exists(d):
            raise ActlabError(
                f"'{d}' holds no actlab results ({FILENAME} is missing); "
                "give the folder that 'actlab compare --out' wrote"
            )
        version = recognise(cls.path(d))
        store = cls(d, cls._connect(d))
        store.version = version
        return store

    def close(self) -> None:
        self.unlock()
        self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def lock(self) -> None:
        """Hold an exclusive lock while training so that two processes never write one run, and
        make sure no other program holds SQLite's write lock (a ``BEGIN EXCLUSIVE`` in a shell)."""
        if self._lock is None:
            self._lock = take_lock(self.directory)
        try:  # waits the connection's busy timeout for a writer that finishes
            self.conn.execute("BEGIN IMMEDIATE")
            self.conn.execute("ROLLBACK")
        except sqlite3.OperationalError as err:
            if is_locked(err):
                raise locked_error(self.path(self.directory)) from None
            raise

    def unlock(self) -> None:
        """Release the folder lock and remove its file (a finished run leaves no ``.lock``)."""
        release_lock(self._lock)
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
            "SELECT m.activation, m.seed, e.model_id, "
            + "".join(f"e.{c}, " for c in EPOCH_COLUMNS) + f"{self._cell_columns()} "
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

    def add_meta(self, key: str, value: Any) -> None:
        """Add a meta entry the run learns after it was created (the baselines, fit while the
        first groups train); an entry already there is kept."""
        with self.conn:
            self.conn.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)", (key, _dumps(value))
            )

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
        stored (retrained after an older checkpoint, or from scratch) is replaced in the same
        transaction that commits its replacement, and ``epochs_done`` never goes back: nothing is
        ever deleted before what replaces it is committed. (Only a retrained model that diverges
        earlier than its stored records, which happens on another device, drops the records after
        its divergence, in the transaction that records it.)
        """
        rows, done, diverged, running = [], [], [], []
        for r in records:
            mid = model_ids[r.job]
            rows.append((mid, *(_column(getattr(r, c), k) for c, k in EPOCH_COLUMNS.items())))
            if r.diverged:
                diverged.append((int(r.epoch), int(r.epoch), mid))
            elif r.epoch >= epochs_total or getattr(r, "stopped", False):  # (early stopping)
                done.append((int(r.epoch), mid))
            else:
                running.append((int(r.epoch), mid))
        with self.conn:  # one transaction: all or nothing
            self.conn.executemany(
                f"INSERT OR REPLACE INTO epochs VALUES (?{', ?' * len(EPOCH_COLUMNS)})", rows
            )
            self.conn.executemany(
                "UPDATE models SET epochs_done = ?, status = 'diverged', diverged_epoch = ? "
                "WHERE id = ?",
                diverged,
            )
            self.conn.executemany(
                "DELETE FROM epochs WHERE epoch > ? AND model_id = ?", [d[1:] for d in diverged]
            )
            self.conn.executemany(
                "UPDATE models SET epochs_done = ?, status = 'done', diverged_epoch = NULL "
                "WHERE id = ?",
                done,
            )
            # a model stored as diverged that trains on past that epoch (retrained elsewhere) runs
            self.conn.executemany(
                "UPDATE models SET epochs_done = max(epochs_done, ?1), "
                "status = CASE WHEN status = 'diverged' AND diverged_epoch <= ?1 THEN 'running' "
                "ELSE status END, diverged_epoch = CASE WHEN status = 'diverged' AND "
                "diverged_epoch <= ?1 THEN NULL ELSE diverged_epoch END WHERE id = ?2",
                running,
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
    if is_locked(exc):
        return locked_error(path)
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


# ------------------------------------------------------------------ creating and recognising

# what every store has (schema 1 = actlab 0.1.0 and 2); schema 2 adds models.cell/grp, checkpoint
_TABLES = {
    "meta": ("key", "value"),
    "models": ("id", "activation", "seed", "status", "epochs_done", "diverged_epoch"),
    "epochs": ("model_id", *EPOCH_COLUMNS),
    "sessions": ("id", "started", "finished", "outcome", "versions"),
}  # fmt: skip
_TABLES_2 = {"models": ("cell", "grp"), "checkpoint": ("grp", "epoch", "blob")}
_META = {"schema_version": int, "config": dict, "fingerprint": str, "data": dict,
         "versions": dict, "command": str}  # fmt: skip
_LEAVE = "actlab leaves it untouched"


def _initialise(path: Path, meta: Mapping[str, Any], models: Sequence[tuple[Any, ...]]) -> None:
    """Write a new store at ``path`` (which must not exist) in one transaction, before it is
    switched to WAL: its header (application id), tables and meta are then in the main file
    from the start, where :func:`recognise` reads them without a live journal."""
    with open(path, "xb"):  # never over an existing file
        pass
    conn = sqlite3.connect(path, timeout=BUSY_S)
    try:
        # large pages: a checkpoint blob (megabytes) is written ~5x faster than with 4 KiB
        # overflow pages; must be set before the first write
        conn.executescript(
            f"PRAGMA page_size=65536; PRAGMA application_id={APPLICATION_ID}; "
            f"PRAGMA user_version={SCHEMA_VERSION}; BEGIN; {_SCHEMA}"
        )
        conn.executemany("INSERT INTO meta (key, value) VALUES (?, ?)",
                         [(k, _dumps(v)) for k, v in meta.items()])  # fmt: skip
        conn.executemany("INSERT INTO models (id, activation, seed, status, cell, grp) "
                         "VALUES (?, ?, ?, 'running', ?, ?)", models)  # fmt: skip
        conn.commit()
    finally:
        conn.close()


def _probe(path: Path) -> sqlite3.Connection:
    """A read-only connection that creates and changes nothing beside ``path``.

    ``mode=ro`` alone is not enough: on a database in WAL mode it creates ``-wal`` and ``-shm``
    files (and cannot remove them). With no live journal (no ``-wal``, or an empty one) the main
    file holds everything and is opened ``immutable`` (no journal, no locks, nothing created); a
    live ``-wal`` (a run in progress, or one killed) is read through its existing ``-shm``.
    """
    wal, shm = Path(f"{path}-wal"), Path(f"{path}-shm")
    live = wal.is_file() and wal.stat().st_size > 0 and shm.is_file()
    mode = "mode=ro" if live else "mode=ro&immutable=1"
    return sqlite3.connect(f"{path.resolve().as_uri()}?{mode}", uri=True, timeout=BUSY_S)


def recognise(path: Path) -> int:
    """Check, read-only, that ``path`` is a complete, undamaged actlab store; its schema version.

    Refused with one line (and left byte for byte as it was): an empty file, a file that is not
    SQLite, another program's database (another application id, or no actlab tables), an actlab
    store that lacks tables, columns or meta entries, a damaged one (``PRAGMA quick_check``), one
    from a newer actlab. Stores made before the application id was set (id 0) are recognised by
    their tables.
    """
    try:
        with open(path, "rb") as f:
            header = f.read(100)
    except OSError as err:
        raise ActlabError(f"cannot read '{path}': {err.strerror}") from None
    if not header:
        raise ActlabError(
            f"'{path}' is an empty file, not actlab results; {_LEAVE}. Give the folder an "
            "'actlab compare' run wrote (or another --out)"
        )
    if not header.startswith(_MAGIC):
        raise ActlabError(
            f"'{path}' is not an SQLite database, so not actlab results; {_LEAVE}. Give the "
            "folder an 'actlab compare' run wrote (or another --out)"
        )
    try:
        conn = _probe(path)
    except sqlite3.Error as err:
        raise ActlabError(f"cannot read '{path}' ({err}); {_LEAVE}") from None
    try:
        columns = _check_tables(conn, path)
        _quick_check(conn, path)
        return _check_meta(conn, path, columns)
    finally:
        conn.close()


def _check_tables(conn: sqlite3.Connection, path: Path) -> dict[str, set[str]]:
    """The application id and the tables (with their columns) of an actlab store; the columns
    of its tables."""
    try:
        app = int(conn.execute("PRAGMA application_id").fetchone()[0])
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        columns = {t: {r[1] for r in conn.execute(f"PRAGMA table_info('{t}')")}
                   for t in names if t in _TABLES or t in _TABLES_2}  # fmt: skip
    except sqlite3.DatabaseError as err:
        raise _damaged(conn, path, str(err)) from None
    has_meta = set(_TABLES["meta"]) <= columns.get("meta", set())
    ours = app == APPLICATION_ID or (app == 0 and has_meta)
    if not ours:
        whose = f"its tables: {', '.join(sorted(names)[:8])}" if names else "it has no tables"
        if app:
            whose = f"its application id is {app:#x}"
        raise ActlabError(
            f"'{path}' is another program's SQLite database, not actlab results ({whose}); "
            f"{_LEAVE}. Give the folder an 'actlab compare' run wrote (or another --out)"
        )
    missing = [t for t in _TABLES if t not in columns]
    missing += [f"{t}.{c}" for t, cols in _TABLES.items() if t in columns
                for c in cols if c not in columns[t]]  # fmt: skip
    if missing:
        raise _incomplete(path, f"missing {', '.join(missing)}")
    return columns


def _check_meta(conn: sqlite3.Connection, path: Path, columns: dict[str, set[str]]) -> int:
    """The meta entries every store has, each of its type; the stored configuration readable;
    schema 2's extra columns; the schema version."""
    rows = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    meta: dict[str, Any] = {}
    for key, kind in _META.items():
        if key not in rows:
            raise _incomplete(path, f"meta has no '{key}' entry")
        try:
            meta[key] = json.loads(rows[key])
        except (TypeError, ValueError):
            raise _incomplete(path, f"meta '{key}' is not JSON") from None
        if not isinstance(meta[key], kind) or isinstance(meta[key], bool):
            got, want = _json_type(meta[key]), _json_type(kind())
            raise _incomplete(path, f"meta '{key}' is {got}, not {want}")
    version = meta["schema_version"]
    if version > SCHEMA_VERSION:
        raise ActlabError(
            f"'{path}' was written by a newer actlab (store schema {version}, "
            f"this one reads up to {SCHEMA_VERSION}); upgrade actlab to read it"
        )
    if version < 1:
        raise _incomplete(path, f"meta 'schema_version' is {version}")
    if version >= 2:
        missing = [f"{t}.{c}" for t, cols in _TABLES_2.items() for c in cols
                   if c not in columns.get(t, ())]  # fmt: skip
        if missing:
            raise _incomplete(path, f"missing {', '.join(missing)}")
    _check_config(meta["config"], path)
    return version


def _check_config(stored: dict[str, Any], path: Path) -> None:
    """The stored configuration must build a :class:`CompareConfig` (this version's or 0.1.0's)."""
    for section in (*SECTIONS, "train"):  # (0.1.0: data, train)
        if section in stored and not isinstance(stored[section], dict):
            got = _json_type(stored[section])
            raise _incomplete(path, f"its stored config's '{section}' is {got}, not an object")
    try:
        CompareConfig.from_settings(flat_from_stored(stored))
    except ActlabError as err:
        raise _incomplete(path, f"its stored configuration is invalid: {err}") from None
    except (AttributeError, KeyError, TypeError, ValueError) as err:
        what = f"{type(err).__name__}: {err}"[:120]
        raise _incomplete(path, f"its stored configuration is unreadable ({what})") from None


def _json_type(value: Any) -> str:
    """What a JSON value is, in JSON's words: 'an object', 'a list', 'a string', ..."""
    kinds = ((bool, "true/false"), (dict, "an object"), (list, "a list"), (str, "a string"),
             (int, "a whole number"), (float, "a number"))  # fmt: skip
    return next((name for t, name in kinds if isinstance(value, t)), "null")


def _incomplete(path: Path, what: str) -> ActlabError:
    return ActlabError(
        f"'{path}' is not a complete actlab results database ({what}); {_LEAVE}. Give the "
        "folder an 'actlab compare' run wrote, or rerun the comparison with a new --out"
    )


def _quick_check(conn: sqlite3.Connection, path: Path) -> None:
    """``PRAGMA quick_check`` on the read-only probe: a damaged file is refused, never written.

    (The cheap form of integrity_check: it reads every page, skips index cross-checks.) A torn
    page in the middle of the file otherwise surfaced as ``sqlite3.DatabaseError`` deep inside
    ``report`` or ``--resume``. Cost: 87 ms for a 50 MB file (a large checkpoint), 0.6 ms for a
    finished run's 0.6 MB (measured on a loaded, shared 2-core machine).
    """
    try:
        problems = [str(r[0]) for r in conn.execute("PRAGMA quick_check(3)").fetchall()]
    except sqlite3.DatabaseError as err:
        problems = [str(err)]
    if problems != ["ok"]:
        raise _damaged(conn, path, problems[0])


def _damaged(conn: sqlite3.Connection, path: Path, problem: str) -> ActlabError:
    """The one line for a damaged file: what is wrong, what is still readable, how to salvage."""
    readable = []
    for table in ("meta", "models", "epochs"):
        try:
            n = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            readable.append(f"{table} ({n} rows)")
        except sqlite3.DatabaseError:
            pass
    first = (problem.replace("*** in database main ***", "").strip().splitlines() or ["?"])[0]
    can = ", ".join(readable) if readable else "nothing"
    return ActlabError(
        f"'{path}' is damaged ({first}); {_LEAVE}. Still readable: {can}. "
        f"Keep a copy, try 'sqlite3 {path} .recover' to salvage rows, and rerun the comparison "
        "with a new --out"
    )


def is_locked(err: BaseException) -> bool:
    """Whether an SQLite error means another connection holds the database's lock."""
    text = str(err).lower()
    return isinstance(err, sqlite3.OperationalError) and ("locked" in text or "busy" in text)


def locked_error(path: Path) -> ActlabError:
    """The one line for a store that another process holds locked (SQLite's write lock)."""
    return ActlabError(
        f"'{path}' is locked by another process (SQLite: database is locked): a program holds "
        "its write lock (an sqlite3 shell in a transaction, a database browser, another tool). "
        "Wait for it to finish or stop it, then run the command again; the stored results are "
        "intact"
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
    for _ in range(5):  # a holder that releases meanwhile unlinks the file: lock the new one
        handle = _lock_file(path, directory, fcntl)
        if _still_linked(handle, path):
            break
        handle.close()
    else:
        raise ActlabError(f"cannot take the lock in '{directory}'; run the command again")
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()}, started {time.strftime('%Y-%m-%d %H:%M:%S')}")
    handle.flush()
    return handle


def _lock_file(path: Path, directory: Path, fcntl: Any) -> Any:
    """Open ``path`` and lock it (exclusive, non-blocking); the one line naming a live holder."""
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
    return handle


def _still_linked(handle: Any, path: Path) -> bool:
    """Whether the locked file is still the one at ``path`` (not unlinked by a releasing holder)."""
    try:
        return os.stat(path).st_ino == os.fstat(handle.fileno()).st_ino
    except OSError:
        return False


def release_lock(handle: Any) -> None:
    """Remove the lock file while still holding it, then release it; None is a no-op.

    Unlinking before unlocking means that a process waiting on the old file sees, once it gets
    the lock, that the file is gone (``_still_linked``) and locks the new one instead.
    """
    if handle is None:
        return
    with contextlib.suppress(OSError):
        os.unlink(handle.name)
    handle.close()
