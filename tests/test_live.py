"""The live session (Qt-free): lossless pump, same numbers as the batch pipeline, MVIC references, gaps."""

from __future__ import annotations

import asyncio
import queue

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.live import DisplayRing, LiveSession, live_symmetry_index, side_pairs
from dsp.pipeline import PipelineConfig, run_batch
from sensors.sim import SimConfig, Simulator, SimulatorSource, Trial
from sensors.stream import Event, EventKind, Frame

GMED, TFL = "gluteus_medius", "tfl"


class FakeSensors:
    """Stands in for SensorThread's consumer side: a queue the test fills."""

    def __init__(self, items):
        self.q = queue.SimpleQueue()
        for item in items:
            self.q.put(item)

    def drain(self, max_items=None):
        out = []
        while max_items is None or len(out) < max_items:
            try:
                out.append(self.q.get_nowait())
            except queue.Empty:
                break
        return out

    @property
    def backlog(self):
        return self.q.qsize()


class ChunkedSensors(FakeSensors):
    """Releases the queue in uneven bursts, as a GUI timer would see it."""

    def __init__(self, items, burst_sizes):
        super().__init__(items)
        self.bursts = list(burst_sizes)

    def drain(self, max_items=None):
        n = self.bursts.pop(0) if self.bursts else None
        return super().drain(n)


def collect(sim: Simulator) -> list:
    async def main():
        src = SimulatorSource(sim, speed=None)
        await src.start()
        return [item async for item in src.items()]

    return asyncio.run(main())


def short_protocol():
    return [Trial.rest(1.0), Trial.mvic(GMED, "left", 2.0), Trial.mvic(TFL, "left", 2.0),
            Trial.exercise("clamshell", "left", 2), Trial.exercise("clamshell", "right", 2), Trial.rest(0.5)]


@pytest.fixture(scope="module")
def sim():
    return Simulator(SimConfig(seed=3, affected_side="right", gmed_deficit=0.4), short_protocol())


@pytest.fixture(scope="module")
def items(sim):
    return collect(sim)


@given(st.integers(1, 50), st.lists(st.integers(0, 120), min_size=1, max_size=40))
@settings(max_examples=60, deadline=None)
def test_display_ring_holds_the_newest_samples_in_order(capacity, sizes):
    ring = DisplayRing(capacity, 2)
    written = []
    k = 0
    for n in sizes:
        block = np.arange(k, k + n, dtype=float).repeat(2).reshape(n, 2)
        ring.write(block)
        written.extend(range(k, k + n))
        k += n
    expected = np.full(capacity, np.nan)
    tail = np.array(written[-capacity:], dtype=float)
    if len(tail):
        expected[capacity - len(tail):] = tail
    np.testing.assert_array_equal(ring.view()[:, 0], expected)


def test_pump_is_lossless_and_matches_the_batch_pipeline(sim, items):
    bursts = np.random.default_rng(0).integers(1, 40, size=len(items)).tolist()
    session = LiveSession(ChunkedSensors(items, bursts), display_s=2.0)
    while not session.ended:
        session.pump()
    emg = session.streams["emg"]
    n = sim.n_emg_samples
    assert emg.received == n and emg.lost == 0 and emg.next_index == n
    # the whole recording through the batch twin: the live display must hold its last 2 s exactly
    physical = sim.emg_stream.to_physical(sim.emg_counts(0, n))
    batch = run_batch(physical, PipelineConfig(sim.emg_stream.rate_hz))
    cap = emg.display.capacity
    np.testing.assert_array_equal(emg.display.view(), batch.filtered[-cap:])
    np.testing.assert_array_equal(emg.envelope.view(), batch.envelope[-cap:])
    imu = session.streams["imu"]
    np.testing.assert_array_equal(imu.display.view(), sim.imu_stream.to_physical(sim.imu_counts(0, imu.next_index))[-imu.display.capacity:])


def naive_moving_rms(x, w):
    out = np.empty_like(x)
    for i in range(len(x)):
        seg = x[max(0, i - w + 1):i + 1]
        out[i] = np.sqrt(np.mean(seg ** 2, axis=0))
    return out


