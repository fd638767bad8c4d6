"""``medius analyze``: JSON/CSV outputs, folders, batch == per-session, trends across sessions."""

import csv
import json

import numpy as np
import pytest

import synth_session as S
from app.cli import main


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    d = tmp_path_factory.mktemp("sessions")
    S.build(d / "a_2026-11-25.medius", seed=11, n_reps=5, date="2026-11-25")
    S.build(d / "b_2026-12-09.medius", seed=12, n_reps=5, date="2026-12-09", pct_affected=(46.0, 31.0))
    return d


def test_batch_equals_single_and_trends(folder, tmp_path, capsys):
    batch = tmp_path / "batch.json"
    assert main(["analyze", str(folder), "--json", str(batch), "--jobs", "2"]) == 0
    assert "2/2" in capsys.readouterr().err  # progress bar on stderr
    out = json.loads(batch.read_text())
    assert [s["session"]["date"] for s in out["sessions"]] == ["2026-11-25", "2026-12-09"]
    for s in out["sessions"]:
        single = tmp_path / "single.json"
        assert main(["analyze", s["session"]["source"], "--json", str(single), "--jobs", "1"]) == 0
        assert json.loads(single.read_text())["sessions"][0] == s

    g = out["sessions"][0]["muscles"]["gluteus_medius_left"]["trials"]["abd_left"]
    assert g["peak_pct_mvic"]["unit"] == "pct_mvic" and len(g["peak_pct_mvic"]["per_rep"]) == 5
    assert "mdf_slope_pct_per_s" in out["sessions"][0]["muscles"]["tfl_right"]["trials"]["hold_right"]["fatigue"]

    series = out["trends"]["P-SYN"]["series"]
    ratio = series["left/side_lying_abduction/gmed_tfl_ratio"]
    pts = ratio["points"]
    # truth: 36/31 -> 46/31, a change of +0.32, well beyond the noise of 5-rep means
    assert pts[1]["change_from_first"] == pytest.approx(46 / 31 - 36 / 31, abs=0.08)
    assert ratio["srd"] < 0.2 and pts[1]["change_from_first_beyond_srd"] is True
    right = series["right/side_lying_abduction/gmed_tfl_ratio"]
    assert abs(right["points"][1]["change_from_first"]) < right["srd"]  # unchanged side: within noise
    assert right["points"][1]["change_from_first_beyond_srd"] is False
    assert "symmetry/side_lying_abduction/si_gluteus_medius_rms_pct_mvic" in series
    assert out["trends"]["P-SYN"]["comparability"] == []


def test_csv_tables(folder, tmp_path, capsys):
    session = sorted(folder.glob("*.medius"))[0]
    assert main(["analyze", str(session), "--csv", str(tmp_path / "csv"), "--jobs", "1"]) == 0
    printed = capsys.readouterr().out
    assert "GMed:TFL" in printed and "P-SYN" in printed
    with open(tmp_path / "csv" / "measures.csv") as f:
        measures = list(csv.DictReader(f))
    with open(tmp_path / "csv" / "reps.csv") as f:
        reps = list(csv.DictReader(f))
    ratio = [m for m in measures if m["scope"] == "left" and m["measure"] == "gmed_tfl_ratio"]
    assert len(ratio) == 1 and ratio[0]["n"] == "5"
    per_rep = [float(r["value"]) for r in reps if r["scope"] == "left" and r["measure"] == "gmed_tfl_ratio"]
    assert len(per_rep) == 5 and sum(per_rep) / 5 == pytest.approx(float(ratio[0]["mean"]))


def test_bad_inputs(tmp_path, capsys):
    assert main(["analyze", str(tmp_path / "nope.medius")]) == 2
    assert "no such session" in capsys.readouterr().err
    assert main(["analyze", str(tmp_path)]) == 2
    bad = tmp_path / "bad.medius"
    bad.write_text("not a session")
    assert main(["analyze", str(bad), "--jobs", "1"]) == 1
    assert "bad.medius" in capsys.readouterr().err


