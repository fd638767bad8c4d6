"""``import_file`` / ``medius import``: other systems' recordings become session files that read back the same
physical values, with muscles and sides from the map, rates, gaps and events; failures leave nothing behind."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pyedflib
import pytest

from app.cli import main
from sensors.importers import ImportFormatError, import_file, parse_channel_map, read_any, write_session
from sensors.importers import session as import_session
from sensors.recording import SessionReader

DATA = next(p / "shared" / "data" for p in Path(__file__).resolve().parents if (p / "shared" / "data").is_dir())

# One real file per format, with a map that places two of its channels.
CASES = {
    "uci": (DATA / "uci_lower_limb" / "5Nmar.txt", {"RF": ("gluteus_medius", "left"), "2": ("tfl", "left")}),
    "delsys": (DATA / "delsys_trigno_csv" / "truncated_trigno_sample.csv",
               {"EMG 10": ("gluteus_medius", "right"), "Mini sensor 11: EMG 11": ("tfl", "right")}),
    "opensignals": (DATA / "opensignals" / "emg_1000_hz_16_bits.h5",
                    {"channel_6": ("gluteus_medius", "left"), "A5": ("gluteus_maximus", "left")}),
    "xdf": (DATA / "xdf_examples" / "clock_resets.xdf", {"ch1": ("gluteus_medius", "right"), "BioSemi/ch2": ("tfl", "right")}),
    "wfdb": (DATA / "physionet_emgdb" / "emg_myopathy.hea", {"EMG": ("tfl", "left")}),
}


def _physical_with_gaps(rec, sid: str) -> np.ndarray:
    """Reference: the reader's physical values laid out by sample index, NaN where the file had a gap."""
    phys = rec.physical(sid)
    gaps = rec.gaps[sid]
    n = phys.shape[0] + sum(g for _, g in gaps)
    out = np.full((n, phys.shape[1]), np.nan)
    keep = np.ones(n, dtype=bool)
    for start, g in gaps:
        keep[start:start + g] = False
    out[keep] = phys
    return out


@pytest.mark.parametrize("fmt", sorted(CASES))
def test_round_trip_real_files(tmp_path, fmt):
    src, cmap = CASES[fmt]
    out = import_file(src, cmap, tmp_path / "s.medius", patient_code="P-1")
    assert out == tmp_path / "s.medius" and os.listdir(tmp_path) == ["s.medius"]
    rec = read_any(src)
    with SessionReader(out) as r:
        assert r.meta["patient_code"] == "P-1" and r.meta["patient"]["code"] == "P-1"
        assert r.meta["imported_from"]["format"] == fmt and r.meta["imported_from"]["file"] == src.name
        assert [s.stream_id for s in r.streams] == [s.stream_id for s in rec.streams]
        for s_in, s_out in zip(rec.streams, r.streams):
            sid = s_in.stream_id
            assert s_out.rate_hz == s_in.rate_hz and s_out.dtype == s_in.dtype
            assert [c.label for c in s_out.channels] == [c.label for c in s_in.channels]
            assert r.gaps(sid) == rec.gaps[sid]
            np.testing.assert_array_equal(r.read_physical(sid), _physical_with_gaps(rec, sid))
        placed = {(s.stream_id, i): (c.muscle, c.side) for s in r.streams for i, c in enumerate(s.channels) if c.muscle}
        assert placed == {rec.resolve_channel(ch): ms for ch, ms in cmap.items()}
        assert len(r.events()) == len(rec.events)


def test_uci_session_values_match_the_text_file(tmp_path):
    src = DATA / "uci_lower_limb" / "5Nmar.txt"
    out = import_file(src, {"ST": ("gluteus_medius", "right")}, tmp_path / "u.medius")
    lines = src.read_text().splitlines()
    first = [float(v) for v in lines[7].split("\t")]  # first data line, after 7 header lines
    last_fx = float(lines[-2].split("\t")[4])  # the goniometer's last row (EMG columns already ended)
    with SessionReader(out) as r:
        np.testing.assert_array_equal(r.read_physical("emg", 0, 1)[0], first[:4])
        assert r.n_samples("emg") == 6563 and r.n_samples("angle") == 6580
        assert r.read_physical("angle", 6579)[0, 0] == last_fx
        assert r.stream("emg").channels[3].muscle == "gluteus_medius" and r.stream("emg").channels[3].side == "right"


def test_xdf_gap_reads_as_nan_and_markers_keep_their_samples(tmp_path):
    src, cmap = CASES["xdf"]
    out = import_file(src, cmap, tmp_path / "x.medius")
    rec = read_any(src)
    ((start, n_missing),) = rec.gaps["BioSemi"]
    with SessionReader(out) as r:
        assert r.n_samples("BioSemi") == 27815 + n_missing
        assert np.isnan(r.read_physical("BioSemi", start, start + n_missing)).all()
        np.testing.assert_array_equal(r.read_counts("BioSemi", start + n_missing)[:5], rec.counts["BioSemi"][start:start + 5])
        events = r.events()
        assert [e["payload"]["text"] for e in events[:3]] == ["XXX", "Test", "Blah"]  # README's marker table
        assert all(e["kind"] == "marker" for e in events)
        assert [e["index"] for e in events] == [e.index for e in rec.events]


