"""Myo and MetaMotion decoders against hand-built notifications (protocols.md §3, §5)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sensors.ble import metamotion, myo
from sensors.ble.metamotion import MetaMotionDecoder, MetaMotionProfile
from sensors.ble.myo import EMG_UUIDS, IMU_UUID, MyoDecoder, MyoProfile
from sensors.stream import EventKind, Frame


def int8_bytes(values):
    return bytes((v + 256) % 256 for v in values)


def le16(values):
    return b"".join(int(v).to_bytes(2, "little", signed=True) for v in values)


def frames_of(items, stream_id):
    fs = [x for x in items if isinstance(x, Frame) and x.stream_id == stream_id]
    idx = np.concatenate([np.arange(f.first_index, f.end_index) for f in fs]) if fs else np.empty(0, int)
    rows = np.concatenate([f.counts for f in fs]) if fs else np.empty((0, 0))
    return idx, rows


def events(items, kind):
    return [x for x in items if getattr(x, "kind", None) == kind]


# --- Myo -------------------------------------------------------------------------------------------------


def myo_emg_notifications(n):
    """n notifications in the armband's rotation; sample s carries s % 256 − 128 on channel 1, −ch on the rest."""
    out, expected = [], []
    for k in range(n):
        samples = []
        for s in (2 * k, 2 * k + 1):
            row = [(s % 256) - 128] + [-(c + 1) for c in range(1, 8)]
            samples += row
            expected.append(row)
        out.append((EMG_UUIDS[k % 4], int8_bytes(samples)))
    return out, np.array(expected)


def test_myo_emg_rotation_orders_samples():
    notes, expected = myo_emg_notifications(400)
    dec = MyoDecoder()
    items = []
    for uuid, data in notes:
        items += dec.feed(uuid, data, 0.0)
    idx, rows = frames_of(items, "emg")
    assert idx.tolist() == list(range(800))
    np.testing.assert_array_equal(rows, expected)
    assert rows.dtype == np.int8 and rows[0, 0] == -128 and rows[255, 0] == 127


def test_myo_loss_every_50th_notification_is_two_percent():
    notes, expected = myo_emg_notifications(5000)
    kept = [k for k in range(5000) if k % 50 != 25]
    dec = MyoDecoder()
    items = []
    for k in kept:
        items += dec.feed(*notes[k], 0.0)
    idx, rows = frames_of(items, "emg")
    kept_samples = [s for k in kept for s in (2 * k, 2 * k + 1)]
    assert idx.tolist() == kept_samples
    np.testing.assert_array_equal(rows, expected[kept_samples])
    gaps = events(items, EventKind.GAP)
    assert [(g.payload["stream_id"], g.payload["start_index"], g.payload["n_missing"]) for g in gaps][:2] == [
        ("emg", 50, 2),
        ("emg", 150, 2),
    ]
    assert dec.stats.lost_samples == 200 and f"{100 * dec.stats.lost_samples / 10000:.2f}" == "2.00"
    assert dec.stats.lost_packets == 100


def test_myo_imu_golden_and_units():
    # quat w = 1.0, x = −0.5; acc x = −1 g, z = +2 g; gyro z = +10 deg/s
    raw = [16384, -8192, 0, 0, -2048, 0, 4096, 0, 0, 160]
    data = le16(raw)
    dec = MyoDecoder()
    items = dec.feed(IMU_UUID, data, 0.0) + dec.feed(IMU_UUID, data, 0.02)
    idx, rows = frames_of(items, "imu")
    assert idx.tolist() == [0, 1]
    imu_info = MyoProfile().streams()[1]
    phys = imu_info.to_physical(rows)[0]
    np.testing.assert_allclose(phys, [1.0, -0.5, 0, 0, -1.0, 0, 2.0, 0, 0, 10.0])


def test_myo_streams_and_commands():
    emg, imu = MyoProfile().streams()
    assert emg.rate_hz == 200 and imu.rate_hz == 50 and emg.n_channels == 8 and imu.n_channels == 10
    assert not emg.spectral_ok and "200 Hz" in emg.note and "MDF" in emg.note
    assert myo.set_mode_command(3, 1, 0) == bytes([0x01, 0x03, 0x03, 0x01, 0x00])
    assert myo.COMMAND_UUID == "d5060401-a904-deb9-4748-2c7f4a124842"
    assert EMG_UUIDS[3] == "d5060405-a904-deb9-4748-2c7f4a124842"
    assert MyoProfile().advertises(None, ["D5060001-A904-DEB9-4748-2C7F4A124842"])
    assert not MyoProfile().advertises("Polar H10", [])


