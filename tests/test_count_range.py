"""ADC count ranges in the stream contract: saturation is read at the converter's rails, not the dtype's."""

import math
import sqlite3

import numpy as np
import pytest

from app.analysis.data import EmgChannel, StreamData
from app.analysis.quality import saturation_pct
from sensors.ble.bitalino import BitalinoProfile
from sensors.ble.ganglion import GanglionProfile
from sensors.ble.medius import MediusChannel, MediusInfo
from sensors.ble.myo import MyoProfile
from sensors.recording import SessionReader, SessionWriter
from sensors.sim import SimConfig, Simulator, Trial
from sensors.stream import ChannelInfo, Frame, StreamInfo


def _channel(info: StreamInfo, counts: np.ndarray, column: int = 0) -> EmgChannel:
    physical = info.to_physical(counts)
    return EmgChannel("gluteus_medius_left", "gluteus_medius", "left", StreamData(info, physical, counts), column)


def test_bitalino_samples_at_1023_and_0_are_saturation():
    (info,) = BitalinoProfile(analog_channels=(1, 2, 3, 4, 5), rate_hz=1000).streams()
    assert [info.count_range(i) for i in range(5)] == [(0, 1023)] * 4 + [(0, 63)]
    rng = np.random.default_rng(0)
    n = 2000
    counts = np.zeros((n, info.n_channels), np.int16)
    counts[:, :4] = rng.integers(100, 900, (n, 4))
    counts[:, 4] = rng.integers(5, 60, n)
    top = rng.choice(n, 37, replace=False)  # clipped high on A1
    bottom = rng.choice(np.setdiff1d(np.arange(n), top), 13, replace=False)  # and low
    counts[top, 0] = 1023
    counts[bottom, 0] = 0
    counts[:50, 4] = 63  # the 6-bit channel at its own rail
    ch = _channel(info, counts)
    assert saturation_pct(ch, 0, n) == pytest.approx((37 + 13) / n * 100)
    assert saturation_pct(ch, 0, 1000) == pytest.approx(
        (np.isin(top, np.arange(1000)).sum() + np.isin(bottom, np.arange(1000)).sum()) / 1000 * 100)
    assert saturation_pct(_channel(info, counts, 4), 0, n) == pytest.approx(50 / n * 100)
    assert saturation_pct(_channel(info, counts, 1), 0, n) == 0.0
    # a recorded gap (physical NaN, counts read as 0) is not a sample at the low rail
    ch.stream.physical[1000:1500, 0] = np.nan
    received = np.ones(n, bool)
    received[1000:1500] = False
    expected = (np.isin(top, np.flatnonzero(received)).sum() + np.isin(bottom, np.flatnonzero(received)).sum())
    assert saturation_pct(ch, 0, n) == pytest.approx(expected / received.sum() * 100)


def test_without_a_declared_range_the_dtype_limits_apply_and_floats_have_none():
    info = StreamInfo("emg", 1000.0, (ChannelInfo("a"),), dtype="int16")
    assert info.count_range(0) == (-32768, 32767)
    counts = np.zeros((100, 1), np.int16)
    counts[:3] = 32767
    counts[3:4] = -32768
    counts[10:20] = 1023  # only the BITalino's rail, not this stream's
    assert saturation_pct(_channel(info, counts), 0, 100) == pytest.approx(4.0)
    floats = StreamInfo("emg", 1000.0, (ChannelInfo("a"),), dtype="float32")
    assert floats.count_range(0) is None
    assert math.isnan(saturation_pct(_channel(floats, np.zeros((10, 1), np.float32)), 0, 10))


def test_old_stream_dicts_without_the_range_still_load():
    info = StreamInfo("emg", 1000.0, (ChannelInfo("A1", gain=0.1, count_min=0, count_max=1023),), dtype="int16")
    d = info.to_dict()
    assert d["channels"][0]["count_min"] == 0 and d["channels"][0]["count_max"] == 1023
    assert StreamInfo.from_dict(d) == info
    for c in d["channels"]:  # as written before the fields existed
        del c["count_min"], c["count_max"]
    old = StreamInfo.from_dict(d)
    assert old.channels[0].count_min is None and old.count_range(0) == (-32768, 32767)


def test_bad_ranges_are_one_clear_error():
    with pytest.raises(ValueError, match="both count_min and count_max"):
        ChannelInfo("a", count_min=0)
    with pytest.raises(ValueError, match="count_min < count_max"):
        ChannelInfo("a", count_min=10, count_max=10)
    with pytest.raises(ValueError, match="integers"):
        ChannelInfo("a", count_min=0.5, count_max=10)


