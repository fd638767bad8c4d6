"""EDF+/BDF+ export read back with pyedflib: mixed rates, values within quantisation, annotations, privacy."""

import numpy as np
import pyedflib
import pytest

from sensors.export.edf import ExportError, record_duration_s, write_edf
from sensors.recording import MARKER, REPETITION, TRIAL_START, TRIAL_STOP, SessionReader, SessionWriter
from sensors.stream import ChannelInfo, Frame, StreamInfo

EMG = StreamInfo("emg", 2000.0, (
    ChannelInfo("A1", unit="mV", gain=0.0005, offset=12.0, muscle="gluteus_medius", side="right"),
    ChannelInfo("A2", unit="mV", gain=0.001, muscle="tfl", side="right")), dtype="int16", device="dev")
IMU = StreamInfo("imu", 2000 / 13.5, (ChannelInfo("ax", kind="acc", unit="g", gain=1.0),), dtype="float32")


@pytest.fixture
def session(tmp_path):
    rng = np.random.default_rng(3)
    n_emg, n_imu = 2000 * 5 + 77, 700
    t = np.arange(n_emg) / 2000
    emg = np.stack([8000 * np.sin(2 * np.pi * 7 * t) + rng.normal(0, 500, n_emg),
                    rng.normal(0, 3000, n_emg)], axis=1).round().clip(-32768, 32767).astype(np.int16)
    imu = rng.normal(0, 1.5, (n_imu, 1)).astype(np.float32)
    path = tmp_path / "s.medius"
    meta = {"patient_code": "P-042", "identifying": {"name": "Jane Doe"}}
    with SessionWriter.create(path, meta) as w:
        w.add_stream(EMG)
        w.add_stream(IMU)
        w.write_frame(Frame("emg", 0, emg[:4000]))
        w.write_frame(Frame("emg", 4500, emg[4500:]))
        w.write_frame(Frame("imu", 0, imu))
        w.add_event(TRIAL_START, "emg", 1000, None, {"trial": 1, "type": "clam", "repetitions": 2})
        w.add_event(REPETITION, "emg", 1200, None, {"trial": 1, "rep": 1, "end_index": 2200})
        w.add_event(MARKER, None, None, 2.5, {"text": "cough"})
        w.add_event(TRIAL_STOP, "emg", 9000, None, {"trial": 1})
    return path, emg, imu


def test_record_duration_makes_every_rate_whole():
    assert record_duration_s([2000.0, 100.0]) == (1.0, [2000, 100])
    assert record_duration_s([2000.0, 2000 / 13.5]) == (0.999, [1998, 148])  # 2000/13.5 * 0.999 = 148 exactly
    assert record_duration_s([1000 / 3]) == (0.999, [333])
    with pytest.raises(ExportError, match="not a ratio of small integers"):
        record_duration_s([2000.0, np.pi * 100])


@pytest.mark.parametrize("bdf", [False, True])
def test_round_trip_within_quantisation(session, tmp_path, bdf):
    path, emg, imu = session
    out = tmp_path / ("s.bdf" if bdf else "s.edf")
    with SessionReader(path) as r:
        write_edf(r, out, bdf=bdf)
    f = pyedflib.EdfReader(str(out))
    try:
        assert f.signals_in_file == 3
        assert f.getPatientCode() == "P-042" and f.getPatientName() in ("", "X")  # EDF+: X = not given
        assert f.getSampleFrequency(0) == pytest.approx(2000.0)
        assert f.getSampleFrequency(2) == pytest.approx(2000 / 13.5, rel=1e-9)
        phys_emg = (emg.astype(np.float64) - [12.0, 0.0]) * [0.0005, 0.001]
        expected = [phys_emg[:, 0], phys_emg[:, 1], imu[:, 0].astype(np.float64)]
        for ch, ref in enumerate(expected):
            x = f.readSignal(ch)
            step = (f.getPhysicalMaximum(ch) - f.getPhysicalMinimum(ch)) / (
                f.getDigitalMaximum(ch) - f.getDigitalMinimum(ch))
            assert f.getDigitalMaximum(ch) == (2 ** 23 - 1 if bdf else 32767)
            assert x.shape[0] >= ref.shape[0]
            valid = np.ones(ref.shape[0], bool)
            if ch < 2:
                valid[4000:4500] = False  # the gap
                assert np.all(np.abs(x[4000:4500]) <= step)  # written as 0
            err = np.abs(x[:ref.shape[0]][valid] - ref[valid])
            assert err.max() <= step / 2 * (1 + 1e-9)
            assert ref[valid].max() <= f.getPhysicalMaximum(ch) and ref[valid].min() >= f.getPhysicalMinimum(ch)
        onsets, durations, texts = f.readAnnotations()
        got = sorted(zip(np.round(onsets, 4), np.round(durations, 4), texts))
        assert got == sorted([
            (0.5, 4.0, "trial 1 clam"), (0.6, 0.5, "trial 1 rep 1"), (2.0, 0.25, "gap emg: 500 samples missing"),
            (2.5, -1.0, "marker: cough")])
    finally:
        f.close()


def test_identifying_name_only_on_request(session, tmp_path):
    path, _, _ = session
    out = tmp_path / "id.edf"
    with SessionReader(path) as r:
        write_edf(r, out, include_identifying=True)
    f = pyedflib.EdfReader(str(out))
    try:
        assert f.getPatientName() == "Jane Doe"  # stored as Jane_Doe (EDF+ subfield), read back with the space
    finally:
        f.close()


def test_unrepresentable_rates_give_one_error_and_no_file(tmp_path):
    # A rate estimated from timestamps (as importers do for Trigno CSV) next to an exact one: no record
    # duration of at most 60 s holds a whole number of samples of both.
    path = tmp_path / "odd.medius"
    emg = StreamInfo("emg", 1259.2594074379322, (ChannelInfo("A1", unit="V"),), dtype="float32")
    with SessionWriter.create(path, {"patient_code": "Q"}) as w:
        w.add_stream(emg)
        w.add_stream(IMU)
        w.write_frame(Frame("emg", 0, np.zeros((2000, 1), np.float32)))
        w.write_frame(Frame("imu", 0, np.zeros((200, 1), np.float32)))
    out = tmp_path / "odd.edf"
    with SessionReader(path) as r, pytest.raises(ExportError, match="export these streams as CSV"):
        write_edf(r, out)
    assert not out.exists()
