"""Session CSV export: stable columns with units, values against scipy/numpy references, streaming memory, CLI.

The files are read back with the csv module and numpy for exact values, and with pandas.read_csv the way users open
them: documented column names, numeric dtypes, every row."""

import csv
import json
import shutil
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import signal, stats

from app.cli import main
from app.cmd_analyze import RESULT_NAME
from app.session_export import SessionAnalysis, export_session_csv, pipeline_config
from sensors.recording import (MARKER, REPETITION, TRIAL_START, TRIAL_STOP, SessionReader, SessionWriter,
                               store_analysis_result)
from sensors.stream import ChannelInfo, Frame, StreamInfo

EMG = StreamInfo("emg", 1000.0, (
    ChannelInfo("A1", unit="mV", gain=0.002, offset=5.0, muscle="gluteus_medius", side="right"),
    ChannelInfo("A2", unit="mV", gain=0.001, muscle="tfl", side="right"),
    ChannelInfo("ramp", kind="other", unit="1")), dtype="int32")
IMU = StreamInfo("imu", 50.0, (ChannelInfo("gz", kind="gyro", unit="deg/s", gain=0.1),), dtype="int16")
GAP = (2400, 600)
DEMO = Path(__file__).resolve().parents[1] / "recordings" / "demo.medius"
# the documented columns (README, Session CSV export), spelled out so a rename cannot slip through
REPETITION_HEADER = ["trial_id", "side", "movement", "rep", "start_s", "stop_s",
                     "gluteus_medius_peak_pct_mvic", "gluteus_medius_rms_pct_mvic", "tfl_peak_pct_mvic",
                     "tfl_rms_pct_mvic", "gluteus_maximus_peak_pct_mvic", "gluteus_maximus_rms_pct_mvic",
                     "gmed_tfl_ratio", "gmed_minus_tfl_pct_mvic", "gmed_onset_minus_tfl_ms", "coactivation_index_pct"]
TRIAL_HEADER = ["trial_id", "type", "side", "muscle", "movement", "start_s", "stop_s", "scope", "measure", "unit", "n",
                "mean", "sd", "ci95_low", "ci95_high"]


@pytest.fixture
def session(tmp_path):
    rng = np.random.default_rng(11)
    n = 6000
    emg = np.stack([rng.integers(-3000, 3000, n), rng.integers(-1000, 1000, n), np.arange(n)], 1).astype(np.int32)
    imu = rng.integers(-500, 500, (300, 1)).astype(np.int16)
    path = tmp_path / "s.medius"
    meta = {"patient_code": "P-9", "identifying": {"name": "Jane Doe"}, "filters": {"band_hz": [20, 400],
                                                                                   "mains_hz": 50}}
    with SessionWriter.create(path, meta) as w:
        w.add_stream(EMG)
        w.add_stream(IMU)
        for i in range(0, n, 100):
            if not GAP[0] <= i < sum(GAP):
                w.write_frame(Frame("emg", i, emg[i:i + 100]))
        w.write_frame(Frame("imu", 0, imu))
        w.add_event(TRIAL_START, "emg", 500, None, {"trial": 1, "type": "clam", "repetitions": 3})
        w.add_event(REPETITION, "emg", 600, None, {"trial": 1, "rep": 1, "end_index": 1400})
        w.add_event(REPETITION, "emg", 3500, None, {"trial": 1, "rep": 2, "end_index": 4200})
        w.add_event(MARKER, None, None, 2.0, {"text": "cough, then \"pain\""})
        w.add_event(TRIAL_STOP, "emg", 5000, None, {"trial": 1})
    return path, emg, imu


def _reference(phys, rate_hz, meta):
    """scipy sosfilt from zero state on each gap-free segment, and a numpy causal moving RMS."""
    cfg = pipeline_config(meta, rate_hz)
    filt = signal.sosfilt(cfg.design().sos, phys, axis=0)
    w = cfg.rms_window_samples
    c = np.cumsum(np.vstack([np.zeros((1, phys.shape[1])), filt ** 2]), axis=0)
    i = np.arange(1, phys.shape[0] + 1)
    lo = np.maximum(0, i - w)
    env = np.sqrt((c[i] - c[lo]) / (i - lo)[:, None])
    return filt, env


