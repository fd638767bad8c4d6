"""Writing a session file: streams, raw counts, gaps, events; crash-safe by construction.

The file is in WAL mode and every commit is a complete, consistent state, so a killed process leaves a file that
opens normally (SQLite replays its WAL on the next open). Samples are buffered and committed when a stream has
gathered one second of data (`COMMIT_INTERVAL_S`), which bounds both the cost (one transaction and one fsync per
second of data) and the loss on a crash (the uncommitted tail, under one second).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import sqlite3
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import numpy as np

from sensors.recording.errors import RecordingError
from sensors.recording.schema import APPLICATION_ID, SCHEMA_SQL, SCHEMA_VERSION
from sensors.stream import Frame, StreamInfo

#: Seconds of data per durable commit (per design.md: one transaction per second of data).
COMMIT_INTERVAL_S = 1.0


def software_version() -> str:
    """Version of the installed ``medius`` distribution, stored in every session it writes."""
    try:
        return metadata.version("medius")
    except metadata.PackageNotFoundError:
        return "unknown (medius run from a source tree, not installed)"


def storage_dtype(dtype: str) -> np.dtype:
    """Little-endian form of a stream dtype, the byte order of every stored block."""
    return np.dtype(dtype).newbyteorder("<")


def to_json(value) -> str:
    """JSON text for meta/payload values; anything JSON cannot hold is stored as its ``str``."""
    return json.dumps(value, default=str, sort_keys=True)


@dataclass
class _StreamState:
    key: int
    info: StreamInfo
    dtype: np.dtype
    next_index: int = 0  # one past the last sample accepted (committed or pending)
    committed_index: int = 0  # one past the last sample durably committed
    pending: list[Frame] = field(default_factory=list)
    pending_n: int = 0
    last_gap: tuple[int, int] | None = None  # (start, end) of the latest gap, to merge reports of the same gap


class SessionWriter:
    """Write one session file.

    Use `create`; then `add_stream` for each stream, `write_frame` for data, `add_gap`/`add_event` as they
    happen, and `close`. Usable as a context manager: on an exception the file keeps everything up to the last
    commit and stays valid.

    Parameters are given to `create`; see there.
    """

    def __init__(self, conn: sqlite3.Connection, path: Path):
        self._conn = conn
        self.path = path
        self._streams: dict[str, _StreamState] = {}
        self._sql: list[tuple[str, tuple]] = []  # events and gaps waiting for the next commit
        self._closed = False

    # -- construction -------------------------------------------------------------------------------------------

    @classmethod
    def create(cls, path: os.PathLike | str, meta: dict) -> "SessionWriter":
        """Create a new session file at ``path``; fails if it exists.

        Parameters
        ----------
        path : path-like
            Destination, conventionally ``*.medius``.
        meta : dict
            JSON-able session metadata. ``patient_code`` (pseudonymous) is expected; identifying details, when
            a site chooses to store them, go under ``"identifying"`` so exports can leave them out. Other
            conventional keys: ``"filters"`` (the filter settings in use), ``"session"`` (free notes).
        """
        path = Path(path)
        if path.exists():
            raise RecordingError(f"{path}: already exists; a session file is never overwritten")
        if not isinstance(meta, dict):
            raise RecordingError(f"meta must be a dict, got {type(meta).__name__}")
        conn = None
        try:
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            # FULL: each commit is fsynced to the WAL, so a committed second survives power loss too.
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
            conn.execute("BEGIN")
            for statement in SCHEMA_SQL.split(";"):
                if statement.strip():
                    conn.execute(statement)
            base = {
                "schema_version": SCHEMA_VERSION,
                "software_version": software_version(),
                "created_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            }
            rows = [(k, to_json(v)) for k, v in {**meta, **base}.items()]
            conn.executemany("INSERT INTO meta(key, value) VALUES (?, ?)", rows)
            conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn is not None:
                conn.close()
                for leftover in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
                    leftover.unlink(missing_ok=True)  # nothing was recorded yet: leave no half-made file
            raise RecordingError(f"{path}: cannot create session file: {exc}") from exc
        return cls(conn, path)

    def __enter__(self) -> "SessionWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abandon()

    # -- content ------------------------------------------------------------------------------------------------

    def add_stream(self, info: StreamInfo) -> str:
        """Declare a stream (rate, channels with muscle/side, units, scaling, dtype); returns its id.

        Declaring the same stream again with an identical description is a no-op (a reconnecting source
        re-announces its streams); a different description under the same id is refused.
        """
        self._check_open()
        known = self._streams.get(info.stream_id)
        if known is not None:
            if known.info != info:
                raise RecordingError(f"stream {info.stream_id!r} is already recorded with a different description")
            return info.stream_id
        try:
            self._conn.execute("BEGIN")
            device_id = None
            if info.device:
                self._conn.execute("INSERT OR IGNORE INTO devices(name) VALUES (?)", (info.device,))
                device_id = self._conn.execute(
                    "SELECT device_id FROM devices WHERE name=?", (info.device,)).fetchone()[0]
            cur = self._conn.execute(
                "INSERT INTO streams(stream_id, device_id, rate_hz, dtype, n_channels, spectral_ok, note)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (info.stream_id, device_id, float(info.rate_hz), np.dtype(info.dtype).name, info.n_channels,
                 int(info.spectral_ok), info.note),
            )
            key = cur.lastrowid
            self._conn.executemany(
                'INSERT INTO channels(stream_key, ch_index, label, kind, unit, gain, "offset", muscle, side,'
                " count_min, count_max) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(key, i, c.label, c.kind.value, c.unit, float(c.gain), float(c.offset), c.muscle, c.side,
                  c.count_min, c.count_max) for i, c in enumerate(info.channels)],
            )
            self._conn.execute("COMMIT")
        except sqlite3.Error as exc:
            self._fail(exc)
        self._streams[info.stream_id] = _StreamState(key, info, storage_dtype(info.dtype))
        return info.stream_id

    def write_frame(self, frame: Frame) -> None:
        """Accept one frame of raw counts; committed durably once its stream holds a second of pending data.

        A frame must continue its stream: a jump forward is recorded as a gap, a frame that overlaps samples
        already accepted is refused (nothing is written) with `RecordingError`.
        """
        self._check_open()
        st = self._streams.get(frame.stream_id)
        if st is None:
            raise RecordingError(f"frame for undeclared stream {frame.stream_id!r}; call add_stream first")
        counts = np.asarray(frame.counts)
        if counts.ndim != 2 or counts.shape[1] != st.info.n_channels:
            raise RecordingError(
                f"stream {frame.stream_id!r}: frame shape {counts.shape} does not match "
                f"(n_samples, {st.info.n_channels})")
        if not np.can_cast(counts.dtype, st.dtype, "safe"):
            raise RecordingError(
                f"stream {frame.stream_id!r}: counts of dtype {counts.dtype} cannot be stored losslessly as "
                f"{st.info.dtype}")
        if frame.first_index < st.next_index:
            raise RecordingError(
                f"stream {frame.stream_id!r}: frame at index {frame.first_index} overlaps samples already "
                f"recorded (next expected index {st.next_index}); frame refused")
        if counts.shape[0] == 0:
            return
        if frame.first_index > st.next_index:
            self._add_gap(st, st.next_index, frame.first_index - st.next_index)
        st.pending.append(Frame(frame.stream_id, int(frame.first_index), counts))
        st.pending_n += counts.shape[0]
        st.next_index = frame.first_index + counts.shape[0]
        if st.pending_n >= COMMIT_INTERVAL_S * st.info.rate_hz:
            self.flush()

    def add_gap(self, stream_id: str, start_index: int, n_missing: int) -> None:
        """Record that samples ``[start_index, start_index + n_missing)`` of a stream never arrived.

        Gaps implied by a jump in frame indices are recorded by `write_frame` already; recording the same gap
        again (e.g. from the source's GAP event) is harmless.
        """
        self._check_open()
        st = self._streams.get(stream_id)
        if st is None:
            raise RecordingError(f"gap for undeclared stream {stream_id!r}")
        if start_index < 0 or n_missing <= 0:
            raise RecordingError(f"stream {stream_id!r}: invalid gap start={start_index} n_missing={n_missing}")
        self._add_gap(st, int(start_index), int(n_missing))

    def add_event(self, kind: str, stream_id: str | None = None, index: int | None = None,
                  time_s: float | None = None, payload: dict | None = None) -> None:
        """Record an event: trial start/stop, repetition, marker (see `sensors.recording.events`), or any
        source event. ``index`` is a sample index of ``stream_id``; ``time_s`` is seconds from session start."""
        self._check_open()
        if stream_id is not None and stream_id not in self._streams:
            raise RecordingError(f"event {kind!r} refers to undeclared stream {stream_id!r}")
        self._sql.append((
            "INSERT INTO events(kind, stream_id, sample_index, time_s, payload) VALUES (?, ?, ?, ?, ?)",
            (str(kind), stream_id, None if index is None else int(index),
             None if time_s is None else float(time_s), to_json(payload or {})),
        ))

    def committed_index(self, stream_id: str) -> int:
        """One past the last sample of ``stream_id`` that is durably in the file."""
        return self._streams[stream_id].committed_index

    @property
    def stream_ids(self) -> list[str]:
        return list(self._streams)

    # -- commits ------------------------------------------------------------------------------------------------

    def flush(self) -> None:
        """Commit everything pending now, durably."""
        self._check_open()
        try:
            self._conn.execute("BEGIN")
            self._flush_locked()
            self._conn.execute("COMMIT")
        except sqlite3.Error as exc:
            self._fail(exc)
        for st in self._streams.values():
            st.committed_index = st.next_index
            st.pending.clear()
            st.pending_n = 0
        self._sql.clear()

    def data_time_s(self) -> float:
        """Seconds of data accepted so far (the furthest stream), used to place events that carry no index."""
        return max((st.next_index / st.info.rate_hz for st in self._streams.values()), default=0.0)

    @property
    def closed(self) -> bool:
        """True after `close`, or after a write failure stopped the recording."""
        return self._closed

    def has_pending(self) -> bool:
        return bool(self._sql) or any(st.pending_n for st in self._streams.values())

    def close(self) -> None:
        """Final commit; fold the WAL back into the single file so the session is one self-contained file."""
        if self._closed:
            return
        self.flush()
        try:
            self._conn.execute("PRAGMA journal_mode=DELETE")
            self._conn.close()
        except sqlite3.Error as exc:
            self._fail(exc)
        self._closed = True

    def abandon(self) -> None:
        """Close without committing what is pending (after an error); the file keeps its last commit."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass  # the connection is being dropped; the last commit is what stays
        try:
            self._conn.close()
        except sqlite3.Error:
            pass

    # -- internals ----------------------------------------------------------------------------------------------

    def _add_gap(self, st: _StreamState, start: int, n: int) -> None:
        # A source reports a dropout packet by packet and the jump in indices reports it once more: overlapping
        # or adjacent reports extend one stored gap instead of piling up.
        end = start + n
        if st.last_gap is not None and st.last_gap[0] <= start <= st.last_gap[1]:
            start, end = st.last_gap[0], max(end, st.last_gap[1])
        st.last_gap = (start, end)
        self._sql.append((
            "INSERT OR REPLACE INTO gaps(stream_key, start_index, n_missing) VALUES (?, ?, ?)",
            (st.key, start, end - start)))

    def _flush_locked(self) -> None:
        """Write pending blocks and statements inside the caller's transaction."""
        for st in self._streams.values():
            rows = []
            for first, block in _contiguous_blocks(st.pending, st.dtype):
                block_n = max(1, int(round(st.info.rate_hz * COMMIT_INTERVAL_S)))
                for start in range(0, block.shape[0], block_n):
                    part = block[start:start + block_n]
                    rows.append((st.key, first + start, part.shape[0], part.tobytes()))
            self._conn.executemany("INSERT INTO blocks(stream_key, first_index, n, data) VALUES (?, ?, ?, ?)", rows)
        for sql, params in self._sql:
            self._conn.execute(sql, params)

    def _check_open(self) -> None:
        if self._closed:
            raise RecordingError(f"{self.path}: the session writer is closed")

    def _fail(self, exc: sqlite3.Error):
        self.abandon()
        code = getattr(exc, "sqlite_errorname", "")
        hint = " (disk full, file size limit or failing disk?)" if "IOERR" in code or "FULL" in code else ""
        raise RecordingError(f"{self.path}: writing failed, recording stopped: {exc} [{code}]{hint}; the file keeps "
                             "everything committed before this point") from exc


def _contiguous_blocks(frames: list[Frame], dtype: np.dtype):
    """Join consecutive frames into ``(first_index, counts)`` runs, cast to the storage dtype."""
    run: list[np.ndarray] = []
    first = end = None
    for fr in frames:
        if run and fr.first_index != end:
            yield first, np.ascontiguousarray(np.concatenate(run).astype(dtype, copy=False))
            run = []
        if not run:
            first = fr.first_index
        run.append(fr.counts)
        end = fr.first_index + fr.n_samples
    if run:
        yield first, np.ascontiguousarray(np.concatenate(run).astype(dtype, copy=False))
