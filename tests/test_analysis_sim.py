"""Session analysis scored on the physiological simulator's ground truth (sensors.sim), recorded through the
real Recorder into a .medius file: repetitions, GMed:TFL ratio, side symmetry, fatigue, quality."""

import numpy as np
import pytest

from app.analysis.data import load_session
from app.analysis.session import analyze
from app.analysis.stats import symmetry_index
from dsp.reps import match_segments
from sensors.sim import SimConfig, Trial
from sim_session import record, short_protocol

FATIGUE = -0.3  # %/s, the simulator's normalised MDF slope of working muscles
HOLD_S = 90.0


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    path = tmp_path_factory.mktemp("sim") / "sim.medius"
    config = SimConfig(seed=0, affected_side="left", gmed_deficit=0.4, tfl_compensation=0.2,
                       fatigue_mdf_pct_per_s=FATIGUE)
    # 90 s holds: the MDF-slope estimator alone scatters by SD ~0.13 / 0.04 / 0.02 %/s over 30 / 60 / 90 s
    # holds on this simulator (12 draws each), so only 90 s holds meet the 0.08 %/s tolerance reliably
    simulator = record(path, config, short_protocol(reps=8, hold_s=HOLD_S))
    return simulator.truth, analyze(load_session(path))


def _truth_reps(truth, side):
    return [r for r in truth.reps if r["side"] == side and r["kind"] == "exercise"]


def test_reps_f1_and_boundaries(sim):
    truth, r = sim
    for side in ("left", "right"):
        (t,) = r["sides"][side]["trials"].values()
        assert t["rep_source"] == "joint_angle:hip_abduction_deg"
        m = match_segments([(x["start_s"], x["stop_s"]) for x in t["reps"]],
                           [(x["start_s"], x["end_s"]) for x in _truth_reps(truth, side)])
        assert m["f1"] >= 0.95
        assert m["median_boundary_error_s"] <= 0.100


def test_ratio_per_side_within_5_pct(sim):
    truth, r = sim
    for side in ("left", "right"):
        (t,) = r["sides"][side]["trials"].values()
        want = np.mean([x["ratios"][side] for x in _truth_reps(truth, side)])
        assert t["gmed_tfl_ratio"]["mean"] == pytest.approx(want, rel=0.05)
    # the affected side's GMed under-activation and TFL compensation show as a lower ratio
    (left,), (right,) = r["sides"]["left"]["trials"].values(), r["sides"]["right"]["trials"].values()
    assert left["gmed_tfl_ratio"]["mean"] < right["gmed_tfl_ratio"]["mean"]


def test_symmetry_sign_and_magnitude(sim):
    truth, r = sim
    sym = r["symmetry"]["movements"]["side_lying_abduction"]
    a = np.mean([x["rms_pct_mvic"]["L_GMED"] for x in _truth_reps(truth, "left")])
    u = np.mean([x["rms_pct_mvic"]["R_GMED"] for x in _truth_reps(truth, "right")])
    want = symmetry_index(a, u)
    assert want < -40
    got = sym["gluteus_medius_rms_pct_mvic"]
    assert got["si_pct"] == pytest.approx(want, abs=6.0)
    assert got["difference_within_rep_spread"] is False
    tfl = sym["tfl_rms_pct_mvic"]
    assert tfl["si_pct"] > 0  # compensation: affected TFL above unaffected


def test_pct_mvic_against_truth(sim):
    truth, r = sim
    for key, lab in (("gluteus_medius_left", "L_GMED"), ("tfl_left", "L_TFL"), ("gluteus_medius_right", "R_GMED"),
                     ("tfl_right", "R_TFL")):
        side = key.rsplit("_", 1)[1]
        (t,) = [t for t in r["muscles"][key]["trials"].values() if t.get("type") == "exercise"]
        want = np.mean([x["rms_pct_mvic"][lab] for x in _truth_reps(truth, side)])
        # the MVIC reference is the PEAK of a 0.5 s moving RMS, above the true plateau by ~10 %
        assert t["rms_pct_mvic"]["mean"] == pytest.approx(want, rel=0.15)