def test_edf_annotations_become_events_on_the_fastest_stream(tmp_path):
    src = tmp_path / "in.edf"
    w = pyedflib.EdfWriter(str(src), 2, file_type=pyedflib.FILETYPE_EDFPLUS)
    w.setSignalHeaders([
        dict(label="GMed", dimension="uV", sample_frequency=2000, physical_max=1000.0, physical_min=-1000.0,
             digital_max=32767, digital_min=-32768, transducer="", prefilter=""),
        dict(label="Hip", dimension="deg", sample_frequency=50, physical_max=180.0, physical_min=-180.0,
             digital_max=32767, digital_min=-32768, transducer="", prefilter=""),
    ])
    w.writeSamples([np.arange(-3000, 3000, dtype=np.int32) * 5, np.arange(150, dtype=np.int32)], digital=True)
    w.writeAnnotation(1.5, -1, "start")
    w.close()
    out = import_file(src, {"GMed": ("gluteus_medius", "left")}, tmp_path / "e.medius")
    with SessionReader(out) as r:
        fast = r.stream("signals_2000hz")
        np.testing.assert_array_equal(r.read_counts(fast.stream_id)[:, 0], np.arange(-3000, 3000) * 5)  # exact digital
        np.testing.assert_allclose(r.read_physical(fast.stream_id)[:3, 0], np.array([-15000, -14995, -14990]) * 2000 / 65535
                                   + (1000 - 32767 * 2000 / 65535), rtol=1e-12)
        (ev,) = r.events()
        assert (ev["kind"], ev["stream_id"], ev["index"], ev["time_s"]) == ("marker", "signals_2000hz", 3000, 1.5)
        assert ev["payload"]["text"] == "start"


def test_failures_leave_no_file(tmp_path):
    src, _ = CASES["delsys"]
    out = tmp_path / "s.medius"
    bad_maps = [
        ({"nope": ("tfl", "left")}, r"no channel 'nope'; available channels:\n  'Mini sensor 10: EMG 10'"),
        ({"EMG 10": ("biceps", "left")}, "unknown muscle 'biceps'"),
        ({"EMG 10": ("tfl", "middle")}, "unknown side 'middle'"),
        ({"EMG 10": ("tfl", "left"), "1": ("gluteus_medius", "left")}, "already mapped to tfl:left"),
        ({"EMG 10": ("tfl", "left"), "EMG 11": ("tfl", "left")}, "tfl:left is already given to channel 'EMG 10'"),
    ]
    for cmap, match in bad_maps:
        with pytest.raises(ImportFormatError, match=match):
            import_file(src, cmap, out)
        assert os.listdir(tmp_path) == []
    bad = tmp_path / "bad.csv"
    bad.write_text("time,a\n0,1\n0.001,nan\n")
    with pytest.raises(ImportFormatError, match="bad.csv: line 3"):
        import_file(bad, {"a": ("tfl", "left")}, out)
    assert os.listdir(tmp_path) == ["bad.csv"]


def test_failure_while_writing_removes_the_temporary_session(tmp_path, monkeypatch):
    src, cmap = CASES["uci"]
    calls = []

    def failing_write(w, stream_id, counts, gaps):
        calls.append(stream_id)
        if len(calls) == 2:  # the first stream is already in the temporary file
            raise OSError("disk full (simulated)")
        return real_write(w, stream_id, counts, gaps)

    real_write = import_session._write_stream
    monkeypatch.setattr(import_session, "_write_stream", failing_write)
    with pytest.raises(OSError, match="simulated"):
        import_file(src, cmap, tmp_path / "s.medius")
    assert calls == ["emg", "angle"] and os.listdir(tmp_path) == []


def test_gui_path_read_then_write(tmp_path):
    rec = read_any(DATA / "opensignals" / "emg_bursts.h5")
    (only,) = rec.streams
    out = write_session(rec, {"PORT3_CHN1": ("gluteus_medius", "left")}, tmp_path / "g.medius",
                         {"devices": ["PLUX biosignalsplux"]}, "X", "left")
    with SessionReader(out) as r:
        assert r.stream(only.stream_id).channels[0].muscle == "gluteus_medius"
        np.testing.assert_array_equal(r.read_counts(only.stream_id), rec.counts[only.stream_id])
        assert r.meta["imported_from"]["source"]["info_json"]["Sample Rate"] == "1000 Hz"
        assert r.meta["devices"] == ["PLUX biosignalsplux"]
        assert r.meta["patient"] == {"code": "X", "affected_side": "left", "notes": ""}