# --- MetaMotion ------------------------------------------------------------------------------------------


def test_metamotion_commands_match_spec():
    cmds = metamotion.start_commands(100, 16, 2000, packed=False)
    assert [c.hex(" ") for c in cmds[:4]] == ["03 03 28 0c", "03 04 01", "03 02 01 00", "03 01 01"]
    assert [c.hex(" ") for c in cmds[4:]] == ["13 03 28 00", "13 05 01", "13 02 01 00", "13 01 01"]
    packed = metamotion.start_commands(25, 2, 125, packed=True)
    assert packed[0].hex(" ") == "03 03 26 03" and packed[1].hex(" ") == "03 1c 01"
    assert packed[4].hex(" ") == "13 03 26 04" and packed[5].hex(" ") == "13 07 01"
    stops = [c.hex(" ") for c in metamotion.stop_commands()]
    assert stops.index("03 01 00") < stops.index("03 02 00 01")
    assert stops.index("13 01 00") < stops.index("13 02 00 01")


@pytest.mark.parametrize("range_g,lsb", [(2, 16384), (4, 8192), (8, 4096), (16, 2048)])
def test_metamotion_acc_golden(range_g, lsb):
    dec = MetaMotionDecoder()
    msg = bytes([0x03, 0x04]) + le16([lsb, -lsb // 2, 0])  # +1 g, −0.5 g, 0
    idx, rows = frames_of(dec.feed(metamotion.NOTIFY_UUID, msg, 0.0), "acc")
    acc = MetaMotionProfile(acc_range_g=range_g).streams()[0]
    np.testing.assert_allclose(acc.to_physical(rows)[0], [1.0, -0.5, 0.0])


def test_metamotion_gyro_plain_and_packed():
    dec = MetaMotionDecoder()
    items = dec.feed("x", bytes([0x13, 0x05]) + le16([164, -328, 0]), 0.0)  # 10, −20, 0 deg/s at ±2000
    packed_vals = [1, 2, 3, -4, -5, -6, 32767, -32768, 0]
    items += dec.feed("x", bytes([0x13, 0x07]) + le16(packed_vals), 0.01)
    items += dec.feed("x", bytes([0x03, 0x1C]) + le16(range(9)), 0.01)
    idx, rows = frames_of(items, "gyro")
    assert idx.tolist() == [0, 1, 2, 3]
    np.testing.assert_array_equal(rows[1:], np.array(packed_vals).reshape(3, 3))
    gyro = MetaMotionProfile(gyro_range_dps=2000).streams()[1]
    np.testing.assert_allclose(gyro.to_physical(rows[:1])[0], [10.0, -20.0, 0.0])
    aidx, arows = frames_of(items, "acc")
    assert aidx.tolist() == [0, 1, 2] and arows.tolist() == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]


def test_metamotion_bad_messages_are_counted_not_raised():
    dec = MetaMotionDecoder()
    items = dec.feed("x", b"\x03\x04\x01", 0.0) + dec.feed("x", b"\x02\x01\x01", 5.0) + dec.feed("x", b"", 9.0)
    assert dec.stats.bad_packets == 3 and len(events(items, EventKind.ERROR)) == 3
    assert not [x for x in items if isinstance(x, Frame)]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([*EMG_UUIDS, IMU_UUID, "other"]), st.binary(max_size=24)), max_size=40))
def test_myo_garbage_never_raises(notes):
    dec = MyoDecoder()
    items = []
    for uuid, data in notes:
        items += dec.feed(uuid, data, 0.0)
    assert len(events(items, EventKind.ERROR)) <= 1
    for f in (x for x in items if isinstance(x, Frame)):
        assert f.counts.shape[1] == (8 if f.stream_id == "emg" else 10)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=24), max_size=40))
def test_metamotion_garbage_never_raises(msgs):
    dec = MetaMotionDecoder()
    items = []
    for i, data in enumerate(msgs):
        items += dec.feed("x", data, 0.1 * i)
    assert len(events(items, EventKind.ERROR)) <= 1 + len(msgs) * 0.1
