"""Replay source: exact counts and indices, gaps and events in order, drift-free pacing, pause/seek/speed."""

import asyncio

import numpy as np
import pytest

from sensors.recording import MARKER, REPETITION, TRIAL_START, RecordingError, SessionWriter
from sensors.replay import ReplaySource
from sensors.stream import ChannelInfo, EventKind, Frame, Source, StreamInfo

EMG = StreamInfo("emg", 1000.0, (ChannelInfo("A1", unit="mV", gain=0.001, muscle="gluteus_medius", side="left"),
                                 ChannelInfo("ramp", kind="other", unit="1")), dtype="int32")
IMU = StreamInfo("imu", 50.0, (ChannelInfo("ax", kind="acc", unit="g", gain=0.01),), dtype="int16")


@pytest.fixture
def session(tmp_path):
    """3 s of EMG with a gap [1200, 1500) and a trailing gap, 3 s of IMU, and session events."""
    path = tmp_path / "s.medius"
    rng = np.random.default_rng(5)
    emg = np.stack([rng.integers(-2000, 2000, 3000), np.arange(3000)], axis=1).astype(np.int32)
    imu = rng.integers(-100, 100, (150, 1)).astype(np.int16)
    with SessionWriter.create(path, {"patient_code": "R1"}) as w:
        w.add_stream(EMG)
        w.add_stream(IMU)
        for i in range(0, 3000, 25):
            if not 1200 <= i < 1500:
                w.write_frame(Frame("emg", i, emg[i:i + 25]))
        w.write_frame(Frame("imu", 0, imu))
        w.add_gap("emg", 3000, 100)  # device dropped out and never came back
        w.add_event(TRIAL_START, "emg", 250, None, {"trial": 1, "type": "clam", "repetitions": 3})
        w.add_event(MARKER, None, None, 2.0, {"text": "knee pain"})
        w.add_event(REPETITION, "emg", 1000, None, {"trial": 1, "rep": 1, "end_index": 1800})
    return path, emg, imu


async def _collect(src, limit=100_000, on_item=None):
    await src.start()
    out = []
    async for item in src.items():
        out.append(item)
        if on_item:
            on_item(src, item, out)
        assert len(out) < limit
    return out


def test_fast_replay_reproduces_counts_indices_gaps_and_events(session):
    path, emg, imu = session
    src = ReplaySource(path, speed=None)
    assert isinstance(src, Source)
    items = asyncio.run(_collect(src))
    assert items[0].kind is EventKind.STREAMS and list(items[0].payload["streams"]) == [EMG, IMU]
    assert items[-1].kind is EventKind.END
    frames = [x for x in items if isinstance(x, Frame)]
    emg_frames = [f for f in frames if f.stream_id == "emg"]
    got = np.concatenate([f.counts for f in emg_frames])
    np.testing.assert_array_equal(got, np.concatenate([emg[:1200], emg[1500:]]))
    assert got.dtype == np.int32
    for f in emg_frames:  # every frame's counts belong at its index (ramp channel)
        np.testing.assert_array_equal(f.counts[:, 1], np.arange(f.first_index, f.end_index))
    np.testing.assert_array_equal(np.concatenate([f.counts for f in frames if f.stream_id == "imu"]), imu)
    # the GAP sits between the frame ending at 1200 and the one starting at 1500
    emg_seq = [x for x in items if (isinstance(x, Frame) and x.stream_id == "emg") or
               (not isinstance(x, Frame) and x.kind is EventKind.GAP)]
    gap_pos = [i for i, x in enumerate(emg_seq) if not isinstance(x, Frame)]
    assert [emg_seq[i].payload for i in gap_pos] == [
        {"stream_id": "emg", "start_index": 1200, "n_missing": 300},
        {"stream_id": "emg", "start_index": 3000, "n_missing": 100}]
    assert emg_seq[gap_pos[0] - 1].end_index == 1200 and emg_seq[gap_pos[0] + 1].first_index == 1500
    assert gap_pos[1] == len(emg_seq) - 1
    notes = [x for x in items if not isinstance(x, Frame) and x.kind in (
        EventKind.TRIAL, EventKind.MARKER, EventKind.ANNOTATION)]
    assert [x.kind for x in notes] == [EventKind.TRIAL, EventKind.ANNOTATION, EventKind.MARKER]
    # trials and markers come back in the live layout (as the simulator sends them), the rest as stored
    assert notes[0].payload == {"trial": 1, "type": "clam", "repetitions": 3, "phase": "start", "index": 250,
                                "stream_id": "emg", "time_s": None}
    assert notes[1].payload == {"kind": REPETITION, "stream_id": "emg", "index": 1000, "time_s": None,
                                "payload": {"trial": 1, "rep": 1, "end_index": 1800}}
    assert notes[2].message == "knee pain" and notes[2].payload["time_s"] == 2.0

