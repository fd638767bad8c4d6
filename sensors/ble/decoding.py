"""Pieces every third-party decoder shares: rate-limited error events and gap-aware frame emission.

A decoder works out one sample index per decoded row (from the device counter, unwrapped); `emit_rows` turns
rows plus indices into contiguous `Frame` blocks and exact ``GAP`` events where the indices jump.
"""

from __future__ import annotations

import numpy as np

from sensors.ble.profile import DecoderStats
from sensors.stream import Event, EventKind, Frame

#: At most one ERROR event per this much host time per decoder: garbage from the air must not flood the queue.
ERROR_INTERVAL_S = 1.0


class ErrorReporter:
    """Count bad packets and turn them into ``ERROR`` events, at most one per `ERROR_INTERVAL_S`.

    Parameters
    ----------
    source : str
        Profile name put on every event.
    stats : DecoderStats
        The decoder's counters; `bad` increments ``stats.bad_packets``.
    """

    def __init__(self, source: str, stats: DecoderStats) -> None:
        self.source = source
        self.stats = stats
        self._last_report_s: float | None = None
        self._suppressed = 0

    def bad(self, reason: str, arrival_s: float) -> list[Event]:
        """Record one dropped packet; return ``[Event]`` if a report is due, else ``[]``."""
        self.stats.bad_packets += 1
        if self._last_report_s is not None and arrival_s - self._last_report_s < ERROR_INTERVAL_S:
            self._suppressed += 1
            return []
        suppressed, self._suppressed = self._suppressed, 0
        self._last_report_s = arrival_s
        message = f"{self.source}: {reason}"
        if suppressed:
            message += f" (and {suppressed} more bad packets since the last report)"
        payload = {"reason": reason, "bad_packets": self.stats.bad_packets, "suppressed": suppressed}
        return [Event(EventKind.ERROR, self.source, message, payload, arrival_s)]


def gap_event(source: str, stream_id: str, start_index: int, n_missing: int, arrival_s: float, why: str = "") -> Event:
    """A ``GAP`` event: samples ``[start_index, start_index + n_missing)`` of `stream_id` never arrived."""
    message = f"{stream_id}: {n_missing} samples missing from index {start_index}"
    if why:
        message += f" ({why})"
    payload = {"stream_id": stream_id, "start_index": int(start_index), "n_missing": int(n_missing)}
    return Event(EventKind.GAP, source, message, payload, arrival_s)


class StreamCursor:
    """Where one stream stands: the next index expected, so jumps become ``GAP`` events and lost samples.

    Parameters
    ----------
    source, stream_id : str
        Event source name and the stream the rows belong to.
    stats : DecoderStats
        ``stats.lost_samples`` grows by every gap found.
    """

    def __init__(self, source: str, stream_id: str, stats: DecoderStats) -> None:
        self.source = source
        self.stream_id = stream_id
        self.stats = stats
        self.next_index = 0

    def emit_rows(
        self, indices: np.ndarray, rows: np.ndarray, arrival_s: float, why: str = "lost packets"
    ) -> list[Frame | Event]:
        """Split rows into contiguous frames, with a ``GAP`` event before every jump in `indices`.

        Parameters
        ----------
        indices : ndarray of int64, shape (n,)
            Stream index of each row, strictly increasing and ``>= self.next_index``.
        rows : ndarray, shape (n, n_channels)
            Raw counts in the stream's dtype.
        arrival_s : float
            Host arrival time of the notification, copied onto every item.
        why : str
            Reason put in gap messages.
        """
        out: list[Frame | Event] = []
        n = len(indices)
        if n == 0:
            return out
        indices = np.asarray(indices, dtype=np.int64)
        if int(indices[-1]) - int(indices[0]) == n - 1:  # strictly increasing, so one contiguous run
            breaks = np.empty(0, dtype=np.int64)
        else:
            breaks = np.flatnonzero(np.diff(indices) != 1) + 1
        starts = np.concatenate(([0], breaks))
        ends = np.concatenate((breaks, [n]))
        for s, e in zip(starts.tolist(), ends.tolist()):
            first = int(indices[s])
            missing = first - self.next_index
            if missing > 0:
                out.append(gap_event(self.source, self.stream_id, self.next_index, missing, arrival_s, why))
                self.stats.lost_samples += missing
            out.append(Frame(self.stream_id, first, np.ascontiguousarray(rows[s:e]), arrival_s))
            self.next_index = first + (e - s)
        return out