def test_mvic_reference_is_the_peak_half_second_rms_of_the_mvic_trial(sim, items):
    session = LiveSession(FakeSensors(items))
    session.pump()
    fs = sim.emg_stream.rate_hz
    physical = sim.emg_stream.to_physical(sim.emg_counts(0, sim.n_emg_samples))
    filtered = run_batch(physical, PipelineConfig(fs)).filtered
    labels = [(c.muscle, c.side) for c in sim.emg_stream.channels]
    starts = [e.payload["index"] for e in items if isinstance(e, Event) and e.kind is EventKind.TRIAL
              and e.payload["phase"] == "start"]
    stops = [e.payload["index"] for e in items if isinstance(e, Event) and e.kind is EventKind.TRIAL
             and e.payload["phase"] == "stop"]
    for trial_no, key in ((1, (GMED, "left")), (2, (TFL, "left"))):
        c = labels.index(key)
        lo, hi = starts[trial_no], stops[trial_no]
        # the running RMS at the trial's samples includes the half second before it, as the live filter does
        rms = naive_moving_rms(filtered[max(0, lo - 999):hi, c:c + 1], 1000)[min(lo, 999):]
        assert session.mvic_ref[key] == pytest.approx(float(rms.max()), rel=1e-9)
    assert (GMED, "right") not in session.mvic_ref  # no MVIC trial for it: no reference, no invented number


def test_finished_trials_show_the_affected_side_deficit(sim, items):
    session = LiveSession(FakeSensors(items), affected_side="right")
    session.pump()
    assert [(t.movement, t.side) for t in session.finished] == [("clamshell", "left"), ("clamshell", "right")]
    left = session.finished[0]
    # the simulator's clamshell drives GMed to ~40 %MVIC on the working side (clinical.md §4)
    assert 25.0 < left.pct_mvic[GMED] < 60.0
    assert left.ratio == pytest.approx(left.pct_mvic[GMED] / left.pct_mvic[TFL])
    pair = side_pairs(session.finished)["clamshell"]
    assert set(pair) == {"left", "right"}


def test_live_symmetry_index_is_the_analysis_one_with_its_guard():
    assert live_symmetry_index(30.0, 40.0) == pytest.approx(-28.571, abs=1e-3)  # clinical.md §8 worked example
    assert live_symmetry_index(1.0, 2.0) is None  # both barely active: no ratio of noise
    assert live_symmetry_index(None, 40.0) is None


def test_gaps_are_counted_exactly_and_shown_as_nan():
    sim = Simulator(SimConfig(seed=5, packet_loss=0.05), [Trial.rest(3.0)])
    items = collect(sim)
    gaps = [e.payload["n_missing"] for e in items if isinstance(e, Event) and e.kind is EventKind.GAP
            and e.payload["stream_id"] == "emg"]
    assert gaps, "the seed should drop some packets"
    session = LiveSession(FakeSensors(items), display_s=5.0)
    session.pump()
    emg = session.streams["emg"]
    assert emg.lost == sum(gaps)
    assert emg.received + emg.lost == sim.n_emg_samples
    assert emg.loss_pct == pytest.approx(100.0 * sum(gaps) / sim.n_emg_samples)
    shown = emg.display.view()[-sim.n_emg_samples:, 0]
    assert int(np.isnan(shown).sum()) == sum(gaps)


def test_a_frame_for_an_undeclared_stream_is_reported_not_raised():
    bad = Frame("nope", 0, np.zeros((4, 1), np.int16))
    session = LiveSession(FakeSensors([bad]))
    session.pump()
    assert session.events[-1].kind is EventKind.ERROR and "nope" in session.events[-1].message


def test_after_a_replay_seek_indices_resume_where_the_seek_landed(sim):
    from sensors.stream import Event as Ev

    seek_s = 1.25
    first = int(np.ceil(seek_s * sim.emg_stream.rate_hz))
    frame = Frame("emg", first, sim.emg_counts(first, 40))
    session = LiveSession(FakeSensors([Ev(EventKind.STREAMS, payload={"streams": [sim.emg_stream], "seek_s": seek_s}),
                                       frame]))
    session.pump()
    emg = session.streams["emg"]
    assert emg.lost == 0 and emg.received == 40 and emg.next_index == first + 40