class FakeTime:
    """A simulated monotonic clock whose sleeps overshoot, like a loaded machine's do."""

    def __init__(self, overshoot_s=0.003):
        self.now = 100.0
        self.overshoot_s = overshoot_s
        self.sleeps = 0

    def clock(self):
        return self.now

    async def sleep(self, dt):
        self.sleeps += 1
        self.now += dt + self.overshoot_s
        await asyncio.sleep(0)  # let other tasks run, as a real sleep would


@pytest.mark.parametrize("speed", [0.25, 1.0, 4.0, 16.0])
def test_pacing_follows_the_start_clock_without_drift(session, speed):
    path, _, _ = session
    ft = FakeTime()
    src = ReplaySource(path, speed=speed, frame_s=0.02, clock=ft.clock, sleep=ft.sleep)
    items = asyncio.run(_collect(src))
    frames = [x for x in items if isinstance(x, Frame) and x.stream_id == "emg"]
    t0 = 100.0
    for f in frames:
        due = t0 + (f.end_index / 1000.0) / speed  # data time at which the frame's last sample exists
        # Never early, and late by at most one oversleep plus the per-step rounding, however long the replay.
        assert due - 1e-9 <= f.arrival_s <= due + 0.003 + 0.02 / speed + 1e-9
    # 3.1 s of data at this speed: cumulative per-step sleeps would have added 155 * 3 ms = 0.47 s of drift
    assert frames[-1].arrival_s - t0 == pytest.approx(3.0 / speed, abs=0.003 + 0.02 / speed)


def test_pause_resume_seek_and_speed_controls(session):
    path, emg, _ = session
    ft = FakeTime(overshoot_s=0.0)
    src = ReplaySource(path, speed=1.0, frame_s=0.02, clock=ft.clock, sleep=ft.sleep)
    log = {}

    def control(src, item, out):
        if isinstance(item, Frame) and item.stream_id == "emg" and item.end_index == 500 and "paused" not in log:
            src.pause()
            log["paused"] = ft.now
            log["sleeps"] = ft.sleeps
        elif isinstance(item, Frame) and item.stream_id == "emg" and item.end_index == 800 and "seek" not in log:
            src.seek_event(3)  # the repetition at index 1000
            src.set_speed(16.0)
            log["seek"] = len(out)

    async def run():
        task = asyncio.ensure_future(_collect(src, on_item=control))
        while "paused" not in log:
            await asyncio.sleep(0)
        while ft.sleeps < log["sleeps"] + 20:  # stays paused for 20 control polls (1 s simulated)
            await asyncio.sleep(0)
        src.resume()
        return await task

    items = asyncio.run(run())
    emg_frames = [x for x in items if isinstance(x, Frame) and x.stream_id == "emg"]
    idx = np.concatenate([f.counts[:, 1] for f in emg_frames])
    # No loss across the pause; the seek jumps to the repetition's index; nothing after it is lost either
    np.testing.assert_array_equal(idx, np.r_[0:800, 1000:1200, 1500:3000])
    after_pause = next(f for f in emg_frames if f.first_index == 500)
    assert after_pause.arrival_s >= log["paused"] + 1.0  # the pause held the stream
    # the step in progress finishes (its IMU frame), then the seek takes effect
    k = next(i for i in range(log["seek"], len(items)) if not isinstance(items[i], Frame))
    assert all(items[i].stream_id == "imu" for i in range(log["seek"], k))
    assert items[k].kind is EventKind.STREAMS and items[k].payload["seek_s"] == pytest.approx(1.0)
    assert items[k + 1].kind is EventKind.ANNOTATION and items[k + 1].payload["kind"] == REPETITION
    assert emg_frames[-1].arrival_s - items[k + 2].arrival_s == pytest.approx(2.0 / 16, abs=0.02)  # x16 now


def test_bad_speed_and_bad_file(session, tmp_path):
    path, _, _ = session
    for bad in (0.1, 17.0, 0.0, -1.0):
        with pytest.raises(ValueError, match="speed"):
            ReplaySource(path, speed=bad)
    with pytest.raises(ValueError, match="speed"):
        ReplaySource(path).set_speed(32.0)
    junk = tmp_path / "junk.medius"
    junk.write_bytes(b"\x00" * 5000)
    with pytest.raises(RecordingError, match="not a readable"):
        asyncio.run(ReplaySource(junk).start())
