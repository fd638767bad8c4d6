"""The simulator against independent measurements: scipy Welch MDF, numpy RMS, the IMU angle, loss counts."""

from __future__ import annotations

import asyncio
import json

import numpy as np
import pytest
from scipy.signal import butter, sosfiltfilt, welch

from sensors.sim import LiftOff, SimConfig, Simulator, SimulatorSource, Trial
from sensors.sim.protocol import GMED, MOVEMENTS, TFL
from sensors.stream import Event, EventKind, Frame, Source

FS = 2000


def _uv(sim: Simulator, t0_s: float, t1_s: float) -> np.ndarray:
    a, b = int(round(t0_s * FS)), int(round(t1_s * FS))
    return sim.emg_counts(a, b - a) * sim.config.gain_uv_per_count


def _mdf(x: np.ndarray, nperseg: int = 1024) -> np.ndarray:
    f, p = welch(x, fs=FS, nperseg=nperseg, axis=0)
    c = np.cumsum(p, axis=0)
    return f[np.argmax(c >= c[-1] / 2, axis=0)]


def _col(sim: Simulator, label: str) -> int:
    return [c.label for c in sim.emg_stream.channels].index(label)


def test_same_seed_is_bit_identical_and_ranges_are_chunk_invariant():
    trials = [Trial.rest(1.0), Trial.exercise("clamshell", "left", 2)]
    cfg = SimConfig(seed=7, hum_uv=10, motion_uv=100, include_gmax=True)
    a, b = Simulator(cfg, trials), Simulator(cfg, trials)
    n = a.n_emg_samples
    whole = a.emg_counts(0, n)
    assert whole.shape == (n, 6) and whole.dtype == np.int16
    np.testing.assert_array_equal(whole, b.emg_counts(0, n))
    pieces = []
    edges = [0, 1, 7, 300, 301, 2048, 5000, n]
    for lo, hi in zip(edges[:-1], edges[1:]):
        pieces.append(b.emg_counts(lo, hi - lo))
    np.testing.assert_array_equal(whole, np.concatenate(pieces))
    m = a.n_emg_samples * 100 // FS
    np.testing.assert_array_equal(a.imu_counts(0, m),
                                  np.concatenate([b.imu_counts(0, 333), b.imu_counts(333, m - 333)]))
    assert a.truth.to_dict() == b.truth.to_dict()
    other = Simulator(SimConfig(seed=8, hum_uv=10, motion_uv=100, include_gmax=True), trials)
    assert not np.array_equal(whole, other.emg_counts(0, n))


def test_mdf_is_in_the_physiological_range_and_matches_the_truth():
    trials = [Trial.mvic(GMED, "left", 12.0), Trial.mvic(TFL, "right", 12.0)]
    sim = Simulator(SimConfig(seed=1, noise_uv=1.0), trials)
    for label, t0 in (("L_GMED", 1.5), ("R_TFL", 13.5)):
        x = _uv(sim, t0, t0 + 9.0)[:, _col(sim, label)]
        measured = _mdf(x)
        truth = sim.truth.mdf["mdf_hz"][label][int(t0 * 10)]
        assert 80.0 <= measured <= 120.0
        assert measured == pytest.approx(truth, rel=0.05)
        # amplitude at 100 %MVIC is the declared MVIC RMS
        mvic_uv = sim.config.mvic_rms_uv[GMED if "GMED" in label else TFL]
        assert np.sqrt(np.mean(x**2)) == pytest.approx(mvic_uv, rel=0.05)


