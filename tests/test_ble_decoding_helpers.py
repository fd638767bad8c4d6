"""The shared decoder helpers: rate-limited ERROR events and gap-aware frame emission."""

import numpy as np

from sensors.ble.decoding import ERROR_INTERVAL_S, ErrorReporter, StreamCursor
from sensors.ble.profile import DecoderStats
from sensors.stream import EventKind, Frame


def test_errors_are_counted_always_and_reported_at_most_once_per_interval():
    stats = DecoderStats()
    rep = ErrorReporter("dev", stats)
    events = []
    for i in range(1000):  # 1000 bad packets over 10 s of host time
        events += rep.bad("junk", i * 0.01)
    assert stats.bad_packets == 1000
    times = [e.arrival_s for e in events]
    assert len(events) == 10 and np.all(np.diff(times) >= ERROR_INTERVAL_S)
    assert all(e.kind is EventKind.ERROR and e.source == "dev" for e in events)
    assert events[0].payload["suppressed"] == 0
    assert events[1].payload["suppressed"] == 99 and "99 more" in events[1].message  # the hidden ones are told
    assert events[-1].payload["bad_packets"] == 901


def test_rows_split_at_jumps_with_exact_gaps():
    stats = DecoderStats()
    cur = StreamCursor("dev", "emg", stats)
    rows = np.arange(14, dtype=np.int16).reshape(7, 2)
    out = cur.emit_rows(np.array([0, 1, 2, 5, 6, 10, 11]), rows, 1.5)
    def summary(o):
        if isinstance(o, Frame):
            return ("F", o.first_index, o.n_samples)
        return ("G", o.payload["start_index"], o.payload["n_missing"])

    kinds = [summary(o) for o in out]
    assert kinds == [("F", 0, 3), ("G", 3, 2), ("F", 5, 2), ("G", 7, 3), ("F", 10, 2)]
    np.testing.assert_array_equal(out[2].counts, rows[3:5])
    assert stats.lost_samples == 5 and cur.next_index == 12
    assert all(o.arrival_s == 1.5 for o in out)
    # a later call continues from where the stream stands; a gap at its start is reported too
    out = cur.emit_rows(np.array([15]), rows[:1], 2.0)
    assert out[0].kind is EventKind.GAP and out[0].payload == {"stream_id": "emg", "start_index": 12, "n_missing": 3}
