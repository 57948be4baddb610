"""The search's SQLite state, ``OUT/search.sqlite``: written as it goes, read by ``--resume``.

Tables: ``meta`` (key -> JSON: settings, plan, phase times, status), ``candidates`` (every screened
candidate: its ``(b, u1, u2)``, formula and features), ``rungs`` (one row per raced candidate and
rung), ``rung_state`` (a finished rung's survivors with their weights and optimiser state, so a
resume continues from it) and ``finalists``. Every write is its own transaction.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from actlab.compare.store import _MAGIC, _probe
from actlab.errors import ActlabError

__all__ = ["APPLICATION_ID", "FILE", "State"]

FILE = "search.sqlite"
# Set at creation; a file without it is not ours and is never written (the store's rule).
APPLICATION_ID = int.from_bytes(b"actS", "big")
_TABLES = {"meta", "candidates", "rungs", "rung_state", "finalists"}
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS candidates (id INTEGER PRIMARY KEY, slots TEXT NOT NULL,
    formula TEXT NOT NULL, features TEXT NOT NULL, score REAL NOT NULL);
CREATE TABLE IF NOT EXISTS rungs (rung INTEGER NOT NULL, cand INTEGER NOT NULL,
    epochs INTEGER NOT NULL, val_score REAL NOT NULL, val_loss REAL NOT NULL,
    curve TEXT NOT NULL, betas TEXT NOT NULL, PRIMARY KEY (rung, cand));
CREATE TABLE IF NOT EXISTS rung_state (rung INTEGER PRIMARY KEY, state BLOB NOT NULL,
    survivors TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS finalists (name TEXT PRIMARY KEY, cand INTEGER NOT NULL,
    formula TEXT NOT NULL, file TEXT NOT NULL, betas TEXT NOT NULL);
"""


def _num(x: float) -> float:
    return x if x == x and abs(x) != float("inf") else (-1e308 if x != x or x < 0 else 1e308)


class State:
    """One search folder's database."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.db = sqlite3.connect(path, isolation_level=None)

    @classmethod
    def exists(cls, directory: Path) -> bool:
        return (directory / FILE).is_file()

    @classmethod
    def create(cls, directory: Path) -> State:
        """A new state file (refuses to touch one that is already there)."""
        path = directory / FILE
        if path.exists():
            raise ActlabError(f"'{path}' already exists; choose a new --out")
        st = cls(path)
        st.db.executescript(f"PRAGMA application_id={APPLICATION_ID};" + _SCHEMA)
        return st

    @classmethod
    def open(cls, directory: Path) -> State:
        """An existing state file, after a read-only check that it is one (else left as it is)."""
        path = directory / FILE
        cls.recognise(path)
        return cls(path)

    @staticmethod
    def recognise(path: Path) -> None:
        """One line, and the file untouched, unless ``path`` is an actlab search's state."""
        leave = "it was left as it is; give the --out of an 'actlab search' run"
        with open(path, "rb") as f:
            if not f.read(100).startswith(_MAGIC):
                raise ActlabError(f"'{path}' is not an SQLite database; {leave}")
        try:
            conn = _probe(path)
            try:
                app = int(conn.execute("PRAGMA application_id").fetchone()[0])
                tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
            finally:
                conn.close()
        except sqlite3.Error as err:
            raise ActlabError(f"cannot read '{path}' ({err}); {leave}") from None
        if app != APPLICATION_ID or not tables >= _TABLES:
            raise ActlabError(f"'{path}' is not an actlab search's state; {leave}")

    def close(self) -> None:
        self.db.close()

    # ----------------------------------------------------------------------------------- meta

    def get(self, key: str, default: Any = None) -> Any:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return default if row is None else json.loads(row[0])

    def set(self, key: str, value: Any) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))

    # ---------------------------------------------------------------------------- candidates

    def put_candidates(self, rows: list[tuple[tuple[str, str, str], str, dict[str, Any]]]) -> None:
        with self.db:
            self.db.execute("BEGIN")
            self.db.executemany(
                "INSERT INTO candidates VALUES (?, ?, ?, ?, ?)",
                [(i, json.dumps(s), f, json.dumps(feat), _num(feat["score"]))
                 for i, (s, f, feat) in enumerate(rows)],
            )  # fmt: skip

    def candidates(self) -> list[dict[str, Any]]:
        rows = self.db.execute("SELECT id, slots, formula, features FROM candidates ORDER BY id")
        return [{"id": i, "slots": tuple(json.loads(s)), "formula": f, **json.loads(feat)}
                for i, s, f, feat in rows]  # fmt: skip

    # --------------------------------------------------------------------------------- rungs

    def put_rung(self, rung: int, rows: list[dict[str, Any]], state: bytes,
                 survivors: list[int]) -> None:  # fmt: skip
        """A finished rung, all at once: its rows, then its survivors' state."""
        with self.db:
            self.db.execute("BEGIN")
            self.db.executemany(
                "INSERT OR REPLACE INTO rungs VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(r["rung"], r["cand"], r["epochs"], _num(r["val_score"]), _num(r["val_loss"]),
                  json.dumps(r["curve"]), json.dumps(r["betas"])) for r in rows],
            )  # fmt: skip
            self.db.execute("INSERT OR REPLACE INTO rung_state VALUES (?, ?, ?)",
                            (rung, state, json.dumps(survivors)))  # fmt: skip

    def rungs(self) -> dict[int, dict[str, Any]]:
        """rung -> {"rows", "state", "survivors"} of every finished rung."""
        out: dict[int, dict[str, Any]] = {}
        for rung, state, surv in self.db.execute("SELECT rung, state, survivors FROM rung_state"):
            out[rung] = {"rows": [], "state": state, "survivors": json.loads(surv)}
        for r, c, e, s, lo, curve, betas in self.db.execute(
            "SELECT * FROM rungs ORDER BY rung, cand"
        ):
            if r in out:
                out[r]["rows"].append({"rung": r, "cand": c, "epochs": e, "val_score": s,
                                       "val_loss": lo, "curve": json.loads(curve),
                                       "betas": json.loads(betas)})  # fmt: skip
        return out

    # ----------------------------------------------------------------------------- finalists

    def put_finalist(self, name: str, cand: int, formula: str, file: str,
                     betas: list[float]) -> None:  # fmt: skip
        self.db.execute("INSERT OR REPLACE INTO finalists VALUES (?, ?, ?, ?, ?)",
                        (name, cand, formula, file, json.dumps(betas)))  # fmt: skip

    def finalists(self) -> list[dict[str, Any]]:
        rows = self.db.execute(
            "SELECT name, cand, formula, file, betas FROM finalists ORDER BY name"
        )
        return [{"name": n, "cand": c, "formula": f, "file": p, "betas": json.loads(b)}
                for n, c, f, p, b in rows]  # fmt: skip
