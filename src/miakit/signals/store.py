"""Persistent content-addressed store: one SQLite database (WAL), one row per key, atomic batch commits."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from pathlib import Path

from miakit.targets.fingerprint import cache_root


class Store:
    """Key -> compressed blob. A killed writer leaves only whole, committed rows behind."""

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root is not None else cache_root()
        self.root.mkdir(parents=True, exist_ok=True)
        self.path = self.root / "store.sqlite"
        self._conn = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("CREATE TABLE IF NOT EXISTS entries (key TEXT PRIMARY KEY, value BLOB NOT NULL)")

    def get_many(self, keys: Iterable[str]) -> dict[str, bytes]:
        keys = list(dict.fromkeys(keys))
        found: dict[str, bytes] = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            query = f"SELECT key, value FROM entries WHERE key IN ({marks})"
            found.update(self._conn.execute(query, chunk).fetchall())
        return found

    def put_many(self, items: dict[str, bytes]) -> None:
        """Write all items in one transaction: after a kill either all of them are there or none."""
        if not items:
            return
        with self._conn:
            self._conn.execute("BEGIN IMMEDIATE")
            self._conn.executemany("INSERT OR REPLACE INTO entries VALUES (?, ?)", list(items.items()))

    def __len__(self) -> int:
        return int(self._conn.execute("SELECT COUNT(*) FROM entries").fetchone()[0])

    def close(self) -> None:
        self._conn.close()