def test_existing_output_is_never_overwritten(tmp_path):
    out = tmp_path / "s.medius"
    out.write_bytes(b"keep me")
    with pytest.raises(FileExistsError):
        import_file(CASES["wfdb"][0], {"EMG": ("tfl", "left")}, out)
    assert out.read_bytes() == b"keep me"


def test_parse_channel_map():
    assert parse_channel_map(["Mini sensor 10: EMG 10=gluteus_medius:right", "3=tfl:left"]) == {
        "Mini sensor 10: EMG 10": ("gluteus_medius", "right"), "3": ("tfl", "left")}
    for bad in ["EMG1", "EMG1=tfl", "=tfl:left"]:
        with pytest.raises(ValueError, match="expected CH=MUSCLE:SIDE"):
            parse_channel_map([bad])


def test_cli_import(tmp_path, capsys):
    src = DATA / "delsys_trigno_csv" / "truncated_trigno_sample.csv"
    out = tmp_path / "cli.medius"
    assert main(["import", str(src), "--map", "EMG 10=gluteus_medius:right", "EMG 11=tfl:right", "--out", str(out)]) == 0
    with SessionReader(out) as r:
        assert [(c.muscle, c.side) for c in r.stream("emg").channels] == [("gluteus_medius", "right"), ("tfl", "right")]
    assert "truncated export" in capsys.readouterr().out
    # Without --map: list the channels, write nothing.
    assert main(["import", str(src)]) == 2
    assert "'Mini sensor 11: GYRO.Z 11' (also 'GYRO.Z 11', '14')" in capsys.readouterr().out
    assert main(["import", str(src), "--map", "EMG 10=tfl:left"]) == 2
    assert "--out SESSION is needed" in capsys.readouterr().err
    assert main(["import", str(src), "--map", "EMG 12=tfl:left", "--out", str(tmp_path / "bad.medius")]) == 1
    assert "no channel 'EMG 12'" in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == ["cli.medius"]
    csv = tmp_path / "r.csv"
    csv.write_text("1\n2\n3\n")
    assert main(["import", str(csv), "--map", "1=tfl:left", "--rate", "0", "--out", str(tmp_path / "z.medius")]) == 1
    assert "r.csv: given rate 0 Hz is not a usable rate" in capsys.readouterr().err


def test_imported_session_is_analysed_and_reported_end_to_end(tmp_path, capsys):
    """The import must give the analysis what it needs (a patient code): analyze and report run on it as on a
    native session. Without --patient the code is derived from the file's bytes and announced on stderr."""
    src = DATA / "delsys_trigno_csv" / "truncated_trigno_sample.csv"
    out = tmp_path / "imp.medius"
    assert main(["import", str(src), "--map", "EMG 10=gluteus_medius:right", "EMG 11=tfl:right", "--out", str(out)]) == 0
    expected_code = "IMPORT-" + hashlib.sha256(src.read_bytes()).hexdigest()[:8]
    assert expected_code in capsys.readouterr().err
    res_json = tmp_path / "a.json"
    assert main(["analyze", str(out), "--json", str(res_json), "--jobs", "1"]) == 0
    (result,) = json.loads(res_json.read_text())["sessions"]
    assert result["session"]["patient_code"] == expected_code and result["session"]["affected_side"] is None
    assert sorted(result["muscles"]) == ["gluteus_medius_right", "tfl_right"]
    assert result["muscles"]["tfl_right"]["rate_hz"] == pytest.approx(1259.259, abs=1e-3)  # Delsys header rate
    pdf = tmp_path / "r.pdf"
    assert main(["report", str(out), "--pdf", str(pdf)]) == 0
    assert pdf.read_bytes().startswith(b"%PDF")

    # with a code and an affected side: stored where the protocol reads them, and used by the analysis
    out2 = tmp_path / "imp2.medius"
    assert main(["import", str(DATA / "opensignals" / "emg_bursts.h5"), "--map", "PORT3_CHN1=gluteus_medius:left",
                 "--patient", "KNEE-07", "--affected-side", "left", "--out", str(out2)]) == 0
    assert "no --patient given" not in capsys.readouterr().err
    with SessionReader(out2) as r:
        assert r.meta["patient_code"] == "KNEE-07"
        assert r.meta["patient"] == {"code": "KNEE-07", "affected_side": "left", "notes": ""}
    assert main(["analyze", str(out2), "--json", str(res_json), "--jobs", "1"]) == 0
    (result,) = json.loads(res_json.read_text())["sessions"]
    assert (result["session"]["patient_code"], result["session"]["affected_side"]) == ("KNEE-07", "left")
    assert list(result["muscles"]) == ["gluteus_medius_left"]
    capsys.readouterr()
    assert main(["import", str(src), "--map", "EMG 10=tfl:left", "--patient", "  ", "--out", str(tmp_path / "x.medius")]) == 1
    assert "patient code must be a non-empty" in capsys.readouterr().err
    assert not (tmp_path / "x.medius").exists()
