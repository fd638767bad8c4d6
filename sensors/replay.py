"""Replay a recorded session as a `Source`, so it runs through exactly the same code as a live device.

Frames carry exactly the recorded counts and sample indices; each recorded gap comes out as a ``GAP`` event
between the frames before and after it, and recorded session events in time order as the live source sent them:
``TRIAL`` and ``MARKER`` events, and ``ANNOTATION`` for the rest (repetitions, stored device events).

The replay advances in steps of ``frame_s`` of data. Paced replay schedules step ``k`` against one monotonic
start clock (``t0 + k * frame_s / speed``) instead of sleeping a fixed amount per step, so the time spent
decoding and downstream never accumulates into drift. After a seek (and at the start) a ``STREAMS`` event
re-announces the streams: consumers reset their filters there, since the indices that follow jump.
"""

from __future__ import annotations

import asyncio
import math
import os
import threading
import time
from typing import AsyncIterator, Awaitable, Callable, Sequence

import numpy as np

from sensors.recording import RecordingError, SessionReader
from sensors.recording.events import live_event
from sensors.stream import Event, EventKind, Frame, Item, StreamInfo

#: Allowed pacing speeds; ``None`` means as fast as possible.
MIN_SPEED, MAX_SPEED = 0.25, 16.0
#: How often a paused or waiting replay looks at its controls (pause/seek/speed from another thread).
_CONTROL_POLL_S = 0.05


def _check_speed(speed: float | None) -> float | None:
    if speed is not None and not (MIN_SPEED <= speed <= MAX_SPEED):
        raise ValueError(f"replay speed must be between x{MIN_SPEED} and x{MAX_SPEED} (or None for as fast as "
                         f"possible), got {speed!r}")
    return speed