def test_fatigue_mdf_slope_and_amplitude_rise_match_the_parameters():
    slope_pct_s, amp_pct_s = -0.4, 0.8
    sim = Simulator(SimConfig(seed=5, noise_uv=1.0, fatigue_mdf_pct_per_s=slope_pct_s, fatigue_amp_pct_per_s=amp_pct_s),
                    [Trial.rest(2.0), Trial.hold("left", 62.0)])
    rep = sim.truth.reps[0]
    x = _uv(sim, 0, sim.duration_s)
    win = 2 * FS
    starts = np.arange(int(rep["top_start_s"] * FS), int(rep["top_end_s"] * FS) - win + 1, win)
    work_s = (starts + win / 2) / FS - rep["start_s"]  # the fatigue clock starts with the hold
    mdf_slopes, rms_slopes = [], []
    for label in ("L_GMED", "L_TFL"):  # both working muscles; Welch MDF of 2 s windows scatters by ~4 Hz
        col = x[:, _col(sim, label)]
        mdf = np.array([_mdf(col[s : s + win]) for s in starts])
        rms = np.array([np.sqrt(np.mean(col[s : s + win] ** 2)) for s in starts])
        slope, intercept = np.polyfit(work_s, mdf, 1)
        mdf_slopes.append(slope / intercept * 100)
        a_slope, a_int = np.polyfit(work_s, rms, 1)
        rms_slopes.append(a_slope / a_int * 100)
    assert np.mean(mdf_slopes) == pytest.approx(slope_pct_s, abs=0.1)
    assert np.mean(rms_slopes) == pytest.approx(amp_pct_s, rel=0.2)
    # the truth trajectory has exactly the set normalised slope, and the idle side does not fatigue
    t = np.array(sim.truth.mdf["t_s"])
    on = (t >= rep["start_s"]) & (t <= rep["end_s"] - 0.1)
    s_true, i_true = np.polyfit(t[on] - rep["start_s"], np.array(sim.truth.mdf["mdf_hz"]["L_GMED"])[on], 1)
    assert s_true / i_true * 100 == pytest.approx(slope_pct_s, rel=1e-3)
    assert np.all(np.array(sim.truth.mdf["mdf_hz"]["R_GMED"]) == sim.config.mdf_hz[GMED])


def test_affected_side_gmed_under_activation_and_tfl_compensation():
    deficit, compensation = 0.4, 0.3
    # long windows: the RMS of 1 s of band-limited noise scatters by ~6 %
    trials = [Trial.mvic(GMED, "left", 10), Trial.mvic(GMED, "right", 10), Trial.mvic(TFL, "left", 10),
              Trial.mvic(TFL, "right", 10),
              Trial.exercise("side_lying_abduction", "left", 8), Trial.exercise("side_lying_abduction", "right", 8)]
    sim = Simulator(SimConfig(seed=2, affected_side="right", gmed_deficit=deficit, tfl_compensation=compensation),
                    trials)
    tl = sim.timeline

    def rms(label, t0, t1):
        return np.sqrt(np.mean(_uv(sim, t0, t1)[:, _col(sim, label)] ** 2))

    mvic = {}
    for i in range(4):  # the top of each MVIC (1 s ramps at both ends)
        trial = tl.trials[i]
        label = f"{trial.side[0].upper()}_{'GMED' if trial.muscle == GMED else 'TFL'}"
        mvic[label] = rms(label, tl.starts_s[i] + 1.5, tl.ends_s[i] - 1.5)
    pct = {}
    for rep in sim.truth.reps:
        side = rep["side"][0].upper()
        for m in ("GMED", "TFL"):
            pct.setdefault(f"{side}_{m}", []).append(
                rms(f"{side}_{m}", rep["top_start_s"], rep["top_end_s"]) / mvic[f"{side}_{m}"] * 100)
    gmed_ratio = np.mean(pct["R_GMED"]) / np.mean(pct["L_GMED"])
    tfl_ratio = np.mean(pct["R_TFL"]) / np.mean(pct["L_TFL"])
    assert gmed_ratio == pytest.approx(1 - deficit, rel=0.1)
    assert tfl_ratio == pytest.approx(1 + compensation, rel=0.1)
    peak = MOVEMENTS["side_lying_abduction"].peak_pct_mvic[GMED]
    assert np.mean(pct["L_GMED"]) == pytest.approx(peak, rel=0.1)
    # the truth says the same, and the affected side's GMed/TFL ratio is lower
    left = [r for r in sim.truth.reps if r["side"] == "left"]
    right = [r for r in sim.truth.reps if r["side"] == "right"]
    assert right[0]["peak_pct_mvic"]["R_GMED"] == pytest.approx(peak * (1 - deficit))
    assert right[0]["ratios"]["right"] < left[0]["ratios"]["left"]