def test_live_and_replayed_sessions_give_identical_numbers(tmp_path):
    """Record while the live view computes; replay the file through a fresh live view: every number equal."""
    from sensors.recording import Recorder
    from sensors.replay import ReplaySource

    sim = Simulator(SimConfig(seed=11, affected_side="right", gmed_deficit=0.4, packet_loss=0.01, hum_uv=5.0),
                    short_protocol())
    items = collect(sim)
    path = tmp_path / "s.medius"
    recorder = Recorder(path, {"patient_code": "P-1"})
    bursts = np.random.default_rng(4).integers(1, 30, size=len(items)).tolist()
    live = LiveSession(ChunkedSensors(items, bursts), display_s=3.0, recorder=recorder)
    while not live.ended:
        live.pump()
    recorder.close()
    assert recorder.poll_events() == []

    async def replay_items():
        src = ReplaySource(path, speed=None)
        await src.start()
        out = [item async for item in src.items()]
        await src.stop()
        return out

    replayed = LiveSession(FakeSensors(asyncio.run(replay_items())), display_s=3.0)
    replayed.pump()
    assert replayed.ended and live.streams.keys() == replayed.streams.keys()
    for sid, a in live.streams.items():
        b = replayed.streams[sid]
        assert (a.received, a.lost, a.next_index) == (b.received, b.lost, b.next_index), sid
        assert a.lost > 0 if sid == "emg" else True  # the loss is part of what must match
        np.testing.assert_array_equal(a.display.view(), b.display.view())
        if a.envelope is not None:
            np.testing.assert_array_equal(a.envelope.view(), b.envelope.view())
            assert len(a.fatigue_mdf_hz) == len(b.fatigue_mdf_hz) > 0
            for (ta, ma), (tb, mb) in zip(a.fatigue_mdf_hz, b.fatigue_mdf_hz):
                assert ta == tb and np.array_equal(ma, mb)
    assert live.mvic_ref == replayed.mvic_ref and len(live.mvic_ref) == 2
    assert live.finished == replayed.finished and len(live.finished) == 2


def test_a_clinician_guided_session_records_trials_the_analysis_reads(sim, items, tmp_path):
    """A device that scripts no trials: the clinician marks them; live references and the analysis follow."""
    from app.analysis.data import load_session
    from app.analysis.session import analyze
    from sensors.recording import Recorder

    plain = [i for i in items if not (isinstance(i, Event) and i.kind is EventKind.TRIAL)]
    fs = sim.emg_stream.rate_hz
    marks = []  # (sample index, action) from the simulator's own protocol, as a clinician would press
    for trial, t0, t1 in zip(sim.timeline.trials, sim.timeline.starts_s, sim.timeline.ends_s):
        if trial.kind != "rest":
            marks += [(int(round(t0 * fs)), trial), (int(round(t1 * fs)), None)]
    path = tmp_path / "guided.medius"
    recorder = Recorder(path, {"patient_code": "P-7", "patient": {"code": "P-7", "affected_side": "right"}})
    queue_ = FakeSensors([])
    session = LiveSession(queue_, recorder=recorder, affected_side="right")
    with pytest.raises(ValueError, match="no EMG stream"):
        session.start_trial("rest")
    for item in plain:
        queue_.q.put(item)
        session.pump()
        emg = session.streams.get("emg")
        while emg is not None and marks and emg.next_index >= marks[0][0]:
            _, trial = marks.pop(0)
            if trial is None:
                session.stop_trial()
            else:
                session.start_trial(trial.kind, side=trial.side, muscle=trial.muscle, movement=trial.movement)
    recorder.close()
    assert recorder.poll_events() == [] and not marks and not session.source_drives_trials
    # the live references equal what the scripted session gives, to within the press timing (one 20-sample frame)
    scripted = LiveSession(FakeSensors(items))
    scripted.pump()
    for key, ref in scripted.mvic_ref.items():
        assert session.mvic_ref[key] == pytest.approx(ref, rel=0.02), key
    assert [(t.movement, t.side) for t in session.finished] == [("clamshell", "left"), ("clamshell", "right")]
    result = analyze(load_session(path))
    kinds = sorted(t["type"] for t in result["session"]["trials"])
    assert kinds == ["exercise", "exercise", "mvic", "mvic"]
    assert result["sides"]["left"]["trials"]  # the exercise trials were analysed per side


def test_trial_controls_refuse_incomplete_trials_and_scripted_sources(sim, items):
    scripted = LiveSession(FakeSensors(items[:3]))  # the simulator's first event after STREAMS: a trial start
    scripted.pump()
    assert scripted.source_drives_trials
    with pytest.raises(ValueError, match="scripts its own trials"):
        scripted.stop_trial()
    plain = [i for i in items[:10] if not (isinstance(i, Event) and i.kind is EventKind.TRIAL)]
    session = LiveSession(FakeSensors(plain))
    session.pump()
    with pytest.raises(ValueError, match="needs a muscle"):
        session.start_trial("mvic", side="left")
    with pytest.raises(ValueError, match="needs a movement"):
        session.start_trial("exercise", side="left")
    with pytest.raises(ValueError, match="unknown trial kind"):
        session.start_trial("jumping")
    assert session.stop_trial() is None