class ReplaySource:
    """A `Source` reading a ``.medius`` session file.

    Parameters
    ----------
    path : path-like
        The session file.
    speed : float or None
        Pacing factor, ``0.25``–``16`` (1 = real time); ``None`` replays as fast as possible.
    frame_s : float
        Seconds of data per step (each stream's frames cover one step).
    clock, sleep
        Monotonic clock (s) and async sleep; the defaults are the real ones. Tests pass a simulated pair to
        check the pacing schedule without measuring wall time.

    Controls (`pause`, `resume`, `set_speed`, `seek`, `seek_event`) may be called from any thread.
    """

    def __init__(self, path: os.PathLike | str, speed: float | None = 1.0, frame_s: float = 0.02,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep):
        self.path = path
        self.name = f"replay:{os.fspath(path)}"
        self._speed = _check_speed(speed)
        if not frame_s > 0:
            raise ValueError(f"frame_s must be positive, got {frame_s!r}")
        self._frame_s = float(frame_s)
        self._clock, self._sleep = clock, sleep
        self._reader: SessionReader | None = None
        self._lock = threading.Lock()
        self._paused = False
        self._seek_to_s: float | None = None
        self._rebase = True  # re-anchor the pacing clock before the next step
        self._stopped = False
        self._step = 0
        self._blocks: dict[str, _BlockCursor] = {}

    # -- Source protocol ----------------------------------------------------------------------------------------

    @property
    def streams(self) -> Sequence[StreamInfo]:
        return [] if self._reader is None else self._reader.streams

    async def start(self) -> None:
        """Open the file; raises `RecordingError` if it is not a readable session."""
        self._reader = SessionReader(self.path)
        r = self._reader
        self._n = {s.stream_id: r.n_samples(s.stream_id) for s in r.streams}
        self._rates = {s.stream_id: s.rate_hz for s in r.streams}
        self._gaps = {s.stream_id: r.gaps(s.stream_id) for s in r.streams}
        timeline = []  # (time_s, order, Event): recorded session events on one time axis
        for ev in r.events():
            t = r.event_time_s(ev)
            timeline.append((0.0 if t is None else t, len(timeline), live_event(ev, self.name)))
        timeline.sort(key=lambda x: (x[0], x[1]))
        self._timeline = timeline
        self._events = {ev["id"]: r.event_time_s(ev) or 0.0 for ev in r.events()}
        ends = [max([n] + [a + b for a, b in self._gaps[sid]]) / self._rates[sid] for sid, n in self._n.items()]
        self.duration_s = max(ends + [t for t, _, _ in timeline], default=0.0)
        self._seek_to_s = 0.0

    async def stop(self) -> None:
        self._stopped = True

    async def items(self) -> AsyncIterator[Item]:
        if self._reader is None:
            raise RuntimeError("call start() before items()")
        try:
            async for item in self._run():
                yield item
        except RecordingError as exc:  # the file went bad under us: report and end, never raise
            yield Event(EventKind.ERROR, self.name, str(exc))
        finally:
            self._close_blocks()
            self._reader.close()
        yield Event(EventKind.END, self.name, "replay finished")

    # -- controls -----------------------------------------------------------------------------------------------

    def pause(self) -> None:
        with self._lock:
            self._paused = True

    def resume(self) -> None:
        with self._lock:
            self._paused, self._rebase = False, True

    def set_speed(self, speed: float | None) -> None:
        """Change pacing (``0.25``–``16``, or ``None`` for as fast as possible) from the current position."""
        with self._lock:
            self._speed, self._rebase = _check_speed(speed), True

    def seek(self, time_s: float) -> None:
        """Continue from ``time_s`` seconds into the session (clipped to the recording)."""
        if not math.isfinite(time_s):
            raise ValueError(f"seek time must be finite, got {time_s!r}")
        with self._lock:
            self._seek_to_s, self._rebase = max(0.0, float(time_s)), True

    def seek_event(self, event_id: int) -> None:
        """Continue from the time of the recorded event ``event_id`` (the ``id`` from `SessionReader.events`)."""
        if event_id not in self._events:
            raise ValueError(f"no event with id {event_id} in {self.path}")
        self.seek(self._events[event_id])

    @property
    def position_s(self) -> float:
        """Data time replayed so far, in seconds."""
        return self._step * self._frame_s

    # -- the replay loop ----------------------------------------------------------------------------------------

    async def _run(self) -> AsyncIterator[Item]:
        r = self._reader
        t0_wall = t0_data = 0.0
        while not self._stopped:
            with self._lock:
                seek, self._seek_to_s = self._seek_to_s, None
                paused, speed, rebase = self._paused, self._speed, self._rebase
            if seek is not None:
                self._step = int(math.floor(min(seek, self.duration_s) / self._frame_s + 1e-9))
                t_seek = self._step * self._frame_s
                cursor = {sid: self._index_at(sid, t_seek) for sid in self._n}  # not clipped to the data
                self._close_blocks()
                self._blocks = {sid: _BlockCursor(r, sid, min(cursor[sid], n)) for sid, n in self._n.items()}
                gap_pos = {sid: sum(1 for a, _ in self._gaps[sid] if a < cursor[sid]) for sid in self._n}
                ev_pos = next((i for i, (t, _, _) in enumerate(self._timeline) if t >= t_seek), len(self._timeline))
                yield Event(EventKind.STREAMS, self.name, f"replay from {t_seek:.3f} s",
                            {"streams": list(r.streams), "seek_s": t_seek})
            if paused:
                await self._sleep(_CONTROL_POLL_S)
                continue
            t_lo, t_hi = self._step * self._frame_s, (self._step + 1) * self._frame_s
            if rebase:
                with self._lock:
                    self._rebase = False
                t0_wall, t0_data = self._clock(), t_lo
            if speed is not None:
                # Step k is due when its data would have finished arriving, on the start clock.
                due = t0_wall + (t_hi - t0_data) / speed
                interrupted = False
                while (wait := due - self._clock()) > 0:
                    await self._sleep(min(wait, _CONTROL_POLL_S))
                    with self._lock:
                        interrupted = self._paused or self._seek_to_s is not None or self._rebase
                    if interrupted or self._stopped:
                        break
                if interrupted or self._stopped:
                    continue
            while ev_pos < len(self._timeline) and self._timeline[ev_pos][0] < t_hi:
                yield self._timeline[ev_pos][2]
                ev_pos += 1
            done = ev_pos >= len(self._timeline)
            for sid, n in self._n.items():
                hi = self._index_at(sid, t_hi)
                gaps = self._gaps[sid]
                items: list[tuple[int, Item]] = []
                while gap_pos[sid] < len(gaps) and gaps[gap_pos[sid]][0] < hi:
                    start, n_missing = gaps[gap_pos[sid]]
                    items.append((start, Event(EventKind.GAP, self.name, f"{n_missing} samples of {sid!r} missing",
                                               {"stream_id": sid, "start_index": start, "n_missing": n_missing})))
                    gap_pos[sid] += 1
                if min(hi, n) > cursor[sid]:
                    items.extend((f.first_index, f) for f in self._frames(sid, cursor[sid], min(hi, n)))
                # Stable sort by index: a gap comes after the data before it and before the data after it.
                for _, item in sorted(items, key=lambda x: x[0]):
                    yield item
                cursor[sid] = hi
                done = done and hi >= n and gap_pos[sid] >= len(gaps)
            self._step += 1
            if done:
                return

    def _index_at(self, stream_id: str, time_s: float) -> int:
        """First sample index at or after ``time_s``."""
        return int(math.ceil(time_s * self._rates[stream_id] - 1e-9))

    def _close_blocks(self) -> None:
        for blocks in self._blocks.values():
            blocks.rows.close()
        self._blocks = {}

    def _frames(self, stream_id: str, start: int, stop: int):
        """Frames of the recorded data in ``[start, stop)`` (called with increasing ``start`` between seeks):
        adjacent blocks joined, split only at gaps. Reads each stored block once, through one cursor per stream."""
        blocks = self._blocks[stream_id]
        run, run_first, run_end = [], None, None
        while True:
            if blocks.current is None or blocks.current[0] + blocks.current[1].shape[0] <= start:
                blocks.current = next(blocks.rows, None)
                if blocks.current is None:
                    break
                continue
            first, counts = blocks.current
            lo, hi = max(first, start), min(first + counts.shape[0], stop)
            if lo >= hi:
                break  # the current block starts at or after stop
            if run and lo != run_end:
                yield self._frame(stream_id, run_first, run)
                run = []
            if not run:
                run_first = lo
            run.append(counts[lo - first:hi - first])
            run_end = hi
            if hi == stop:
                break
            start = hi
        if run:
            yield self._frame(stream_id, run_first, run)

    def _frame(self, stream_id: str, first: int, parts: list) -> Frame:
        counts = parts[0].copy() if len(parts) == 1 else np.concatenate(parts)  # own memory: consumers may keep it
        return Frame(stream_id, first, counts, arrival_s=self._clock())


class _BlockCursor:
    """The stored blocks of one stream from a position on, and the block being sliced into frames."""

    def __init__(self, reader: SessionReader, stream_id: str, start_index: int):
        self.rows = reader.iter_blocks(stream_id, start_index)
        self.current: tuple[int, np.ndarray] | None = None