def test_ground_truth_rep_boundaries_agree_with_imu_angle_and_emg():
    sim = Simulator(SimConfig(seed=4), [Trial.rest(2.0), Trial.exercise("side_lying_abduction", "left", 4),
                                        Trial.exercise("squat", "right", 3)])
    imu = sim.imu_counts(0, int(sim.duration_s * 100)) * 0.01  # deg
    for rep in sim.truth.reps:
        m = MOVEMENTS[rep["movement"]]
        col = 0 if m.angle == "hip_abduction_deg" else 1
        at = lambda t: imu[int(round(t * 100)), col]  # noqa: E731
        assert at(rep["start_s"]) == pytest.approx(m.start_deg, abs=1.0)
        assert at(rep["end_s"]) == pytest.approx(m.start_deg, abs=1.0)
        assert at((rep["top_start_s"] + rep["top_end_s"]) / 2) == pytest.approx(m.peak_deg, abs=1.0)
        # the angle leaves its baseline inside the repetition, not before
        before = imu[int((rep["start_s"] - 0.3) * 100) : int(rep["start_s"] * 100), col]
        assert np.all(np.abs(before - m.start_deg) < 1.0)
        # EMG of the working GMed is far above rest at the top
        label = f"{rep['side'][0].upper()}_GMED"
        top = _uv(sim, rep["top_start_s"], rep["top_end_s"])[:, _col(sim, label)]
        rest = _uv(sim, 0.2, 1.8)[:, _col(sim, label)]
        assert np.sqrt(np.mean(top**2)) > 5 * np.sqrt(np.mean(rest**2))
    # the gyro integrates to the angle change of each raise (integration averages its noise)
    gyro = sim.imu_counts(0, int(sim.duration_s * 100))[:, 3] * 0.1
    for rep in sim.truth.reps:
        m = MOVEMENTS[rep["movement"]]
        a, b = int(round(rep["start_s"] * 100)), int(round(rep["top_start_s"] * 100))
        assert np.sum(gyro[a:b]) * 0.01 == pytest.approx(m.peak_deg - m.start_deg, abs=2.0)


def test_thigh_accelerometer_and_gyroscope_are_consistent_with_the_hip_angles():
    """A complementary filter on the raw thigh acc/gyro recovers the simulated joint excursion (an independent
    physical check: gravity direction and angular rate must agree with each other and with the angle)."""
    from dsp.reps import complementary_tilt

    sim = Simulator(SimConfig(seed=3), [Trial.rest(2.0), Trial.exercise("side_lying_abduction", "left", 4),
                                        Trial.hold("right", 10.0), Trial.exercise("squat", "right", 2)])
    names = [c.label for c in sim.imu_stream.channels]
    acc_cols = [names.index(f"thigh_acc_{a}_g") for a in "xyz"]
    gyro_cols = [names.index(f"thigh_gyro_{a}_dps") for a in "xyz"]
    assert {sim.imu_stream.channels[i].unit for i in acc_cols} == {"g"}
    n = int(sim.duration_s * 100)
    x = sim.imu_stream.to_physical(sim.imu_counts(0, n))
    acc, gyro = x[:, acc_cols], x[:, gyro_cols]
    # at rest the accelerometer reads 1 g and the gyroscope nothing
    rest = slice(0, 150)
    assert np.linalg.norm(acc[rest], axis=1).mean() == pytest.approx(1.0, abs=0.01)
    assert np.abs(gyro[rest].mean(axis=0)).max() < 0.1
    tilt = complementary_tilt(acc, gyro, 100.0)
    truth = sim.timeline.angles(np.arange(n) / 100.0)  # noise-free abduction, flexion (deg)
    abduction = np.zeros(n, bool)
    for rep in sim.truth.reps:
        span = slice(int(rep["start_s"] * 100), int(rep["end_s"] * 100))
        if MOVEMENTS[rep["movement"]].angle == "hip_abduction_deg":
            abduction[span] = True
    err = tilt[abduction] - truth[abduction, 0]
    assert np.sqrt(np.mean(err**2)) < 3.0
    assert truth[abduction, 0].max() > 30.0  # the check covers the whole 0-35 deg range
    # flexion too (squat to 90 deg: faster, so more centripetal acceleration and lag)
    squat = np.zeros(n, bool)
    for rep in sim.truth.reps:
        if rep["movement"] == "squat":
            squat[int(rep["start_s"] * 100): int(rep["end_s"] * 100)] = True
    assert np.sqrt(np.mean((tilt[squat] - truth[squat, 1]) ** 2)) < 3.0
    # the gyroscope about the abduction axis (x) integrates to each raise of the abduction trial
    for rep in sim.truth.reps:
        if rep["movement"] == "side_lying_abduction":
            a, b = int(round(rep["start_s"] * 100)), int(round(rep["top_start_s"] * 100))
            assert np.sum(gyro[a:b, 0]) * 0.01 == pytest.approx(35.0, abs=1.0)


