"""Persistent content-addressed store: one SQLite database (WAL), one row per key, atomic batch commits.

A damaged database (truncated, overwritten, bad pages) is never fatal: it is moved aside as
``store.sqlite.corrupt-<timestamp>``, a fresh store starts and one warning says so; what it held is recomputed.
"""

from __future__ import annotations

import sqlite3
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from miakit.targets.fingerprint import cache_root

T = TypeVar("T")
# PRAGMA quick_check reads every page: done on open for stores up to this size, larger ones are checked by use.
QUICK_CHECK_MAX_BYTES = 512 << 20


def warn(message: str) -> None:
    """One plain warning line on stderr (user paths printed literally, no markup)."""
    print(f"warning: {message}", file=sys.stderr, flush=True)


def damaged(exc: sqlite3.DatabaseError) -> bool:
    """Whether an SQLite error means a damaged database (not a busy, read-only or missing one)."""
    if not isinstance(exc, sqlite3.OperationalError):
        return True  # SQLITE_CORRUPT, SQLITE_NOTADB and the failed quick_check
    return any(word in str(exc).lower() for word in ("malformed", "not a database", "corrupt"))


class Store:
    """Key -> compressed blob. A killed writer leaves only whole, committed rows behind."""

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root is not None else cache_root()
        self.root.mkdir(parents=True, exist_ok=True)
        self.path = self.root / "store.sqlite"
        self.moved_aside: list[Path] = []  # damaged databases this store replaced (for the manifest)
        self.bad_values = 0  # stored values that could not be decoded (treated as misses, then replaced)
        try:
            self._conn = self._open(check=True)
        except sqlite3.DatabaseError as exc:
            if not damaged(exc):
                raise
            self._recover(exc)

    def _open(self, *, check: bool) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("CREATE TABLE IF NOT EXISTS entries (key TEXT PRIMARY KEY, value BLOB NOT NULL)")
            if check and self.path.stat().st_size <= QUICK_CHECK_MAX_BYTES:
                problems = [row[0] for row in conn.execute("PRAGMA quick_check(5)").fetchall()]
                if problems != ["ok"]:
                    raise sqlite3.DatabaseError("; ".join(str(p) for p in problems))
        except BaseException:
            conn.close()
            raise
        return conn

    def _recover(self, exc: BaseException) -> None:
        """Move the damaged database (and its WAL and shared-memory files) aside and start a fresh one."""
        conn = getattr(self, "_conn", None)
        if conn is not None:
            conn.close()
        stamp = time.strftime("%Y%m%d-%H%M%S")
        aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        n = 1
        while aside.exists():
            n += 1
            aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}-{n}")
        for suffix in ("", "-wal", "-shm"):
            part = Path(f"{self.path}{suffix}")
            if part.exists():
                part.replace(Path(f"{aside}{suffix}"))
        self.moved_aside.append(aside)
        reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        warn(
            f"the signal store {self.path} is damaged ({reason}); it was moved to {aside} and a fresh store "
            "started: signals it held will be recomputed."
        )
        self._conn = self._open(check=False)

    def _guarded(self, operation: Callable[[], T], fallback: Callable[[], T]) -> T:
        """``operation()``; on a damaged database, recover and return ``fallback()`` (run on the fresh store)."""
        try:
            return operation()
        except sqlite3.DatabaseError as exc:
            if not damaged(exc):
                raise
            self._recover(exc)
            return fallback()

    def get_many(self, keys: Iterable[str]) -> dict[str, bytes]:
        """The stored values of ``keys`` (missing keys left out; a damaged store reads as empty)."""
        keys = list(dict.fromkeys(keys))

        def read() -> dict[str, bytes]:
            found: dict[str, bytes] = {}
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                marks = ",".join("?" * len(chunk))
                query = f"SELECT key, value FROM entries WHERE key IN ({marks})"
                for key, value in self._conn.execute(query, chunk).fetchall():
                    if isinstance(value, bytes):
                        found[key] = value
                    else:  # a value of another type (text, number) is garbage: a miss, replaced on write
                        self.bad_value(key)
            return found

        return self._guarded(read, dict)

    def bad_value(self, key: str) -> None:
        """Note a stored value that could not be read: it counts as a miss and the recomputed one replaces it."""
        if self.bad_values == 0:
            warn(
                f"the signal store {self.path} holds values that cannot be read (first: key {key[:16]}…); they "
                "are recomputed and replaced."
            )
        self.bad_values += 1

    def put_many(self, items: dict[str, bytes]) -> None:
        """Write all items in one transaction: after a kill either all of them are there or none."""
        if not items:
            return

        def write() -> None:
            with self._conn:
                self._conn.execute("BEGIN IMMEDIATE")
                self._conn.executemany("INSERT OR REPLACE INTO entries VALUES (?, ?)", list(items.items()))

        self._guarded(write, write)

    def __len__(self) -> int:
        return self._guarded(lambda: int(self._conn.execute("SELECT COUNT(*) FROM entries").fetchone()[0]), int)

    def close(self) -> None:
        self._conn.close()


def decode_or_miss(store: Any, key: str, blob: bytes, decode: Callable[[bytes], T]) -> T | None:
    """``decode(blob)``, or None (a miss) when the stored value is garbage; the store is told, when it can be."""
    try:
        return decode(blob)
    except Exception:  # zlib.error, ValueError, struct.error, UnicodeDecodeError, ...: any unreadable value
        note = getattr(store, "bad_value", None)
        if callable(note):
            note(key)
        return None
