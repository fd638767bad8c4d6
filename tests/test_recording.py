"""The session file: lossless round trip, random access, gaps/events, crash safety, disk full, bad files."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from sensors.recording import (
    MARKER, TRIAL_START, Recorder, RecordingError, SessionReader, SessionWriter, store_analysis_result)
from sensors.sim import SimConfig, Simulator
from sensors.stream import ChannelInfo, Event, EventKind, Frame, StreamInfo

ROOT = Path(__file__).resolve().parents[1]
CHILD = Path(__file__).with_name("recording_child.py")

EMG = StreamInfo(
    "emg", 2000.0,
    (ChannelInfo("A1", unit="mV", gain=0.0005, offset=3.0, muscle="gluteus_medius", side="right"),
     ChannelInfo("A2", unit="mV", gain=0.00025, offset=-1.0, muscle="tfl", side="left")),
    dtype="int16", device="testdev")
IMU = StreamInfo(
    "imu", 148.14814814814815, (ChannelInfo("ax", kind="acc", unit="g", gain=1 / 4096),), dtype="float32",
    spectral_ok=False, note="IMU rate", device="testdev")


def _emg_counts(n, seed=1):
    return np.random.default_rng(seed).integers(-32768, 32768, size=(n, 2)).astype(np.int16)


def _write_reference_session(path, emg, imu, gap=(3000, 700), frame_n=37):
    """Write ``emg`` (with samples [gap) withheld) and ``imu`` in small interleaved frames."""
    with SessionWriter.create(path, {"patient_code": "P-007", "session": {"note": "ünïcode"}}) as w:
        w.add_stream(EMG)
        w.add_stream(IMU)
        j = 0
        for i in range(0, emg.shape[0], frame_n):
            lo, hi = i, min(i + frame_n, emg.shape[0])
            keep = [(a, b) for a, b in ((lo, min(hi, gap[0])), (max(lo, sum(gap)), hi)) if a < b]
            for a, b in keep:
                w.write_frame(Frame("emg", a, emg[a:b]))
            while j < imu.shape[0] and j / IMU.rate_hz <= i / EMG.rate_hz:  # interleave by time
                w.write_frame(Frame("imu", j, imu[j:j + 3]))
                j += 3
        w.add_event(TRIAL_START, "emg", 100, None, {"trial": 1, "type": "side-lying abduction", "repetitions": 10})
        w.add_event(MARKER, None, None, 2.5, {"text": "patient coughed"})


def test_round_trip_is_lossless_with_random_access(tmp_path):
    emg = _emg_counts(9001)
    imu = np.random.default_rng(2).normal(size=(700, 1)).astype(np.float32)
    path = tmp_path / "s.medius"
    _write_reference_session(path, emg, imu)
    assert sorted(os.listdir(tmp_path)) == ["s.medius"]  # closed file is self-contained (no -wal/-shm)

    with SessionReader(path) as r:
        assert r.schema_version == 1
        assert r.meta["patient_code"] == "P-007" and r.meta["session"] == {"note": "ünïcode"}
        assert r.streams == [EMG, IMU]
        assert r.n_samples("emg") == 9001
        assert r.gaps("emg") == [(3000, 700)]
        expected = emg.copy()
        expected[3000:3700] = 0
        np.testing.assert_array_equal(r.read_counts("emg"), expected)
        assert r.read_counts("emg").dtype == np.int16
        for a, b in [(0, 1), (2990, 3710), (3699, 3701), (5000, 9001), (8999, 20000), (123, 4567)]:
            np.testing.assert_array_equal(r.read_counts("emg", a, b), expected[a:b])
        phys = r.read_physical("emg", 2900, 3800)
        ref = (emg[2900:3800].astype(np.float64) - [3.0, -1.0]) * [0.0005, 0.00025]
        ref[100:800] = np.nan
        np.testing.assert_array_equal(phys, ref)
        n_imu = r.n_samples("imu")
        np.testing.assert_array_equal(r.read_counts("imu"), imu[:n_imu])
        kinds = [(e["kind"], e["stream_id"], e["index"], e["time_s"]) for e in r.events()]
        assert kinds == [(TRIAL_START, "emg", 100, None), (MARKER, None, None, 2.5)]
        assert r.events()[1]["payload"] == {"text": "patient coughed"}
        assert r.event_time_s(r.events()[0]) == 100 / 2000.0
        blocks = list(r.iter_blocks("emg", 2500, 4000))
        assert [b[0] for b in blocks][0] == 2500
        np.testing.assert_array_equal(np.concatenate([b[1] for b in blocks]), emg[np.r_[2500:3000, 3700:4000]])


def test_overlapping_frame_is_refused_and_nothing_is_lost(tmp_path):
    path = tmp_path / "s.medius"
    counts = _emg_counts(300)
    with SessionWriter.create(path, {"patient_code": "X"}) as w:
        w.add_stream(EMG)
        w.write_frame(Frame("emg", 0, counts[:200]))
        with pytest.raises(RecordingError, match="overlaps"):
            w.write_frame(Frame("emg", 150, counts[150:300]))
        with pytest.raises(RecordingError, match="undeclared"):
            w.write_frame(Frame("nope", 0, counts))
        with pytest.raises(RecordingError, match="losslessly"):
            w.write_frame(Frame("emg", 200, counts[200:].astype(np.float64)))
        w.write_frame(Frame("emg", 200, counts[200:]))
    with SessionReader(path) as r:
        np.testing.assert_array_equal(r.read_counts("emg"), counts)
        assert r.gaps("emg") == []
    with pytest.raises(RecordingError, match="already exists"):
        SessionWriter.create(path, {})


def test_analysis_results_are_stored_per_run(tmp_path):
    path = tmp_path / "s.medius"
    with SessionWriter.create(path, {"patient_code": "X"}) as w:
        w.add_stream(EMG)
    a = store_analysis_result(path, "ratio", {"window_s": 0.1}, {"gmed_tfl": [1.5, 1.25]})
    b = store_analysis_result(path, "fatigue", {}, {"mdf_slope": -0.3})
    with SessionReader(path) as r:
        runs = r.analysis_results()
        assert [x["run_id"] for x in runs] == [a, b]
        assert r.analysis_results("ratio")[0]["result"] == {"gmed_tfl": [1.5, 1.25]}
        assert r.analysis_results("ratio")[0]["params"] == {"window_s": 0.1}


def _session_bytes(tmp_path, seconds=20):
    path = tmp_path / "good.medius"
    with SessionWriter.create(path, {"patient_code": "X"}) as w:
        w.add_stream(EMG)
        w.write_frame(Frame("emg", 0, _emg_counts(int(seconds * 2000))))
    return path.read_bytes()


@pytest.mark.parametrize("damage, reason", [
    ("text", "not an SQLite database"),
    ("empty", "not an SQLite database"),
    ("truncated", "truncated"),
    ("other_sqlite", "not a Medius session"),
    ("newer", "newer Medius"),
    ("scrambled", "damaged|not a readable"),
])
def test_bad_files_raise_one_clear_error(tmp_path, damage, reason):
    good = _session_bytes(tmp_path)
    bad = tmp_path / "bad.medius"
    if damage == "text":
        bad.write_text("time,emg\n0,1\n")
    elif damage == "empty":
        bad.write_bytes(b"")
    elif damage == "truncated":
        bad.write_bytes(good[: len(good) // 2])
    elif damage == "other_sqlite":
        sqlite3.connect(bad).execute("CREATE TABLE t(x)").connection.close()
    elif damage == "newer":
        bad.write_bytes(good)
        conn = sqlite3.connect(bad)
        conn.execute("PRAGMA user_version=99")
        conn.close()
    elif damage == "scrambled":
        data = bytearray(good)
        noise = np.random.default_rng(0).integers(0, 256, len(data) - 8192, dtype=np.uint8)
        data[4096:len(data) - 4096] = noise.tobytes()
        bad.write_bytes(bytes(data))
    with pytest.raises(RecordingError, match=reason):
        r = SessionReader(bad)
        # a file whose damage is only inside the data pages still fails with the same exception type
        for s in r.streams:
            r.read_counts(s.stream_id)


def test_recorder_writes_frames_events_and_reports_bad_frames(tmp_path):
    path = tmp_path / "rec.medius"
    counts = _emg_counts(5000)
    rec = Recorder(path, {"patient_code": "R"}, [])
    rec.put(Event(EventKind.STREAMS, payload={"streams": [EMG]}))
    for i in range(0, 2000, 50):
        rec.put(Frame("emg", i, counts[i:i + 50]))
    rec.put(Frame("emg", 1000, counts[1000:1050]))  # overlap: refused, recording goes on
    rec.add_event(MARKER, time_s=1.0, payload={"text": "m"})
    for start in range(2000, 2500, 100):  # reported packet by packet, then once more by the index jump
        rec.put(Event(EventKind.GAP, payload={"stream_id": "emg", "start_index": start, "n_missing": 100}))
    rec.put(Event(EventKind.DISCONNECTED, source="dev", message="link lost"))
    rec.put(Event(EventKind.TRIAL, "sim", "exercise start", {"kind": "exercise", "movement": "clam", "reps": 5,
                                                            "trial": 2, "phase": "start", "index": 2600,
                                                            "stream_id": "emg"}))
    rec.put(Event(EventKind.MARKER, "sim", "pain", {"index": 2700, "stream_id": "emg"}))
    for i in range(2500, 5000, 50):
        rec.put(Frame("emg", i, counts[i:i + 50]))
    rec.close()
    assert rec.backlog == 0 and not rec.recording
    errors = rec.poll_events()
    assert len(errors) == 1 and errors[0].kind is EventKind.ERROR and not errors[0].payload["fatal"]
    assert "overlaps" in errors[0].message
    with SessionReader(path) as r:
        expected = counts.copy()
        expected[2000:2500] = 0
        np.testing.assert_array_equal(r.read_counts("emg"), expected)
        assert r.gaps("emg") == [(2000, 500)]
        ev = r.events()
        assert [e["kind"] for e in ev] == [MARKER, "disconnected", TRIAL_START, MARKER]
        assert ev[1]["payload"]["message"] == "link lost"
        assert ev[1]["time_s"] == 1.0  # placed where the data stood when it arrived (2000 samples at 2 kHz)
        assert (ev[2]["stream_id"], ev[2]["index"], ev[2]["time_s"]) == ("emg", 2600, None)
        assert ev[2]["payload"] == {"kind": "exercise", "movement": "clam", "reps": 5, "trial": 2, "type": "clam",
                                    "repetitions": 5}
        assert (ev[3]["index"], ev[3]["payload"]) == (2700, {"text": "pain"})


def _child_env():
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def _check_ramp(path, n_expected_min):
    with SessionReader(path) as r:
        n = r.n_samples("emg")
        counts = r.read_counts("emg")
        assert r.gaps("emg") == []
    np.testing.assert_array_equal(counts[:, 0], np.arange(n))  # continuous: nothing lost or duplicated
    np.testing.assert_array_equal(counts[:, 1], (np.arange(n, dtype=np.int64) * 7919) % 4001 - 2000)
    assert n >= n_expected_min
    return n


def test_kill_9_loses_at_most_one_second(tmp_path):
    """A subprocess records the simulator in real time and is SIGKILLed after 2.5 s of data: the file opens as it
    is, indices run without a gap, and every sample handed over more than 1 s (of data) before the kill is there,
    equal to the simulator's own samples for those indices."""
    path = tmp_path / "killed.medius"
    seed, rate_hz = 5, 2000
    proc = subprocess.Popen([sys.executable, str(CHILD), "kill", str(path), str(seed)], stdout=subprocess.PIPE,
                            text=True, env=_child_env())
    last = 0
    try:
        for line in proc.stdout:
            last = int(line)
            if last >= 2.5 * rate_hz:  # more than one commit period: something must be durable
                break
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert last >= 2.5 * rate_hz
    assert (tmp_path / "killed.medius-wal").exists()  # really crashed mid-recording: recovery is SQLite's job
    sim = Simulator(SimConfig(seed=seed))
    with SessionReader(path) as r:
        assert [s.stream_id for s in r.streams] == ["emg", "imu"]
        n = r.n_samples("emg")
        assert r.gaps("emg") == [] and r.gaps("imu") == []  # indices continuous (the default config loses nothing)
        assert n >= last - rate_hz
        np.testing.assert_array_equal(r.read_counts("emg"), sim.emg_counts(0, n))
        n_imu = r.n_samples("imu")
        assert n_imu >= (last - rate_hz) * sim.config.imu_rate_hz / rate_hz - sim.config.packet_samples
        np.testing.assert_array_equal(r.read_counts("imu"), sim.imu_counts(0, n_imu))