def _band_limited_slope(base_mdf_hz, hold_s=HOLD_S, rate_hz=2000.0):
    """The normalised MDF slope an analysis restricted to 20-450 Hz after a 20-450 Hz Butterworth should see.

    The simulator's MDF (and its -0.3 %/s) is defined over 0..fs/2; clinical.md section 10: integrate the
    expectation from |H(f)|^2 inside the analysis band. Uses the simulator's own spectral model.
    """
    from scipy import signal

    from sensors.sim.synth import _base_psd, scale_for_mdf

    f = np.linspace(0.0, rate_hz / 2, 20001)
    sos = signal.butter(4, [20.0, 450.0], "bandpass", fs=rate_hz, output="sos")
    h2 = np.abs(signal.sosfreqz(sos, worN=f, fs=rate_hz)[1]) ** 2
    band = (f >= 20.0) & (f <= 450.0)
    t = np.linspace(0.0, hold_s, 61)
    mdf = []
    for true_mdf in base_mdf_hz * (1 + FATIGUE / 100 * t):
        p = (_base_psd(f / scale_for_mdf(np.array([true_mdf]), rate_hz)[0]) * h2)[band]
        mdf.append(f[band][np.argmax(np.cumsum(p) >= p.sum() / 2)])
    b, a = np.polyfit(t, mdf, 1)
    return 100 * b / a


def test_hold_mdf_slope_within_tolerance(sim):
    truth, r = sim
    for key in ("gluteus_medius_left", "tfl_left", "gluteus_medius_right", "tfl_right"):
        side = key.rsplit("_", 1)[1]
        (t,) = [t for t in r["muscles"][key]["trials"].values() if t.get("type") == "hold" and t["side"] == side]
        f = t["fatigue"]
        want = _band_limited_slope(truth.config["mdf_hz"][key.rsplit("_", 1)[0]])
        assert -0.29 < want < -0.26  # the 20-450 Hz band sees ~9 % less relative change than the full band
        assert f["mdf_slope_pct_per_s"] == pytest.approx(want, abs=0.08)
        assert f["endurance_time_s"] == pytest.approx(HOLD_S, abs=2.0)


def test_onsets_simultaneous_in_simulator(sim):
    _, r = sim
    for side in ("left", "right"):
        (t,) = r["sides"][side]["trials"].values()
        assert abs(t["gmed_onset_minus_tfl_ms"]["mean"]) < 30  # the simulator activates both together


def test_packet_loss_hum_and_lift_off_are_reported(tmp_path):
    from sensors.sim import LiftOff

    trials = [Trial.rest(6.0), Trial.mvic("gluteus_medius", "right"), Trial.rest(3.0), Trial.mvic("tfl", "right"),
              Trial.rest(3.0), Trial.exercise("side_lying_abduction", "right", 4)]
    config = SimConfig(seed=3, packet_loss=0.02, hum_uv=80.0, hum_hz=50.0,
                       lift_offs=(LiftOff("R_TFL", 30.0, 1.0),))
    sim = record(tmp_path / "bad.medius", config, trials)
    r = analyze(load_session(tmp_path / "bad.medius"))
    lost = sum(g["n_missing"] for g in sim.truth.gaps if g["stream_id"] == "emg") / sim.n_emg_samples * 100
    rest = r["muscles"]["tfl_right"]["trials"]["2"]["quality"]
    (ex,) = [t for t in r["muscles"]["tfl_right"]["trials"].values() if t.get("type") == "exercise"]
    assert ex["quality"]["saturation_pct"] > 0  # the lift-off drove the channel to the rails
    assert 0.5 < lost < 4
    total = [t["quality"]["packet_loss_pct"] for t in r["muscles"]["tfl_right"]["trials"].values()]
    assert np.mean(total) == pytest.approx(lost, abs=1.5)
    (reps,) = r["sides"]["right"]["trials"].values()
    assert reps["n_reps"] == 4  # lost IMU samples are bridged, not read as the leg coming down
    assert rest["mains_ratio"] > 0.5  # at rest the 80 uV hum dominates the 3 uV noise floor
    assert ex["quality"]["mains_ratio"] > 0.01