def test_hum_and_lift_off_are_where_the_parameters_put_them():
    sim = Simulator(SimConfig(seed=6, hum_uv=30.0, hum_hz=60.0, lift_offs=(LiftOff("R_TFL", 2.0, 1.0),)),
                    [Trial.rest(5.0)])
    x = _uv(sim, 0, 5.0)
    f, p = welch(x[: 2 * FS, 0], fs=FS, nperseg=2000)
    k60 = np.argmin(np.abs(f - 60.0))
    assert p[k60] > 50 * np.median(p[(f > 30) & (f < 300)])
    counts = sim.emg_counts(0, 5 * FS)[:, _col(sim, "R_TFL")]
    inside = counts[2 * FS : 3 * FS]
    assert np.any(inside == 32767) and np.any(inside == -32768)
    assert np.abs(counts[: 2 * FS]).max() < 1000 and np.abs(counts[3 * FS :]).max() < 1000


def test_motion_artefact_is_at_working_side_repetition_starts_only_low_frequency_with_the_set_peak():
    motion_uv = 200.0
    trials = [Trial.rest(3.0), Trial.exercise("clamshell", "left", 3), Trial.exercise("side_lying_abduction", "right", 2)]
    with_art = Simulator(SimConfig(seed=5, motion_uv=motion_uv), trials)
    n = with_art.n_emg_samples
    x = with_art.emg_counts(0, n) * with_art.config.gain_uv_per_count
    artefact = x - Simulator(SimConfig(seed=5), trials).emg_counts(0, n) * with_art.config.gain_uv_per_count
    sides = [c.side for c in with_art.emg_stream.channels]
    expected = np.zeros(artefact.shape, bool)  # the second after each repetition start, on the working side
    for rep in with_art.truth.reps:
        i = int(round(rep["start_s"] * FS))
        expected[i: i + FS, [j for j, s in enumerate(sides) if s == rep["side"]]] = True
    assert np.all(artefact[~expected] == 0)
    assert len(with_art.truth.reps) == 5
    for rep in with_art.truth.reps:
        i = int(round(rep["start_s"] * FS))
        for j, side in enumerate(sides):
            if side == rep["side"]:
                assert np.abs(artefact[i: i + FS, j]).max() == pytest.approx(motion_uv, abs=1.0)
    # low frequency: nearly all of its energy lies below 15 Hz (EMG lives above ~20 Hz)
    spec = np.abs(np.fft.rfft(artefact[:, 0])) ** 2
    f = np.fft.rfftfreq(n, 1.0 / FS)
    assert spec[f < 15].sum() > 0.95 * spec.sum()
    # and it stands out in the recorded signal itself: a 20 Hz low-pass shows the set peak at the working
    # side's repetition starts and next to nothing on the other side
    low = sosfiltfilt(butter(4, 20.0, fs=FS, output="sos"), x, axis=0)
    for rep in with_art.truth.reps:
        i = int(round(rep["start_s"] * FS))
        peak = np.abs(low[i: i + FS]).max(axis=0)
        for j, side in enumerate(sides):
            if side == rep["side"]:
                assert peak[j] == pytest.approx(motion_uv, rel=0.05)
            else:
                assert peak[j] < 0.05 * motion_uv
    assert np.abs(low[: int(2.5 * FS)]).max() < 0.05 * motion_uv  # the opening rest is clean


