"""Recording live data off the GUI thread: `Recorder` queues items and writes them on its own thread."""

from __future__ import annotations

import os
import queue
import threading
import time
from typing import Callable, Sequence

from sensors.recording.errors import RecordingError
from sensors.recording.events import session_event
from sensors.recording.writer import COMMIT_INTERVAL_S, SessionWriter
from sensors.stream import Event, EventKind, Frame, Item, StreamInfo

_STOP = object()


class Recorder:
    """Write frames and events to a new session file from a background thread.

    The caller (the app's pump, on the GUI thread) hands over every item with `put`, which never blocks. The
    writer thread commits once a stream has a second of pending data, or when pending data is a second old
    by the wall clock (so a stalled device's last samples still reach the disk).

    A write failure (disk full, I/O error) stops the recording: the file keeps everything committed before,
    further items are dropped, and an ``ERROR`` event (``payload["fatal"] = True``, ``payload["committed"]``
    = one past the last durable sample per stream) is delivered through `poll_events` and ``on_event``.
    A frame the file cannot take (overlapping indices, wrong shape) is dropped with a non-fatal ``ERROR``
    event and recording continues.

    Parameters
    ----------
    path : path-like
        New session file (must not exist).
    meta : dict
        Session metadata, see `SessionWriter.create`.
    streams : sequence of StreamInfo
        Streams known now; more may arrive later as ``STREAMS`` events.
    on_event : callable, optional
        Called with each ``ERROR`` event, on the writer thread (must only hand it over, e.g. to a queue).
    """

    def __init__(self, path: os.PathLike | str, meta: dict, streams: Sequence[StreamInfo] = (),
                 on_event: Callable[[Event], None] | None = None):
        self._writer = SessionWriter.create(path, meta)
        self.path = self._writer.path
        for info in streams:
            self._writer.add_stream(info)
        self._in: queue.SimpleQueue = queue.SimpleQueue()
        self._out: queue.SimpleQueue = queue.SimpleQueue()
        self._on_event = on_event
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="medius-recorder", daemon=True)
        self._thread.start()

    # -- caller side --------------------------------------------------------------------------------------------

    def put(self, item: Item) -> None:
        """Queue a `Frame` or source `Event` for writing; never blocks. Dropped once recording has stopped."""
        if not self._stopped.is_set():
            self._in.put(item)

    def add_event(self, kind: str, stream_id: str | None = None, index: int | None = None,
                  time_s: float | None = None, payload: dict | None = None) -> None:
        """Queue a session event (trial start/stop, repetition, marker), in order with the frames."""
        self.put(("event", kind, stream_id, index, time_s, payload))

    def poll_events(self) -> list[Event]:
        """Errors reported by the writer thread since the last call."""
        out = []
        while True:
            try:
                out.append(self._out.get_nowait())
            except queue.Empty:
                return out

    @property
    def backlog(self) -> int:
        """Items handed over but not yet written (approximate; for the UI's overload display)."""
        return self._in.qsize()

    @property
    def recording(self) -> bool:
        """False once closed or stopped by a write failure."""
        return not self._stopped.is_set()

    def close(self, timeout_s: float | None = None) -> None:
        """Write everything queued, make the file complete, and stop the thread."""
        self._in.put(_STOP)
        self._thread.join(timeout_s)

    # -- writer thread ------------------------------------------------------------------------------------------

    def _run(self) -> None:
        pending_since: float | None = None
        try:
            while True:
                timeout = (None if pending_since is None
                           else max(0.0, pending_since + COMMIT_INTERVAL_S - time.monotonic()))
                try:
                    item = self._in.get(timeout=timeout)
                except queue.Empty:
                    self._writer.flush()
                    pending_since = None
                    continue
                if item is _STOP:
                    self._writer.close()
                    return
                self._handle(item)
                if not self._writer.has_pending():
                    pending_since = None
                elif pending_since is None:
                    pending_since = time.monotonic()
                elif time.monotonic() - pending_since >= COMMIT_INTERVAL_S:
                    self._writer.flush()
                    pending_since = None
        except RecordingError as exc:
            self._report(str(exc), fatal=True)
        except Exception as exc:  # anything unforeseen must still stop cleanly and be reported, not vanish
            self._writer.abandon()
            self._report(f"{self.path}: recording stopped by an unexpected error: {exc!r}", fatal=True)
        finally:
            self._stopped.set()

    def _handle(self, item) -> None:
        w = self._writer
        try:
            if isinstance(item, Frame):
                w.write_frame(item)
            elif isinstance(item, tuple):
                w.add_event(*item[1:])
            elif item.kind is EventKind.STREAMS:
                for info in item.payload.get("streams", ()):
                    w.add_stream(info)
            elif item.kind is EventKind.GAP and {"stream_id", "start_index", "n_missing"} <= item.payload.keys():
                p = item.payload
                w.add_gap(p["stream_id"], p["start_index"], p["n_missing"])
            elif item.kind in (EventKind.TRIAL, EventKind.MARKER):
                kind, stream_id, index, payload = session_event(item)
                w.add_event(kind, stream_id, index, None if index is not None else w.data_time_s(), payload)
            else:
                # host arrival time is diagnostics of the live link, not part of the session: not stored
                payload = {"source": item.source, "message": item.message, **item.payload}
                w.add_event(item.kind.value, time_s=w.data_time_s(), payload=payload)
        except RecordingError as exc:
            if w.closed:
                raise
            self._report(str(exc), fatal=False)

    def _report(self, message: str, fatal: bool) -> None:
        committed = {sid: self._writer.committed_index(sid) for sid in self._writer.stream_ids}
        event = Event(EventKind.ERROR, source="recorder", message=message,
                      payload={"fatal": fatal, "path": str(self.path), "committed": committed},
                      arrival_s=time.monotonic())
        self._out.put(event)
        if self._on_event is not None:
            self._on_event(event)
