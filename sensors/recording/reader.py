"""Reading a session file: metadata, stream descriptions, random access to samples by index, gaps, events."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import numpy as np

from sensors.recording.errors import RecordingError
from sensors.recording.schema import APPLICATION_ID, REQUIRED_TABLES, SCHEMA_VERSION, check_header
from sensors.recording.writer import storage_dtype
from sensors.stream import ChannelInfo, StreamInfo


class SessionReader:
    """Read a ``.medius`` session file.

    Opening checks the file is a complete SQLite database, is a Medius session and has a schema version this
    code reads; anything else raises one `RecordingError` naming the file and the reason. A file left by a
    killed recorder opens normally: SQLite replays the committed part of its write-ahead log.

    A reader may be open while a `SessionWriter` is still writing: it sees the last commit.
    """

    def __init__(self, path: os.PathLike | str):
        self.path = Path(path)
        if not self.path.is_file():
            raise RecordingError(f"{self.path}: no such session file")
        problem = check_header(self.path)
        if problem:
            raise RecordingError(f"{self.path}: not a readable Medius session: {problem}")
        try:
            # Read-write connection (only ever used for reading) so SQLite can replay a crashed writer's WAL.
            mode = "rw" if os.access(self.path, os.W_OK) else "ro"
            self._conn = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode={mode}", uri=True,
                                         check_same_thread=False)
        except sqlite3.Error as exc:
            raise RecordingError(f"{self.path}: cannot open: {exc}") from exc
        try:
            self._load()
        except sqlite3.Error as exc:
            self._conn.close()
            raise RecordingError(f"{self.path}: not a readable Medius session: {exc}") from exc
        except RecordingError:
            self._conn.close()
            raise

    def _load(self) -> None:
        app_id = self._conn.execute("PRAGMA application_id").fetchone()[0]
        version = self._conn.execute("PRAGMA user_version").fetchone()[0]
        tables = {r[0] for r in self._conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if app_id != APPLICATION_ID or not REQUIRED_TABLES <= tables:
            raise RecordingError(f"{self.path}: an SQLite database, but not a Medius session file")
        if version > SCHEMA_VERSION:
            raise RecordingError(f"{self.path}: written by a newer Medius (schema version {version}); this "
                                 f"version reads schema {SCHEMA_VERSION}. Update Medius to open it.")
        if version != SCHEMA_VERSION:
            raise RecordingError(f"{self.path}: unknown schema version {version} (this Medius reads {SCHEMA_VERSION})")
        self.schema_version = version
        self.meta = {k: json.loads(v) for k, v in self._conn.execute("SELECT key, value FROM meta")}
        self._keys: dict[str, int] = {}
        self._dtypes: dict[str, np.dtype] = {}
        # the ADC range columns were added to schema 1 later (nullable); older files read as "dtype limits"
        ch_cols = {r[1] for r in self._conn.execute("PRAGMA table_info(channels)")}
        rails = ", count_min, count_max" if {"count_min", "count_max"} <= ch_cols else ", NULL, NULL"
        streams = []
        for key, sid, device, rate_hz, dtype, n_ch, spectral_ok, note in self._conn.execute(
                "SELECT s.stream_key, s.stream_id, d.name, s.rate_hz, s.dtype, s.n_channels, s.spectral_ok, s.note"
                " FROM streams s LEFT JOIN devices d ON d.device_id = s.device_id ORDER BY s.stream_key").fetchall():
            chans = tuple(
                ChannelInfo(*row) for row in self._conn.execute(
                    f'SELECT label, kind, unit, gain, "offset", muscle, side{rails} FROM channels WHERE stream_key=?'
                    " ORDER BY ch_index", (key,)))
            if len(chans) != n_ch:
                raise RecordingError(f"{self.path}: stream {sid!r} declares {n_ch} channels but describes {len(chans)}")
            streams.append(StreamInfo(sid, rate_hz, chans, dtype, bool(spectral_ok), note, device or ""))
            self._keys[sid] = key
            self._dtypes[sid] = storage_dtype(dtype)
        self.streams: list[StreamInfo] = streams

    # -- streams ------------------------------------------------------------------------------------------------

    def stream(self, stream_id: str) -> StreamInfo:
        """The `StreamInfo` of ``stream_id``."""
        for s in self.streams:
            if s.stream_id == stream_id:
                return s
        raise RecordingError(f"{self.path}: no stream {stream_id!r} (streams: {[s.stream_id for s in self.streams]})")

    def n_samples(self, stream_id: str) -> int:
        """One past the last sample index written for ``stream_id`` (0 if none)."""
        key = self._key(stream_id)
        row = self._query("SELECT MAX(first_index + n) FROM blocks WHERE stream_key=?", (key,))[0]
        return int(row[0] or 0)

    def read_counts(self, stream_id: str, start_index: int = 0, stop_index: int | None = None) -> np.ndarray:
        """Raw counts of samples ``[start_index, stop_index)``, random access by sample index.

        Parameters
        ----------
        stream_id : str
        start_index, stop_index : int
            Clipped to ``[0, n_samples]``; ``stop_index=None`` means the end.

        Returns
        -------
        ndarray, shape (stop - start, n_channels), the stream dtype (native byte order)
            Samples inside a recorded gap read as 0 — use `gaps` or `read_physical` (NaN there) to tell them
            apart from real zeros.
        """
        info = self.stream(stream_id)
        n_total = self.n_samples(stream_id)
        start = max(0, int(start_index))
        stop = n_total if stop_index is None else min(int(stop_index), n_total)
        out = np.zeros((max(0, stop - start), info.n_channels), dtype=np.dtype(info.dtype))
        if stop <= start:
            return out
        for first, n, data in self._blocks(stream_id, start, stop):
            block = np.frombuffer(data, dtype=self._dtypes[stream_id]).reshape(n, info.n_channels)
            lo, hi = max(first, start), min(first + n, stop)
            out[lo - start:hi - start] = block[lo - first:hi - first]
        return out

    def read_physical(self, stream_id: str, start_index: int = 0, stop_index: int | None = None) -> np.ndarray:
        """Samples ``[start_index, stop_index)`` in physical units, ``(count - offset) * gain``.

        Returns
        -------
        ndarray, shape (stop - start, n_channels), float64
            NaN for samples inside recorded gaps.
        """
        info = self.stream(stream_id)
        start = max(0, int(start_index))
        counts = self.read_counts(stream_id, start, stop_index)
        out = info.to_physical(counts)
        stop = start + counts.shape[0]
        for g_start, g_n in self.gaps(stream_id):
            lo, hi = max(g_start, start), min(g_start + g_n, stop)
            if lo < hi:
                out[lo - start:hi - start] = np.nan
        return out

    def iter_blocks(self, stream_id: str, start_index: int = 0, stop_index: int | None = None):
        """Yield ``(first_index, counts)`` for the stored blocks overlapping ``[start_index, stop_index)``,
        clipped to it, in index order; skips gaps. Memory stays at one block (about a second of data)."""
        info = self.stream(stream_id)
        stop = self.n_samples(stream_id) if stop_index is None else int(stop_index)
        for first, n, data in self._blocks(stream_id, int(start_index), stop):
            block = np.frombuffer(data, dtype=self._dtypes[stream_id]).reshape(n, info.n_channels)
            lo, hi = max(first, start_index), min(first + n, stop)
            yield lo, block[lo - first:hi - first].astype(np.dtype(info.dtype))

    def gaps(self, stream_id: str) -> list[tuple[int, int]]:
        """Recorded gaps of ``stream_id`` as ``(start_index, n_missing)``, in index order."""
        key = self._key(stream_id)
        return [(int(a), int(b)) for a, b in self._query(
            "SELECT start_index, n_missing FROM gaps WHERE stream_key=? ORDER BY start_index", (key,))]

    def events(self) -> list[dict]:
        """All events in recording order: dicts with ``id, kind, stream_id, index, time_s, payload``."""
        return [
            {"id": eid, "kind": kind, "stream_id": sid, "index": idx, "time_s": t, "payload": json.loads(p)}
            for eid, kind, sid, idx, t, p in self._query(
                "SELECT event_id, kind, stream_id, sample_index, time_s, payload FROM events ORDER BY event_id")
        ]

    def event_time_s(self, event: dict) -> float | None:
        """Seconds from session start of an event: its ``time_s``, else its sample index over its stream's rate."""
        if event["time_s"] is not None:
            return float(event["time_s"])
        if event["index"] is not None and event["stream_id"] is not None:
            return event["index"] / self.stream(event["stream_id"]).rate_hz
        return None

    def analysis_results(self, name: str | None = None) -> list[dict]:
        """Stored analysis runs (optionally only those called ``name``), oldest first."""
        sql = "SELECT run_id, name, created_utc, software_version, params, result FROM analysis_results"
        rows = self._query(sql + (" WHERE name=?" if name else "") + " ORDER BY run_id", (name,) if name else ())
        return [{"run_id": r, "name": n, "created_utc": c, "software_version": v,
                 "params": json.loads(p), "result": json.loads(res)} for r, n, c, v, p, res in rows]

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> "SessionReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- internals ----------------------------------------------------------------------------------------------

    def _key(self, stream_id: str) -> int:
        try:
            return self._keys[stream_id]
        except KeyError:
            raise RecordingError(f"{self.path}: no stream {stream_id!r} (streams: {list(self._keys)})") from None

    def _blocks(self, stream_id: str, start: int, stop: int):
        key = self._key(stream_id)
        max_n = self._query("SELECT MAX(n) FROM blocks WHERE stream_key=?", (key,))[0][0] or 0
        # Bounding first_index from below lets the primary-key index find the range directly.
        try:
            cur = self._conn.execute(
                "SELECT first_index, n, data FROM blocks WHERE stream_key=? AND first_index > ? AND first_index < ?"
                " AND first_index + n > ? ORDER BY first_index", (key, start - max_n, stop, start))
            # Row by row, so iterating an hour-long stream holds one block at a time.
            yield from cur
        except sqlite3.Error as exc:
            raise RecordingError(f"{self.path}: damaged session file: {exc}") from exc

    def _query(self, sql: str, params: tuple = ()):
        try:
            return self._conn.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise RecordingError(f"{self.path}: damaged session file: {exc}") from exc