def _pandas(path, header, n_rows, text_columns=()):
    """pandas reads the file cleanly: the documented header, ``n_rows`` rows, every other column numeric."""
    df = pd.read_csv(path)
    assert list(df.columns) == header and len(df) == n_rows
    for c in header:
        if c not in text_columns:
            assert pd.api.types.is_numeric_dtype(df[c]), (path.name, c, df[c].dtype)
    return df


def _read(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


def test_samples_columns_and_values(session, tmp_path):
    path, emg, imu = session
    files = export_session_csv(path, tmp_path / "out")
    assert [f.name for f in files] == ["samples_emg.csv", "samples_imu.csv", "repetitions.csv", "trials.csv",
                                       "events.csv", "session.json"]
    header, rows = _read(tmp_path / "out" / "samples_emg.csv")
    _pandas(tmp_path / "out" / "samples_emg.csv", header, emg.shape[0] - GAP[1])
    assert header == ["time_s", "sample_index",
                      "gluteus_medius_right_raw_mV", "gluteus_medius_right_filtered_mV",
                      "gluteus_medius_right_envelope_mV",
                      "tfl_right_raw_mV", "tfl_right_filtered_mV", "tfl_right_envelope_mV", "ramp_raw_1"]
    data = np.array(rows, dtype=np.float64)
    keep = np.r_[0:GAP[0], sum(GAP):emg.shape[0]]
    np.testing.assert_array_equal(data[:, 1], keep)  # gap rows are absent, nothing else is
    np.testing.assert_allclose(data[:, 0], keep / 1000.0, rtol=0, atol=5e-7)
    phys = (emg[:, :2].astype(np.float64) - [5.0, 0.0]) * [0.002, 0.001]
    np.testing.assert_allclose(data[:, [2, 5]], phys[keep], rtol=1e-10, atol=0)
    np.testing.assert_array_equal(data[:, 8], keep)
    meta = {"filters": {"band_hz": [20, 400], "mains_hz": 50}}
    for seg in (np.arange(0, GAP[0]), np.arange(sum(GAP), emg.shape[0])):  # the filter restarts after the gap
        filt, env = _reference(phys[seg], 1000.0, meta)
        rows_seg = np.searchsorted(data[:, 1], seg)
        np.testing.assert_allclose(data[rows_seg][:, [3, 6]], filt, rtol=1e-8, atol=1e-12)
        np.testing.assert_allclose(data[rows_seg][:, [4, 7]], env, rtol=1e-8, atol=1e-12)

    header, rows = _read(tmp_path / "out" / "samples_imu.csv")
    assert header == ["time_s", "sample_index", "gz_raw_deg_per_s"]
    _pandas(tmp_path / "out" / "samples_imu.csv", header, imu.shape[0])
    np.testing.assert_allclose(np.array(rows, float)[:, 2], imu[:, 0] * 0.1, rtol=1e-12)


def test_unanalysable_session_exports_samples_events_and_says_why(session, tmp_path):
    """The fixture's trial has no kind the protocol knows: the analysis cannot run, so the metric tables keep
    their documented header and no rows, and the sidecar says why; the samples and events still export."""
    path, emg, _ = session
    out = tmp_path / "out"
    export_session_csv(path, out)
    header, rows = _read(out / "repetitions.csv")
    assert header == REPETITION_HEADER and rows == []
    header, rows = _read(out / "trials.csv")
    assert header == TRIAL_HEADER and rows == []
    header, rows = _read(out / "events.csv")
    events = _pandas(out / "events.csv", ["time_s", "kind", "stream_id", "sample_index", "text", "payload_json"], 6,
                     text_columns=("kind", "stream_id", "text", "payload_json"))
    assert events["text"][4] == 'cough, then "pain"'  # quoted cell with a comma and quotes survives
    assert [r[:5] for r in rows] == [
        ["2.400000", "gap", "emg", "2400", "600 samples missing"], ["0.500000", TRIAL_START, "emg", "500", ""],
        ["0.600000", REPETITION, "emg", "600", ""], ["3.500000", REPETITION, "emg", "3500", ""],
        ["2.000000", MARKER, "", "", 'cough, then "pain"'], ["5.000000", TRIAL_STOP, "emg", "5000", ""]]
    doc = json.loads((out / "session.json").read_text())
    assert doc["analysis"]["source"].startswith("not analysable: trial event payload")
    assert doc["patient_code"] == "P-9" and "identifying" not in doc and "Jane" not in json.dumps(doc)
    s = doc["streams"][0]
    assert s["sampling_rate_hz"] == 1000.0 and s["gaps"] == [{"start_index": 2400, "n_missing": 600}]
    assert s["channels"][0]["placement"] == {"muscle": "gluteus_medius", "side": "right"}
    assert s["processing"]["band_hz"] == [20, 400] and s["processing"]["mains_notch_hz"] == 50
    export_session_csv(path, tmp_path / "id", include_identifying=True)
    assert json.loads((tmp_path / "id" / "session.json").read_text())["identifying"] == {"name": "Jane Doe"}


def test_export_streams_to_disk_in_bounded_memory(tmp_path):
    """40 s of 8 ch at 2 kHz: peak Python memory is a small fraction of the CSV written. The CSV grows with the
    session, the peak does not (one stored block, about a second, at a time), so an hour streams the same way.
    The analysis behind the metric tables is given (it holds the session as arrays, as ``medius analyze`` does);
    what is measured here is the writing."""
    chans = tuple(ChannelInfo(f"A{i}", unit="mV", gain=0.001, muscle=("gluteus_medius", "tfl")[i % 2],
                              side=("left", "right")[i // 4] if i % 4 < 2 else None) for i in range(8))
    info = StreamInfo("emg", 2000.0, chans, "int16")
    path = tmp_path / "long.medius"
    rng = np.random.default_rng(0)
    block = rng.integers(-3000, 3000, (2000, 8)).astype(np.int16)
    with SessionWriter.create(path, {"patient_code": "L"}) as w:
        w.add_stream(info)
        for s in range(40):
            w.write_frame(Frame("emg", s * 2000, np.roll(block, s, axis=0)))
    analysis = SessionAnalysis(None, "not analysed in this test")
    export_session_csv(path, tmp_path / "warm", analysis=analysis)  # one-off imports (scipy, numba) are not the export
    tracemalloc.start()
    try:
        export_session_csv(path, tmp_path / "out", analysis=analysis)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    csv_bytes = (tmp_path / "out" / "samples_emg.csv").stat().st_size
    assert csv_bytes > 15e6
    assert peak < csv_bytes / 10, (peak, csv_bytes)
    with open(tmp_path / "out" / "samples_emg.csv") as f:
        n_rows = sum(1 for _ in f) - 1
    assert n_rows == 40 * 2000


def test_cli_export_csv_and_edf_with_progress(session, tmp_path, capsys):
    path, _, _ = session
    assert main(["export", str(path), "--csv", str(tmp_path / "c"), "--edf", str(tmp_path / "s.edf"),
                 "--bdf", str(tmp_path / "s.bdf")]) == 0
    err = capsys.readouterr().err
    assert "samples_emg.csv 100%" in err and "s.edf 100%" in err
    assert (tmp_path / "c" / "trials.csv").exists() and (tmp_path / "s.edf").stat().st_size > 0
    assert (tmp_path / "s.bdf").stat().st_size > (tmp_path / "s.edf").stat().st_size
    bad = tmp_path / "bad.medius"
    bad.write_text("not a session")
    assert main(["export", str(bad), "--csv", str(tmp_path / "d")]) == 1
    assert "not a readable Medius session" in capsys.readouterr().err
    assert main(["export", str(path)]) == 2



def test_slow_emg_stream_exports_raw_only_with_a_reason(tmp_path):
    slow = StreamInfo("env", 50.0, (ChannelInfo("E1", unit="mV", muscle="tfl", side="left"),), dtype="int16")
    path = tmp_path / "slow.medius"
    with SessionWriter.create(path, {"patient_code": "Z"}) as w:
        w.add_stream(slow)
        w.write_frame(Frame("env", 0, np.arange(100, dtype=np.int16).reshape(-1, 1)))
    export_session_csv(path, tmp_path / "out")
    header, rows = _read(tmp_path / "out" / "samples_env.csv")
    assert header == ["time_s", "sample_index", "tfl_left_raw_mV"] and len(rows) == 100
    doc = json.loads((tmp_path / "out" / "session.json").read_text())
    assert "below the 100 Hz" in doc["streams"][0]["processing"]["note"]


def _analyze_json(session, tmp_path) -> dict:
    assert main(["analyze", str(session), "--json", str(tmp_path / "a.json"), "--jobs", "1"]) == 0
    return json.loads((tmp_path / "a.json").read_text())["sessions"][0]


def test_demo_export_holds_the_analysis_per_repetition_and_per_trial(tmp_path, capsys):
    """repetitions.csv / trials.csv of the demo session carry exactly the numbers of ``medius analyze --json``, and
    each trial's summary is the mean, SD and t-interval (scipy) of its repetitions' values."""
    out = tmp_path / "demo"
    assert main(["export", str(DEMO), "--csv", str(out)]) == 0
    assert "stay empty" not in capsys.readouterr().err
    result = _analyze_json(DEMO, tmp_path)
    # the files hold shortest round-trip decimals; pandas' default parser may land one ulp off, round_trip does not
    with SessionReader(DEMO) as r:
        n_samples = {s.stream_id: r.n_samples(s.stream_id) - sum(g for _, g in r.gaps(s.stream_id)) for s in r.streams}
    assert set(n_samples) == {"emg", "imu"}
    emg = pd.read_csv(out / "samples_emg.csv")
    assert list(emg.columns[:5]) == ["time_s", "sample_index", "gluteus_medius_left_raw_uV",
                                     "gluteus_medius_left_filtered_uV", "gluteus_medius_left_envelope_uV"]
    for sid in n_samples:
        df = pd.read_csv(out / f"samples_{sid}.csv")
        assert len(df) == n_samples[sid] and all(pd.api.types.is_numeric_dtype(t) for t in df.dtypes)
    reps = pd.read_csv(out / "repetitions.csv", float_precision="round_trip")
    assert list(reps.columns) == REPETITION_HEADER
    exercises = [t for t in result["session"]["trials"] if t["type"] == "exercise"]
    n_reps = [result["sides"][t["side"]]["trials"][t["trial_id"]]["n_reps"] for t in exercises]
    assert len(exercises) == 2 and min(n_reps) >= 3 and len(reps) == sum(n_reps)
    numeric = [c for c in REPETITION_HEADER if c not in ("side", "movement")]
    assert all(pd.api.types.is_numeric_dtype(reps[c]) for c in numeric), reps.dtypes
    assert reps["gluteus_maximus_peak_pct_mvic"].isna().all()  # not placed in the demo
    for row in reps.itertuples():
        tid, i = str(row.trial_id), row.rep - 1
        side = result["sides"][row.side]["trials"][tid]
        assert (row.start_s, row.stop_s) == (side["reps"][i]["start_s"], side["reps"][i]["stop_s"])
        for muscle in ("gluteus_medius", "tfl"):
            m = result["muscles"][f"{muscle}_{row.side}"]["trials"][tid]
            for q in ("peak_pct_mvic", "rms_pct_mvic"):
                assert getattr(row, f"{muscle}_{q}") == m[q]["per_rep"][i]
        for q in ("gmed_tfl_ratio", "gmed_minus_tfl_pct_mvic", "gmed_onset_minus_tfl_ms", "coactivation_index_pct"):
            assert getattr(row, q) == side[q]["per_rep"][i]

    trials = pd.read_csv(out / "trials.csv", float_precision="round_trip")
    assert list(trials.columns) == TRIAL_HEADER
    for c in ("trial_id", "start_s", "stop_s", "n", "mean", "sd", "ci95_low", "ci95_high"):
        assert pd.api.types.is_numeric_dtype(trials[c]), (c, trials[c].dtype)
    assert set(trials["trial_id"].astype(str)) == {t["trial_id"] for t in result["session"]["trials"]}
    for t in exercises:
        rows = reps[reps["trial_id"].astype(str) == t["trial_id"]]
        for scope, column, measure in ((t["side"], "gmed_tfl_ratio", "gmed_tfl_ratio"),
                                       (f"tfl_{t['side']}", "tfl_rms_pct_mvic", "rms_pct_mvic")):
            (s,) = trials[(trials["trial_id"].astype(str) == t["trial_id"]) & (trials["scope"] == scope)
                          & (trials["measure"] == measure)].itertuples()
            v = rows[column].to_numpy()
            half = stats.t.ppf(0.975, v.size - 1) * v.std(ddof=1) / np.sqrt(v.size)
            assert s.n == v.size and s.type == "exercise" and s.movement == t["movement"]
            np.testing.assert_allclose([s.mean, s.sd, s.ci95_low, s.ci95_high],
                                       [v.mean(), v.std(ddof=1), v.mean() - half, v.mean() + half], rtol=1e-12)
    # a single value per trial: the MVIC trial's own peak is its reference, 100 %MVIC
    mvic = trials[(trials["type"] == "mvic") & (trials["measure"] == "peak_pct_mvic")
                  & (trials["scope"] == trials["muscle"] + "_" + trials["side"])]
    assert len(mvic) == 4 and (mvic["n"] == 1).all() and (mvic["mean"] == 100.0).all()


def test_export_uses_a_current_stored_analysis(tmp_path, monkeypatch):
    """A run stored by ``medius analyze --store`` with this version and the default settings is what the export
    writes (here recognisable by a marked value); a run of another version is ignored and the session re-analysed."""
    import sensors.recording.results as results
    import sensors.recording.writer as writer

    session = tmp_path / "demo.medius"
    shutil.copy(DEMO, session)
    result = _analyze_json(session, tmp_path)
    tid = next(t["trial_id"] for t in result["session"]["trials"] if t["type"] == "exercise")
    side = result["sides"]["left"]["trials"][tid]
    true_ratio = side["gmed_tfl_ratio"]["per_rep"][0]
    side["gmed_tfl_ratio"]["per_rep"][0] = 123.0
    for mod in (writer, results):
        monkeypatch.setattr(mod, "software_version", lambda: "9.9-old")
    store_analysis_result(session, RESULT_NAME, result["config"], result)
    for mod in (writer, results):
        monkeypatch.setattr(mod, "software_version", lambda: "9.9-now")
    export_session_csv(session, tmp_path / "stale")
    assert pd.read_csv(tmp_path / "stale" / "repetitions.csv")["gmed_tfl_ratio"][0] == true_ratio
    store_analysis_result(session, RESULT_NAME, result["config"], result)
    export_session_csv(session, tmp_path / "stored")
    assert pd.read_csv(tmp_path / "stored" / "repetitions.csv")["gmed_tfl_ratio"][0] == 123.0
    doc = json.loads((tmp_path / "stored" / "session.json").read_text())
    assert doc["analysis"]["source"].startswith("stored analysis run 2 of ")


def test_sidecar_is_pseudonymous_by_default(tmp_path):
    """Free-text patient notes and an imported file's name (often the patient's) stay in the session unless asked
    for; what describes the measurement (code, affected side, filters, placement) is exported."""
    from sensors.importers import import_file

    src = tmp_path / "jane_doe_visit3.csv"
    src.write_text("time_s,a\n" + "".join(f"{i / 1000},{(i % 7) - 3}\n" for i in range(2000)))
    session = tmp_path / "jane_doe.medius"
    import_file(src, {"a": ("tfl", "left")}, session, patient_code="P-77", affected_side="left",
                meta={"filters": {"band_hz": [20, 400]}, "notes": "rang her at home",
                      "session": {"affected_side": "left", "note": "Jane felt dizzy"}})
    export_session_csv(session, tmp_path / "out")
    text = (tmp_path / "out" / "session.json").read_text()
    for secret in ("jane", "Jane", "rang her", "dizzy", "stream_start_s"):
        assert secret not in text, secret
    doc = json.loads(text)
    assert doc["patient_code"] == "P-77"
    assert doc["session"]["patient"] == {"code": "P-77", "affected_side": "left"}
    assert doc["session"]["session"] == {"affected_side": "left"}
    assert doc["session"]["filters"] == {"band_hz": [20, 400]} and doc["session"]["imported_from"] == {"format": "csv"}
    assert doc["streams"][0]["channels"][0]["placement"] == {"muscle": "tfl", "side": "left"}
    export_session_csv(session, tmp_path / "all", include_identifying=True)
    full = json.loads((tmp_path / "all" / "session.json").read_text())
    assert full["source_file"] == "jane_doe.medius" and full["session"]["notes"] == "rang her at home"
    assert full["session"]["imported_from"]["file"] == "jane_doe_visit3.csv"
    # a recorded session's patient notes (the protocol model's free text) likewise
    rec = tmp_path / "r.medius"
    with SessionWriter.create(rec, {"patient_code": "P-78", "patient": {"code": "P-78", "affected_side": None,
                                                                        "notes": "lives next to the clinic"}}) as w:
        w.add_stream(IMU)
        w.write_frame(Frame("imu", 0, np.zeros((10, 1), np.int16)))
    export_session_csv(rec, tmp_path / "rec")
    doc = json.loads((tmp_path / "rec" / "session.json").read_text())
    assert doc["session"]["patient"] == {"code": "P-78", "affected_side": None} and "clinic" not in json.dumps(doc)