def test_the_range_survives_a_session_file_and_old_files_without_it_still_open(tmp_path):
    info = BitalinoProfile(analog_channels=(1, 5)).streams()[0]
    counts = np.tile(np.array([[1023, 63, 0, 1, 0, 0]], np.int16), (10, 1))
    path = tmp_path / "new.medius"
    with SessionWriter.create(path, {"patient_code": "X"}) as w:
        w.add_stream(info)
        w.write_frame(Frame(info.stream_id, 0, counts))
    with SessionReader(path) as r:
        assert r.streams == [info]
        assert r.streams[0].count_range(1) == (0, 1023)  # A5 in the second field: 10 bits
        assert r.streams[0].count_range(2) == (0, 1)  # digital input
    # a file written before the columns existed: same file with them dropped
    old = tmp_path / "old.medius"
    old.write_bytes(path.read_bytes())
    conn = sqlite3.connect(old)
    conn.execute("ALTER TABLE channels DROP COLUMN count_min")
    conn.execute("ALTER TABLE channels DROP COLUMN count_max")
    conn.commit()
    conn.close()
    with SessionReader(old) as r:
        (got,) = r.streams
        assert [c.count_min for c in got.channels] == [None] * 6
        assert got.count_range(0) == (-32768, 32767)
        np.testing.assert_array_equal(r.read_counts(info.stream_id), counts)


def test_profiles_declare_their_converter_ranges():
    myo_emg, myo_imu = MyoProfile().streams()
    assert myo_emg.count_range(0) == (-128, 127) and myo_imu.count_range(0) == (-32768, 32767)
    ganglion = GanglionProfile().streams()[0]
    lo, hi = ganglion.count_range(0)
    assert lo == -(2**23) and 2**23 - 128 <= hi < 2**23  # 24-bit codes in int32, far inside the dtype
    sim = Simulator(SimConfig(), [Trial.rest(1.0)])
    assert {sim.emg_stream.count_range(i) for i in range(sim.emg_stream.n_channels)} == {(-32768, 32767)}
    # Medius: adc_bits with the offset (spec): biased raw codes, signed codes, an envelope, no adc_bits
    chans = (MediusChannel("raw", gain=0.5, offset=2048.0), MediusChannel("signed", gain=0.5),
             MediusChannel("ENV", kind="env", gain=0.000806))
    medius = MediusInfo(2000, 10, chans, adc_bits=12).stream_info()
    assert [medius.count_range(i) for i in range(3)] == [(0, 4095), (-2048, 2047), (0, 4095)]
    assert MediusInfo(2000, 10, chans, adc_bits=0).stream_info().count_range(0) == (-32768, 32767)
    counts = np.full((8, 3), 100, np.int16)
    counts[:2, 0] = 4095
    counts[:6, 1] = -2048
    assert saturation_pct(_channel(medius, counts, 0), 0, 8) == pytest.approx(25.0)
    assert saturation_pct(_channel(medius, counts, 1), 0, 8) == pytest.approx(75.0)


def test_importers_take_the_range_the_format_states(tmp_path):
    import h5py
    import pyedflib
    from pathlib import Path

    from sensors.importers import read_any

    data = next(p / "shared" / "data" for p in Path(__file__).resolve().parents if (p / "shared" / "data").is_dir())
    # OpenSignals: the group's "resolution" attribute, read here with h5py
    path = data / "opensignals" / "emg_bursts.h5"
    rec = read_any(path)
    (s,) = rec.streams
    with h5py.File(path, "r") as f:
        bits = int(np.asarray(f["00:07:80:3B:46:61"].attrs["resolution"]).reshape(-1)[0])
    assert s.count_range(0) == (0, 2**bits - 1)
    # EDF: each signal's digital minimum and maximum, here a 12-bit recorder in a 16-bit file
    edf = tmp_path / "t.edf"
    w = pyedflib.EdfWriter(str(edf), 1, file_type=pyedflib.FILETYPE_EDFPLUS)
    w.setSignalHeaders([dict(label="EMG", dimension="uV", sample_frequency=1000, physical_max=2047.0,
                             physical_min=-2048.0, digital_max=2047, digital_min=-2048, transducer="", prefilter="")])
    x = np.zeros(1000)
    x[:30] = 2047.0  # clipped at the recorder's rail, far inside int16
    w.writeSamples([x])
    w.close()
    rec = read_any(edf)
    (s,) = rec.streams
    assert s.count_range(0) == (-2048, 2047)
    assert saturation_pct(_channel(s, rec.counts[s.stream_id]), 0, 1000) == pytest.approx(3.0)