def test_units_from_names():
    from app.analysis.tables import unit_of

    assert [unit_of(n) for n in ("mdf_slope_pct_per_s", "noise_floor_uv_rms", "snr_db", "packet_loss_pct",
                                 "mains_ratio", "endurance_time_s", "initial_mdf_hz", "mdf_r")] == \
        ["pct_per_s", "uV", "dB", "pct", "fraction", "s", "Hz", ""]


def test_store_in_session_file(tmp_path):
    from sensors.recording import SessionReader

    path = tmp_path / "s.medius"
    S.build(path, seed=31, n_reps=3)
    out = tmp_path / "r.json"
    assert main(["analyze", str(path), "--store", "--json", str(out), "--jobs", "1"]) == 0
    with SessionReader(path) as reader:
        (run,) = reader.analysis_results("clinical_analysis")
    assert run["result"] == json.loads(out.read_text())["sessions"][0]


def _one_line(err: str) -> str:
    assert "Traceback" not in err and err.count("\n") == 1, err
    return err


def test_bad_mvic_source_and_unwritable_outputs(folder, tmp_path, capsys):
    session = str(sorted(folder.glob("*.medius"))[0])
    bad = tmp_path / "bad.medius"
    bad.write_text("not a session")
    capsys.readouterr()
    assert main(["analyze", session, "--mvic-from", str(bad), "--jobs", "1"]) == 2
    assert _one_line(capsys.readouterr().err) == (
        f"medius analyze: --mvic-from: {bad}: not a readable Medius session: "
        "not an SQLite database (no SQLite header)\n")

    missing = tmp_path / "no_such_dir" / "a.json"
    assert main(["analyze", session, "--json", str(missing), "--jobs", "1"]) == 1
    err = capsys.readouterr().err.split("\n", 1)[1]  # after the progress bar's line
    assert _one_line(err) == f"medius analyze: {missing}: cannot write the JSON: No such file or directory\n"

    assert main(["analyze", session, "--json", str(tmp_path), "--jobs", "1"]) == 1
    err = capsys.readouterr().err.split("\n", 1)[1]
    assert _one_line(err) == f"medius analyze: {tmp_path}: cannot write the JSON: Is a directory\n"


def test_mains_notch_defaults_to_the_sessions_recorded_mains(tmp_path, capsys):
    """The demo records filters.mains_hz = 50 and its rest is mostly hum: without a --mains-hz the analysis
    notches 50 Hz anyway, says so in the JSON, and the rest noise floor drops to the hum-free part."""
    from pathlib import Path

    from app.analysis.data import load_session
    from app.analysis.session import analyze

    demo = Path(__file__).resolve().parents[1] / "recordings" / "demo.medius"
    out = tmp_path / "demo.json"
    assert main(["analyze", str(demo), "--json", str(out), "--jobs", "1"]) == 0
    meta = json.loads(out.read_text())["sessions"][0]
    assert meta["mains_notch"] == {"mains_hz": 50.0, "from": "session_meta"} and meta["config"]["mains_hz"] == 50.0
    assert main(["analyze", str(demo), "--json", str(out), "--jobs", "1", "--mains-hz", "60"]) == 0
    assert json.loads(out.read_text())["sessions"][0]["mains_notch"] == {"mains_hz": 60.0, "from": "option"}

    session = load_session(demo)
    session.recorded_mains_hz = None  # as a file without the meta: no notch
    plain = analyze(session)
    assert plain["mains_notch"] == {"mains_hz": None, "from": "none"}
    rests = [t["trial_id"] for t in plain["session"]["trials"] if t["type"] == "rest"]
    for key, m in plain["muscles"].items():
        hum = np.mean([m["trials"][t]["quality"]["mains_ratio"] for t in rests])  # share of rest power that is hum
        assert hum > 0.6
        # removing the hum leaves sqrt(1 - share) of the RMS; 10 %: the notch also takes a little EMG/noise
        # around the lines and the share is averaged over the rest trials
        expected = m["noise_floor_uv_rms"] * np.sqrt(1 - hum)
        assert meta["muscles"][key]["noise_floor_uv_rms"] == pytest.approx(expected, rel=0.10)