def test_disk_full_stops_with_error_event_and_keeps_committed_data(tmp_path):
    path = tmp_path / "full.medius"
    out = subprocess.run([sys.executable, str(CHILD), "diskfull", str(path), str(400_000)], capture_output=True,
                         text=True, env=_child_env(), timeout=120)
    assert out.returncode == 0, out.stderr
    events = json.loads(out.stdout)
    fatal = [e for e in events if e["payload"]["fatal"]]
    assert len(fatal) == 1 and fatal[0]["kind"] == "error"
    assert "full" in fatal[0]["message"] or "I/O" in fatal[0]["message"] or "too large" in fatal[0]["message"]
    committed = fatal[0]["payload"]["committed"]["emg"]
    assert committed > 0
    n = _check_ramp(path, committed)
    assert n == committed


def test_create_in_a_missing_folder_fails_clearly(tmp_path):
    with pytest.raises(RecordingError, match="cannot create session file"):
        SessionWriter.create(tmp_path / "no" / "such" / "dir.medius", {"patient_code": "X"})
    with pytest.raises(RecordingError, match="meta must be a dict"):
        SessionWriter.create(tmp_path / "m.medius", ["not", "a", "dict"])
    assert not (tmp_path / "m.medius").exists()


def test_one_commit_per_second_of_data(tmp_path):
    path = tmp_path / "c.medius"
    commits = []
    with SessionWriter.create(path, {"patient_code": "C"}) as w:
        w.add_stream(EMG)
        w._conn.set_trace_callback(lambda sql: commits.append(sql) if sql.startswith("COMMIT") else None)
        counts = _emg_counts(2000 * 10)
        for i in range(0, counts.shape[0], 20):  # 10 s of data in 10 ms frames
            w.write_frame(Frame("emg", i, counts[i:i + 20]))
            if i == 2000 * 5:
                with SessionReader(path) as r:  # mid-recording, another reader sees the last commit
                    assert r.n_samples("emg") == 2000 * 5
        assert len(commits) == 10
    with SessionReader(path) as r:
        np.testing.assert_array_equal(r.read_counts("emg"), counts)


def test_recorder_commits_a_stalled_streams_tail_within_a_second(tmp_path):
    path = tmp_path / "stall.medius"
    rec = Recorder(path, {"patient_code": "S"}, [EMG])
    counts = _emg_counts(600)
    rec.put(Frame("emg", 0, counts))  # 0.3 s of data, then the device goes quiet
    deadline = time.monotonic() + 30
    n = 0
    while n < 600 and time.monotonic() < deadline:  # waits for a condition; asserts no duration
        time.sleep(0.1)
        with SessionReader(path) as r:
            n = r.n_samples("emg")
    assert n == 600 and rec.recording
    rec.close()