def test_reps_from_emg_when_no_kinematics(tmp_path):
    sim = record(tmp_path / "noimu.medius", SimConfig(seed=4, affected_side="right", gmed_deficit=0.3),
                 short_protocol(reps=6, hold_s=10.0, mvic_efforts=1))
    session = load_session(tmp_path / "noimu.medius")
    del session.streams["imu"]
    r = analyze(session)
    for side in ("left", "right"):
        (t,) = r["sides"][side]["trials"].values()
        assert t["rep_source"] == "emg_envelope"
        got = [(x["start_s"], x["stop_s"]) for x in t["reps"]]
        movement = np.array([(x["start_s"], x["end_s"]) for x in _truth_reps(sim.truth, side)])
        m = match_segments(got, movement)
        assert m["f1"] >= 0.95
        assert m["median_boundary_error_s"] <= 0.100  # the bound, against the movement's boundaries
        # EMG marks muscle activity, which the simulator starts and ends onset_lead_s (50 ms) before the joint
        # moves: against that activity truth the fallback is closer still (12 simulated trials: <= 32 ms)
        activity = movement - sim.truth.config["onset_lead_s"]
        assert match_segments(got, activity)["median_boundary_error_s"] <= 0.050


def test_reference_from_another_muscles_mvic_is_flagged(tmp_path):
    trials = [Trial.rest(4.0), Trial.mvic("gluteus_medius", "left"), Trial.rest(2.0),
              Trial.exercise("side_lying_abduction", "left", 2)]
    record(tmp_path / "gmed_only.medius", SimConfig(seed=2), trials)
    r = analyze(load_session(tmp_path / "gmed_only.medius"))
    assert any(w.startswith("tfl_left: no MVIC trial aimed at this muscle") for w in r["warnings"])
    assert not any(w.startswith("gluteus_medius_left: no MVIC") for w in r["warnings"])


def test_burst_mdf_slope_across_reps(tmp_path):
    """Across the repetitions of one exercise the simulator's MDF falls at FATIGUE %/s of work time; one
    spectrum per burst, regressed over burst time, must find the band-limited truth.

    Tolerance 0.08 %/s, the issue's for MDF slopes: each burst's single spectrum scatters by a few % of MDF,
    so over 20 bursts spread over ~90 s the slope's SE is ~0.03 %/s (measured: errors 0.01 and 0.004 %/s) (it is reported as the regression SE
    too; asserted below to stay under the tolerance so the check is meaningful)."""
    from app.analysis.measures import slope_pct_per_s

    trials = [Trial.rest(6.0), Trial.mvic("gluteus_medius", "left"), Trial.rest(3.0), Trial.mvic("tfl", "left"),
              Trial.rest(3.0), Trial.exercise("side_lying_abduction", "left", 20)]
    sim = record(tmp_path / "reps.medius", SimConfig(seed=6, fatigue_mdf_pct_per_s=FATIGUE), trials)
    r = analyze(load_session(tmp_path / "reps.medius"))
    (ex_truth,) = [t for t in sim.truth.trials if t["kind"] == "exercise"]
    span_s = ex_truth["end_s"] - ex_truth["start_s"]
    for key in ("gluteus_medius_left", "tfl_left"):
        ((tid, t),) = [(i, t) for i, t in r["muscles"][key]["trials"].items() if t.get("type") == "exercise"]
        want = _band_limited_slope(sim.truth.config["mdf_hz"][key.rsplit("_", 1)[0]], hold_s=span_s)
        mid = [(x["start_s"] + x["stop_s"]) / 2 for x in r["sides"]["left"]["trials"][tid]["reps"]]
        assert len(mid) == len(t["burst_mdf_hz"]) == 20
        se = slope_pct_per_s(np.array(mid), np.array(t["burst_mdf_hz"]))[3]
        assert se < 0.05
        assert t["burst_mdf_slope_pct_per_s"] == pytest.approx(want, abs=0.08)
