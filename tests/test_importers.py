"""Readers of other systems' files, on the real recordings in ../shared/data (read in place) and on files built
here with the formats' own libraries; every malformed case gives one ImportFormatError naming the file."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import h5py
import numpy as np
import pyedflib
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import signal

from sensors.importers import ImportFormatError, detect_format, read_any
from sensors.stream import ChannelKind

# The repo sits next to shared/ (parents[2]); a git worktree sits one level deeper, so look upwards.
DATA = next(p / "shared" / "data" for p in Path(__file__).resolve().parents if (p / "shared" / "data").is_dir())
UCI = DATA / "uci_lower_limb"
TRIGNO = DATA / "delsys_trigno_csv" / "truncated_trigno_sample.csv"
OPENSIGNALS = DATA / "opensignals"
XDF = DATA / "xdf_examples"
EMGDB = DATA / "physionet_emgdb"


def _uci_reference(path: Path) -> list[list[float]]:
    """Independent parse: columns of the tab-separated block after the first blank line, empty cells dropped."""
    lines = path.read_text().splitlines()
    start = lines.index("") + 1
    cols: list[list[float]] = [[] for _ in range(5)]
    for ln in lines[start:]:
        for j, cell in enumerate(ln.split("\t")):
            if cell.strip():
                cols[j].append(float(cell))
    return cols


# ---------------------------------------------------------------------------------------------------- UCI


def test_uci_ragged_tail_keeps_every_row_in_separate_streams():
    rec = read_any(UCI / "5Nmar.txt")
    assert rec.format == "uci"
    ref = _uci_reference(UCI / "5Nmar.txt")
    emg, angle = rec.stream("emg"), rec.stream("angle")
    assert [c.label for c in emg.channels] == ["RF", "BF", "VM", "ST"]
    assert all(c.kind is ChannelKind.EMG and c.unit == "mV" for c in emg.channels)
    assert angle.channels[0].kind is ChannelKind.ANGLE and angle.channels[0].unit == "deg"
    assert emg.rate_hz == angle.rate_hz == 1000.0
    # PROVENANCE: 6563 EMG rows, 6580 goniometer rows.
    assert rec.counts["emg"].shape == (6563, 4) and rec.counts["angle"].shape == (6580, 1)
    np.testing.assert_array_equal(rec.physical("emg"), np.array(ref[:4]).T)
    np.testing.assert_array_equal(rec.physical("angle")[:, 0], ref[4])
    assert "extrapolated from 50 to 1000" in angle.note


def test_uci_spanish_header_file_and_channel_numbers():
    rec = read_any(UCI / "3Amar.txt")
    emg = rec.stream("emg")
    assert [c.label for c in emg.channels] == ["Recto Femoral", "Biceps Femoral", "Vasto Medial", "EMG Semitendinoso"]
    assert rec.counts["emg"].shape == (43665, 4)
    # First and last data lines of the file, copied by hand.
    np.testing.assert_array_equal(rec.physical("emg")[0], [0.0067, -0.021, 0.0675, -0.0195])
    np.testing.assert_array_equal(rec.physical("emg")[-1], [0.009, -0.027, -0.0293, 0.018])
    assert rec.physical("angle")[0, 0] == 4.7
    # The file numbers its channels 4..8: "Channel 8" is the goniometer.
    assert rec.resolve_channel("8") == ("angle", 0)
    assert rec.resolve_channel("Vasto Medial") == ("emg", 2)


def test_uci_rate_can_be_overridden():
    rec = read_any(UCI / "5Nsen.txt", rate_hz=500)
    assert {s.rate_hz for s in rec.streams} == {500.0}


# ---------------------------------------------------------------------------------------------------- Delsys


def test_trigno_streams_per_rate_with_rates_from_time_columns():
    rec = read_any(TRIGNO)
    assert rec.format == "delsys"
    emg, imu = rec.stream("emg"), rec.stream("imu")
    # Trigno's clocks: 34000/27 Hz for EMG, 4000/27 Hz for ACC/GYRO (header: 1.259259e+003, 1.481481e+002).
    assert emg.rate_hz == pytest.approx(34000 / 27, rel=1e-6)
    assert imu.rate_hz == pytest.approx(4000 / 27, rel=1e-6)
    assert [c.label for c in emg.channels] == ["Mini sensor 10: EMG 10", "Mini sensor 11: EMG 11"]
    assert {c.kind for c in imu.channels} == {ChannelKind.ACC, ChannelKind.GYRO}
    assert {c.unit for c in imu.channels} == {"g", "deg/s"}
    # Independent parse of the data block with the csv module.
    with open(TRIGNO, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))[18:]
    emg10 = [float(r[1]) for r in rows if r[0]]
    accx11 = [float(r[17]) for r in rows if len(r) > 17 and r[16]]  # channel 9 of 14 = imu column 6
    assert rec.counts["emg"].shape == (len(emg10), 2) == (2519, 2)
    np.testing.assert_array_equal(rec.physical("emg")[:, 0], emg10)
    np.testing.assert_array_equal(rec.physical("imu")[:, 6], accx11)
    assert any("truncated" in n for n in rec.notes)  # header says 81141 points, the sample holds 2 s


def test_trigno_rate_is_right_mains_hum_lands_near_60_hz():
    rec = read_any(TRIGNO)
    f, p = signal.welch(rec.physical("emg")[:, 0], fs=rec.stream("emg").rate_hz, nperseg=1024)
    assert 57 <= f[np.argmax(p)] <= 62  # PROVENANCE: sensor 10 dominated by ~60 Hz mains (peak 59 Hz)


def test_trigno_latin1_export(tmp_path):
    p = tmp_path / "latin1.csv"
    p.write_bytes(TRIGNO.read_text(encoding="utf-8").encode("latin-1"))  # older EMGworks: "°/s" as byte 0xB0
    rec = read_any(p)
    assert rec.stream("imu").channels[3].unit == "deg/s"
    np.testing.assert_array_equal(rec.counts["emg"], read_any(TRIGNO).counts["emg"])


def test_trigno_short_names_resolve():
    rec = read_any(TRIGNO)
    assert rec.resolve_channel("EMG 11") == ("emg", 1)
    assert rec.resolve_channel("Mini sensor 10: GYRO.Z 10") == ("imu", 5)


# ---------------------------------------------------------------------------------------------------- OpenSignals


def test_opensignals_counts_and_plux_emg_transfer_function():
    path = OPENSIGNALS / "emg_bursts.h5"
    rec = read_any(path)
    assert rec.format == "opensignals"
    (s,) = rec.streams
    assert s.rate_hz == 1000.0 and s.channels[0].unit == "mV" and s.channels[0].kind is ChannelKind.EMG
    with h5py.File(path, "r") as f:
        adc = f["00:07:80:3B:46:61/raw/channel_3"][:, 0].astype(np.float64)
    np.testing.assert_array_equal(rec.counts[s.stream_id][:, 0], adc)
    # PROVENANCE: ((ADC / 2**resolution) - 0.5) * 3.0 / 1000 * 1000 mV.
    np.testing.assert_allclose(rec.physical(s.stream_id)[:, 0], ((adc / 2**16) - 0.5) * 3.0, rtol=0, atol=1e-12)
    assert rec.counts[s.stream_id].shape[0] / s.rate_hz == pytest.approx(28.5, abs=0.05)
    assert rec.meta["info_json"]["Observations"] == "Cyclic contractions of Biceps Brachii"


def test_opensignals_two_devices_two_rates():
    rec = read_any(OPENSIGNALS / "emg_1000_hz_16_bits.h5")
    rates = {s.stream_id: s.rate_hz for s in rec.streams}
    assert rates == {"plux_000780d8a7f9": 1000.0, "plux_000780d8a882": 10.0}  # the _info.json: "1000, 10"
    assert rec.counts["plux_000780d8a7f9"].shape == (40500, 1)
    assert rec.counts["plux_000780d8a882"].shape == (540, 1)
    assert rec.resolve_channel("PORT6_CHN1") == ("plux_000780d8a7f9", 0)
    assert rec.resolve_channel("A5") == ("plux_000780d8a882", 0)
    assert rec.stream("plux_000780d8a882").device == "PLUX channeller 00:07:80:D8:A8:82"


# ---------------------------------------------------------------------------------------------------- XDF


def test_xdf_minimal_values_and_markers():
    rec = read_any(XDF / "minimal.xdf")
    (s,) = rec.streams
    assert (s.stream_id, s.rate_hz, s.dtype, s.n_channels) == ("SendDataC", 10.0, "int16", 3)
    # The README's table of stream 0.
    expected = [[192, 255, 238], [12, 22, 32], [13, 23, 33], [14, 24, 34], [15, 25, 35],
                [12, 22, 32], [13, 23, 33], [14, 24, 34], [15, 25, 35]]
    np.testing.assert_array_equal(rec.counts["SendDataC"], expected)
    texts = [e.payload["text"] for e in rec.events]
    assert texts[1:] == ["Hello", "World", "from", "LSL"] * 2
    # Both streams are stamped 5.1..5.9 at 10 Hz; the string stream has no clock offsets, so after pyxdf's
    # synchronisation the markers sit 0.1 s after the data's samples: marker k lands on sample k+1.
    assert [e.index for e in rec.events[:8]] == list(range(1, 9))
    assert all(e.stream_id == "SendDataC" and e.kind == "marker" for e in rec.events[:8])


def test_xdf_clock_resets_become_a_gap():
    rec = read_any(XDF / "clock_resets.xdf")
    (s,) = rec.streams
    assert (s.stream_id, s.rate_hz, s.n_channels, s.dtype) == ("BioSemi", 100.0, 8, "float32")
    assert rec.counts["BioSemi"].shape == (27815, 8)  # README: 27815 samples
    ((start, n_missing),) = rec.gaps["BioSemi"]
    assert start == 12876  # pyxdf splits the stream into samples 0..12875 and 12876..27814
    # The break spans ~274 s (README: clock values jump from ~653xxx to ~2xx); at 100 Hz that is ~27400 samples.
    assert 27000 < n_missing < 28000
    assert len(rec.events) == 175 and all(e.kind == "marker" for e in rec.events)
    assert any("effective rate" in n for n in rec.notes)


def test_xdf_empty_streams_are_skipped_with_notes_and_strings_become_events():
    rec = read_any(XDF / "empty_streams.xdf")
    (s,) = rec.streams
    assert s.dtype == "int32" and s.rate_hz == 1.0 and s.channels[0].label == "ch:00"
    np.testing.assert_array_equal(rec.counts[s.stream_id][:, 0], np.arange(10))  # README: counter 0..9
    assert sum("skipped: empty" in n for n in rec.notes) == 2
    (ev,) = rec.events
    assert ev.payload["text"] == '{"state": 2}'
    # ctrl marker at 91725.014 s, the 1 Hz counter starts at 91725.214 s: within half a period of sample 0.
    assert ev.index == 0 and ev.time_s == pytest.approx(-0.2, abs=0.01)


# ---------------------------------------------------------------------------------------------------- WFDB


@pytest.mark.parametrize("name,n,first", [("emg_healthy", 50860, -333), ("emg_myopathy", 110337, -50),
                                          ("emg_neuropathy", 147858, 900)])
def test_wfdb_format16(name, n, first):
    rec = read_any(EMGDB / f"{name}.dat")  # the .dat finds its .hea
    (s,) = rec.streams
    assert s.rate_hz == 4000.0 and s.channels[0].unit == "mV" and s.channels[0].label == "EMG"
    raw = np.fromfile(EMGDB / f"{name}.dat", dtype="<i2")
    assert raw.size == n and raw[0] == first  # header: nsamp and init_val
    np.testing.assert_array_equal(rec.counts["signals"][:, 0], raw)
    np.testing.assert_allclose(rec.physical("signals")[:, 0], raw / 10000.0, rtol=1e-15)  # 10000 adu per mV
    # Recording notes are kept; the subject's age/sex/diagnoses lines are not (sessions are pseudonymous).
    comments = rec.meta["header_comments"]
    assert "EMG from 25mm concentric needle electrode placed in tibialis anterior muscle" in comments
    assert not any("age" in c or "diagnos" in c or "radiculopathy" in c for c in comments)
    assert len(comments) == 2 and "not imported" in rec.notes[0]


# ---------------------------------------------------------------------------------------------------- EDF/BDF


def _write_edf(path: Path, bdf: bool = False, plus: bool = True) -> list[np.ndarray]:
    ftype = {(False, False): pyedflib.FILETYPE_EDF, (False, True): pyedflib.FILETYPE_EDFPLUS,
             (True, False): pyedflib.FILETYPE_BDF, (True, True): pyedflib.FILETYPE_BDFPLUS}[(bdf, plus)]
    dmax = 2**23 - 1 if bdf else 32767
    w = pyedflib.EdfWriter(str(path), 3, file_type=ftype)
    w.setSignalHeaders([
        dict(label="EMG GMed L", dimension="uV", sample_frequency=1000, physical_max=5000.0, physical_min=-5000.0,
             digital_max=dmax, digital_min=-dmax - 1, transducer="", prefilter=""),
        dict(label="EMG TFL L", dimension="uV", sample_frequency=1000, physical_max=2000.0, physical_min=-3000.0,
             digital_max=dmax, digital_min=-dmax - 1, transducer="", prefilter=""),
        dict(label="Knee", dimension="deg", sample_frequency=100, physical_max=180.0, physical_min=-180.0,
             digital_max=dmax, digital_min=-dmax - 1, transducer="", prefilter=""),
    ])
    rng = np.random.default_rng(7)
    x = [rng.normal(0, 500, 3000), rng.normal(0, 300, 3000), np.linspace(0, 90, 300)]
    w.writeSamples(x)
    if plus:  # plain EDF/BDF has no annotation channel
        w.writeAnnotation(0.5, -1, "trial 1 start")
        w.writeAnnotation(1.25, 0.5, "rep")
    w.close()
    return x


@pytest.mark.parametrize("bdf,plus", [(False, False), (False, True), (True, False), (True, True)])
def test_edf_bdf_mixed_rates_and_annotations(tmp_path, bdf, plus):
    path = tmp_path / ("t.bdf" if bdf else "t.edf")
    x = _write_edf(path, bdf, plus)
    rec = read_any(path)
    assert rec.format == "edf"
    fast, slow = rec.streams
    assert (fast.rate_hz, slow.rate_hz) == (1000.0, 100.0)
    assert fast.dtype == ("int32" if bdf else "int16")
    assert [c.label for c in fast.channels] == ["EMG GMed L", "EMG TFL L"]
    assert slow.channels[0].kind is ChannelKind.ANGLE and fast.channels[0].kind is ChannelKind.EMG
    # Physical values within one quantisation step of what was written (edflib truncates when writing).
    for stream, cols in ((fast, x[:2]), (slow, x[2:])):
        phys = rec.physical(stream.stream_id)
        for j, col in enumerate(cols):
            np.testing.assert_allclose(phys[:, j], col, rtol=0, atol=stream.channels[j].gain * (1 + 1e-9))
    # And exactly what pyedflib itself computes from the same digital values.
    with pyedflib.EdfReader(str(path)) as r:
        np.testing.assert_allclose(rec.physical(fast.stream_id)[:, 1], r.readSignal(1), rtol=1e-12, atol=1e-9)
    assert rec.meta["file_type"] == ("BDF" if bdf else "EDF") + ("+" if plus else "")
    if plus:
        assert [(e.time_s, e.payload["text"]) for e in rec.events] == [(0.5, "trial 1 start"), (1.25, "rep")]
        assert rec.events[1].payload["duration_s"] == 0.5
    else:
        assert rec.events == []


# ---------------------------------------------------------------------------------------------------- generic CSV


def test_csv_header_time_column_gives_the_rate(tmp_path):
    t = np.arange(500) / 2000.0
    emg = np.sin(2 * np.pi * 50 * t)
    p = tmp_path / "a.csv"
    p.write_text("time_s,EMG1 (mV),acc_g\n" + "".join(f"{float(a)!r},{float(b)!r},{i}\n" for i, (a, b) in enumerate(zip(t, emg))))
    rec = read_any(p)
    (s,) = rec.streams
    assert s.rate_hz == pytest.approx(2000.0, rel=1e-9)
    assert [(c.label, c.unit, c.kind) for c in s.channels] == [("EMG1 (mV)", "mV", ChannelKind.EMG), ("acc_g", "g", ChannelKind.ACC)]
    np.testing.assert_array_equal(rec.physical("data")[:, 0], emg)
    np.testing.assert_array_equal(rec.physical("data")[:, 1], np.arange(500))
    assert rec.resolve_channel("EMG1") == ("data", 0) and rec.resolve_channel("3") == ("data", 1)


def test_tsv_headerless_needs_a_rate(tmp_path):
    p = tmp_path / "b.tsv"
    p.write_text("# exported by something\n" + "".join(f"{i}\t{-i}\n" for i in range(100)))
    with pytest.raises(ImportFormatError, match="no time column"):
        read_any(p)
    rec = read_any(p, rate_hz=250)
    assert rec.streams[0].rate_hz == 250.0 and [c.label for c in rec.streams[0].channels] == ["1", "2"]
    np.testing.assert_array_equal(rec.counts["data"], np.column_stack([np.arange(100), -np.arange(100)]))


def test_semicolon_decimal_comma_and_ms_time(tmp_path):
    p = tmp_path / "c.csv"
    p.write_text("Time (ms);gmed\n" + "".join(f"{i * 2};{i / 4:.2f}".replace(".", ",") + "\n" for i in range(50)))
    rec = read_any(p)
    assert rec.streams[0].rate_hz == pytest.approx(500.0)
    np.testing.assert_array_equal(rec.counts["data"][:, 0], np.arange(50) / 4)


def test_whitespace_separated(tmp_path):
    p = tmp_path / "d.txt"
    p.write_text("t  a  b\n" + "".join(f"{i / 100}  {i}   {2 * i}\n" for i in range(20)))
    rec = read_any(p)
    assert rec.streams[0].rate_hz == pytest.approx(100.0) and rec.counts["data"].shape == (20, 2)


def test_given_rate_overrides_time_column_with_a_note(tmp_path):
    p = tmp_path / "e.csv"
    p.write_text("time,x\n" + "".join(f"{i * 0.001:.3f},{i}\n" for i in range(10)))
    rec = read_any(p, rate_hz=1000)
    assert rec.streams[0].n_channels == 1 and any("ignored" in n for n in rec.notes)


def test_channel_names_labels_before_aliases_and_qualified_names(tmp_path):
    from sensors.importers import ImportedRecording
    from sensors.stream import ChannelInfo, StreamInfo

    a = StreamInfo("a", 100.0, (ChannelInfo("x"), ChannelInfo("2")))
    b = StreamInfo("b", 10.0, (ChannelInfo("x"),))
    rec = ImportedRecording(
        path=tmp_path / "f.csv", format="csv", streams=[a, b],
        counts={"a": np.zeros((3, 2), np.int16), "b": np.zeros((1, 1), np.int16)}, aliases={"a": (("1",), ("9",)), "b": (("2",),)},
    )
    assert rec.resolve_channel("2") == ("a", 1)  # a label beats another channel's alias
    assert rec.resolve_channel("b/2") == ("b", 0) and rec.resolve_channel("a/x") == ("a", 0)
    with pytest.raises(ImportFormatError, match=r"'x' is ambiguous \(a/x, b/x\); qualify it as STREAM/CHANNEL"):
        rec.resolve_channel("x")
    with pytest.raises(ImportFormatError, match=r"no channel 'y'; available channels:\n  'x' \(also '1'\) \[stream a"):
        rec.resolve_channel("y")


# ---------------------------------------------------------------------------------------------------- malformed


def _bad(tmp_path: Path, name: str, content: str | bytes) -> Path:
    p = tmp_path / name
    p.write_bytes(content if isinstance(content, bytes) else content.encode())
    return p


@pytest.mark.parametrize(
    "name,content,rate,match",
    [
        ("nonnum.csv", "time,a\n0,1\n0.001,x\n", None, r"line 3, column 'a': non-numeric cell 'x'"),
        ("nan.csv", "time,a\n0,1\n0.001,nan\n0.002,1\n", None, r"line 3, column 'a': 'nan' is not a finite number"),
        ("nan_first.tsv", "NaN\t1\n2\t3\n", 10, r"line 1, column '1': 'NaN' is not a finite number"),
        ("inf.csv", "time,a\n0,1\n0.001,-inf\n", None, r"line 3, column 'a': '-inf' is not a finite number"),
        ("uci_rate.txt", "File Name: x.log\nChannel 1: 'RF', 2 values, engineering units: mV, no filters.\n\n1\n2\n",
         0, r"given rate 0 Hz is not a usable rate"),
        ("empty_cell.csv", "time,a,b\n0,1,2\n0.001,,3\n", None, r"line 3, column 'a': empty cell"),
        ("ragged.csv", "time,a,b\n0,1,2\n0.001,3\n", None, r"line 3 has 2 cells, expected 3"),
        ("irregular.csv", "time,a\n0,1\n0.001,1\n0.0025,1\n0.003,1\n", None, r"irregular time stamps"),
        ("backwards.csv", "time,a\n0,1\n0.002,1\n0.001,1\n", None, r"time does not increase at sample 2 \(0\.002 -> 0\.001 s\)"),
        ("zero_time.csv", "time,a\n0,1\n0,1\n", None, r"time does not increase at sample 1 \(0 -> 0 s\)"),
        ("too_fast.csv", "time,a\n0,1\n1e-9,1\n2e-9,1\n", None, r"time column 'time' rate 1e\+09 Hz is not a usable rate"),
        ("header_only.csv", "time,a\n", None, r"header only"),
        ("empty.csv", "", None, r"empty"),
        ("blank.csv", "\n\n# only a comment\n", None, r"no data lines"),
        ("zero_rate.csv", "1\n2\n", 0, r"given rate 0 Hz is not a usable rate"),
        ("neg_rate.csv", "1\n2\n", -100, r"given rate -100 Hz is not a usable rate"),
        ("inf_rate.tsv", "1\n2\n", float("inf"), r"not a usable rate"),
        ("binary.csv", b"abc\x00\x01\x02", None, r"unrecognised binary file"),
        ("bad.edf", "this is not an EDF header at all" * 20, None, r"does not match its \.edf extension"),
        ("bad.xdf", b"XDF:" + b"\x00" * 40, None, r"damaged XDF file"),
        ("bad.h5", b"\x89HDF\r\n\x1a\n" + b"\x00" * 100, None, r"not a readable HDF5 file"),
        ("uci_count.txt", "File Name: x.log\nChannel 1: 'RF', 3 values, engineering units: mV, no filters.\n\n1\n2\n",
         None, r"'RF': header declares 3 values, file holds 2"),
        ("uci_hole.txt", "File Name: x.log\nChannel 1: 'RF', 3 values, engineering units: mV, no filters.\n"
         "Channel 2: 'BF', 3 values, engineering units: mV, no filters.\n\n1\t1\n\t2\n3\t3\n", None, r"value after an empty cell"),
        ("uci_bad.txt", "File Name: x.log\nChannel 1: 'RF', 2 values, engineering units: mV, no filters.\n\n1\nabc\n",
         None, r"line 5, column 'RF': non-numeric cell 'abc'"),
        ("uci_header.txt", "File Name: x.log\nChannel 1: 'RF', 2 values, engineering units: mV, no filters.\nGarbage\n\n1\n2\n",
         None, r"line 3: expected"),
    ],
)
def test_malformed_inputs_raise_one_clear_error(tmp_path, name, content, rate, match):
    p = _bad(tmp_path, name, content)
    with pytest.raises(ImportFormatError, match=match) as ei:
        read_any(p, rate_hz=rate)
    assert str(ei.value).startswith(f"{name}: ")  # the message names the file
    assert "np." not in str(ei.value)  # numbers read as numbers, not as numpy reprs (np.float64(0.0))


def test_absurd_text_size_is_refused_without_reading(tmp_path):
    p = tmp_path / "huge.csv"
    with open(p, "wb") as fh:
        fh.write(b"time,a\n" + b"".join(b"%d,1\n" % i for i in range(2000)))  # text beyond the sniffed head
        fh.truncate(3 * 10**9)  # sparse: no disk used
    with pytest.raises(ImportFormatError, match="beyond the importer's limit"):
        read_any(p)


def _trigno_lines() -> list[str]:
    return TRIGNO.read_text(encoding="utf-8").splitlines()


def test_trigno_malformed(tmp_path):
    lines = _trigno_lines()
    cut = _bad(tmp_path, "cut.csv", "\n".join(lines[:10]) + "\n")  # truncated inside the header
    with pytest.raises(ImportFormatError, match="cut.csv: no column header line"):
        read_any(cut)
    bad = list(lines)
    cells = bad[100].split(",")
    bad[100] = ",".join([cells[0], "oops", *cells[2:]])
    with pytest.raises(ImportFormatError, match=r"line 101, column 'Mini sensor 10: EMG 10': non-numeric cell 'oops'"):
        read_any(_bad(tmp_path, "nonnum.csv", "\n".join(bad)))
    bad = list(lines)
    bad[0] = bad[0].replace("1.259259e+003", "2.000000e+003")
    with pytest.raises(ImportFormatError, match=r"EMG 10': time column gives 1259.26 Hz but the header says 2000 Hz"):
        read_any(_bad(tmp_path, "rate.csv", "\n".join(bad)))
    bad = list(lines)
    bad[0] = bad[0].replace("1.259259e+003", "0.000000e+000")
    with pytest.raises(ImportFormatError, match=r"header rate 0 Hz is not a usable rate"):
        read_any(_bad(tmp_path, "zero.csv", "\n".join(bad)))


def test_edf_truncated_and_bad_scaling(tmp_path):
    good = tmp_path / "good.edf"
    _write_edf(good)
    raw = good.read_bytes()
    cut = _bad(tmp_path, "cut.edf", raw[: len(raw) - 5000])
    with pytest.raises(ImportFormatError, match="cut.edf: not a readable EDF/BDF file"):
        read_any(cut)
    cut_header = _bad(tmp_path, "cuthdr.edf", raw[:300])
    with pytest.raises(ImportFormatError, match="cuthdr.edf: not a readable EDF/BDF file"):
        read_any(cut_header)
    with pytest.raises(ImportFormatError, match="state their own sampling rate"):
        read_any(good, rate_hz=1000)


def _write_wfdb(tmp_path: Path, header: str, data: np.ndarray | None = None, name: str = "r") -> Path:
    (tmp_path / f"{name}.hea").write_text(header)
    if data is not None:
        data.astype("<i2").tofile(tmp_path / f"{name}.dat")
    return tmp_path / f"{name}.hea"


def test_wfdb_malformed(tmp_path):
    x = np.array([5, -3, 7, 100], dtype=np.int16)
    ok = f"r 1 1000 4\nr.dat 16 200/mV 16 0 5 {int(x.sum())} 0 EMG\n"
    rec = read_any(_write_wfdb(tmp_path, ok, x))
    np.testing.assert_array_equal(rec.physical("signals")[:, 0], x / 200)
    cases = [
        ("r 1 1000 5\nr.dat 16 200/mV 16 0 5 109 0 EMG\n", "8 bytes, but the header declares 5 samples"),
        ("r 1 1000 4\nr.dat 16 200/mV 16 0 5 110 0 EMG\n", "checksum 109 does not match the header's 110"),
        ("r 1 1000 4\nr.dat 16 200/mV 16 0 6 109 0 EMG\n", "first sample 5 differs from the header's 6"),
        ("r 1 0 4\nr.dat 16 200/mV 16 0 5 109 0 EMG\n", "sampling rate 0 Hz is not a usable rate"),
        ("r 1 -4000 4\nr.dat 16 200/mV\n", "not a usable rate"),
        ("r 1 1000 4\nr.dat 212 200/mV\n", "storage format '212' not supported"),
        ("r 1 1000 1000000000000\nr.dat 16 200/mV\n", "beyond the importer's limit"),
        ("r 2 1000 4\nr.dat 16 200/mV\n", "declares 2 signals but has 1 signal lines"),
        ("r x 1000 4\n", "number of signals 'x' is not an integer"),
    ]
    for header, match in cases:
        with pytest.raises(ImportFormatError, match=match):
            read_any(_write_wfdb(tmp_path, header, x))


def _write_opensignals(path: Path, rate=1000, resolution=16, data=None, shape=None):
    with h5py.File(path, "w") as f:
        g = f.create_group("00:11:22:33:44:55")
        g.attrs["sampling rate"] = rate
        g.attrs["resolution"] = np.array([resolution], dtype=np.int32)
        g.attrs["channels"] = np.array([1], dtype=np.int32)
        if shape is not None:
            ds = g.create_dataset("raw/channel_1", shape=shape, dtype=np.uint16, chunks=(1024, 1))
        else:
            ds = g.create_dataset("raw/channel_1", data=data)
        ds.attrs["sensor"] = "EMG"
        ds.attrs["label"] = "PORT1_CHN1"


def test_opensignals_malformed(tmp_path):
    x = np.arange(100, dtype=np.uint16).reshape(-1, 1)
    _write_opensignals(tmp_path / "zero.h5", rate=0, data=x)
    with pytest.raises(ImportFormatError, match="zero.h5: device 00:11:22:33:44:55 sampling rate 0 Hz is not a usable rate"):
        read_any(tmp_path / "zero.h5")
    _write_opensignals(tmp_path / "huge.h5", shape=(10**12, 1))  # chunked and empty: a few kB on disk
    assert (tmp_path / "huge.h5").stat().st_size < 100_000
    with pytest.raises(ImportFormatError, match="huge.h5: .*beyond the importer's limit"):
        read_any(tmp_path / "huge.h5")
    _write_opensignals(tmp_path / "range.h5", resolution=4, data=x)
    with pytest.raises(ImportFormatError, match="outside 4-bit ADC range"):
        read_any(tmp_path / "range.h5")
    _write_opensignals(tmp_path / "good.h5", data=x)
    raw = (tmp_path / "good.h5").read_bytes()
    (tmp_path / "cut.h5").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ImportFormatError, match="cut.h5: "):
        read_any(tmp_path / "cut.h5")


def test_xdf_truncated_or_damaged(tmp_path):
    raw = (XDF / "minimal.xdf").read_bytes()
    with pytest.raises(ImportFormatError, match="cut.xdf: XDF file cannot be parsed"):
        read_any(_bad(tmp_path, "cut.xdf", raw[:600]))
    big = (XDF / "clock_resets.xdf").read_bytes()
    # Cut mid-chunk: pyxdf would return the first half; refused instead.
    with pytest.raises(ImportFormatError, match=r"half.xdf: damaged XDF file \(truncated or corrupt\?\): pyxdf: found likely XDF file corruption"):
        read_any(_bad(tmp_path, "half.xdf", big[: len(big) // 2]))
    damaged = bytearray(big)
    damaged[5000:5100] = b"\xff" * 100  # inside the first BioSemi samples: float32 NaNs
    with pytest.raises(ImportFormatError, match=r"dmg.xdf: stream 'BioSemi', sample \d+, channel \d: value nan is not finite"):
        read_any(_bad(tmp_path, "dmg.xdf", bytes(damaged)))


def test_detection_by_content_not_extension(tmp_path):
    p = tmp_path / "renamed.dat.csv"
    p.write_bytes((XDF / "minimal.xdf").read_bytes())
    assert detect_format(p) == "xdf"
    assert detect_format(TRIGNO) == "delsys"
    assert detect_format(UCI / "5Npie.txt") == "uci"
    assert detect_format(EMGDB / "emg_healthy.hea") == "wfdb"
    assert detect_format(OPENSIGNALS / "emg_bursts.h5") == "opensignals"
    assert json.loads((OPENSIGNALS / "emg_bursts_info.json").read_text())["Sample Rate"] == "1000 Hz"


# ---------------------------------------------------------------------------------------------------- property


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    values=st.integers(1, 40).flatmap(
        lambda n: st.integers(1, 6).flatmap(
            lambda k: st.lists(
                st.lists(st.floats(allow_nan=False, allow_infinity=False, width=64), min_size=k, max_size=k),
                min_size=n, max_size=n,
            )
        )
    ),
    delimiter=st.sampled_from([",", "\t", ";", " ", "|"]),
    header=st.booleans(),
    crlf=st.booleans(),
)
def test_csv_any_finite_table_reads_back_exactly(tmp_path, values, delimiter, header, crlf):
    """Whatever the delimiter, header or line ending, repr-written floats come back bit for bit."""
    x = np.array(values, dtype=np.float64)
    k = x.shape[1]
    nl = "\r\n" if crlf else "\n"
    lines = [delimiter.join(f"ch{j}" for j in range(k))] if header else []
    lines += [delimiter.join(repr(float(v)) for v in row) for row in x]
    p = tmp_path / "prop.csv"
    p.write_bytes((nl.join(lines) + nl).encode())
    rec = read_any(p, rate_hz=100)
    np.testing.assert_array_equal(rec.counts["data"], x)
    assert [c.label for c in rec.streams[0].channels] == ([f"ch{j}" for j in range(k)] if header else [str(j + 1) for j in range(k)])