@pytest.mark.parametrize("noise_uv", [3.0, 10.0])
def test_noise_floor_at_rest_is_noise_uv_rms(noise_uv):
    """At rest the signal is the white noise floor plus the postural tone (REST_PCT_MVIC of the MVIC RMS).

    The floor is read where the sEMG spectrum has died away (700-1000 Hz): a white noise of RMS s has the
    one-sided density s^2 / (fs/2) there. The total RMS is the two added in power."""
    from sensors.sim.protocol import REST_PCT_MVIC

    sim = Simulator(SimConfig(seed=11, noise_uv=noise_uv), [Trial.rest(20.0)])
    x = _uv(sim, 0.0, 20.0)
    f, p = welch(x, fs=FS, nperseg=1024, axis=0)
    floor_uv = np.sqrt(p[f > 700].mean(axis=0) * FS / 2)
    np.testing.assert_allclose(floor_uv, noise_uv, rtol=0.05)
    tone_uv = np.array([sim.config.mvic_rms_uv[c.muscle] for c in sim.emg_stream.channels]) * REST_PCT_MVIC / 100
    np.testing.assert_allclose(np.sqrt(np.mean(x**2, axis=0)), np.hypot(tone_uv, noise_uv), rtol=0.05)


def _run_source(source, limit=None):
    async def main():
        await source.start()
        out = [item async for item in source.items()]
        await source.stop()
        return out

    return asyncio.run(main())


def test_source_emits_trials_frames_and_exact_loss():
    loss = 0.1
    sim = Simulator(SimConfig(seed=9, packet_loss=loss), [Trial.rest(2.0), Trial.exercise("clamshell", "left", 3),
                                                          Trial.mvic(GMED, "right")])
    source = SimulatorSource(sim, speed=None)
    assert isinstance(source, Source)
    items = _run_source(source)
    assert items[0].kind is EventKind.STREAMS and items[-1].kind is EventKind.END
    trials = [i for i in items if isinstance(i, Event) and i.kind is EventKind.TRIAL]
    assert [(e.payload["trial"], e.payload["phase"]) for e in trials] == [(0, "start"), (0, "stop"), (1, "start"),
                                                                         (1, "stop"), (2, "start"), (2, "stop")]
    for e in trials:
        t_s = sim.truth.trials[e.payload["trial"]]["start_s" if e.payload["phase"] == "start" else "end_s"]
        assert e.payload["index"] == round(t_s * FS)
    for stream_id, per_packet in (("emg", 20), ("imu", 1)):
        covered = []
        n_lost = 0
        for i in items:
            if isinstance(i, Frame) and i.stream_id == stream_id:
                covered.append((i.first_index, i.end_index, False))
            elif isinstance(i, Event) and i.kind is EventKind.GAP and i.payload["stream_id"] == stream_id:
                covered.append((i.payload["start_index"], i.payload["start_index"] + i.payload["n_missing"], True))
                n_lost += i.payload["n_missing"]
        # frames and gaps tile the stream exactly: no overlap, no hole
        assert [c[0] for c in covered[1:]] == [c[1] for c in covered[:-1]] and covered[0][0] == 0
        total = covered[-1][1]
        n_packets = total // per_packet
        frac = n_lost / total
        sigma = np.sqrt(loss * (1 - loss) / n_packets)
        assert abs(frac - loss) < 4 * sigma
    frames = [i for i in items if isinstance(i, Frame) and i.stream_id == "emg"]
    np.testing.assert_array_equal(frames[3].counts, sim.emg_counts(frames[3].first_index, frames[3].n_samples))
    gaps = [i.payload for i in items if isinstance(i, Event) and i.kind is EventKind.GAP]
    assert sim.truth.gaps == gaps
    json.loads(sim.truth.to_json())  # plain data


def test_stop_ends_a_real_time_source_early():
    sim = Simulator(SimConfig(seed=0), [Trial.rest(600.0)])
    source = SimulatorSource(sim, speed=1.0)

    async def main():
        await source.start()
        got = []
        async for item in source.items():
            got.append(item)
            if isinstance(item, Frame):
                await source.stop()
        return got

    got = asyncio.run(asyncio.wait_for(main(), 10))
    assert got[-1].kind is EventKind.END
    assert sum(i.n_samples for i in got if isinstance(i, Frame) and i.stream_id == "emg") < 10 * FS


def test_bad_parameters_are_one_clear_error():
    with pytest.raises(ValueError, match="affected_side"):
        SimConfig(affected_side="middle")
    with pytest.raises(ValueError, match="packet_loss"):
        SimConfig(packet_loss=1.0)
    with pytest.raises(ValueError, match="movement"):
        Trial.exercise("moonwalk", "left")
    with pytest.raises(ValueError, match="lift-off"):
        Simulator(SimConfig(lift_offs=(LiftOff("L_GMAX", 0, 1),)), [Trial.rest(1.0)])
