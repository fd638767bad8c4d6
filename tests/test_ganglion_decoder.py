"""Ganglion decoders against packets built the way the firmware builds them (protocols.md §4)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sensors.ble.ganglion import SCALE_UV, GanglionDecoder, GanglionProfile, firmware_major
from sensors.stream import EventKind, Frame


def pack_fields(fields, bits):
    """Concatenate N-bit two's-complement fields as a big-endian bit string."""
    s = "".join(format(f & ((1 << bits) - 1), f"0{bits}b") for f in fields)
    s = s.ljust(8 * ((len(s) + 7) // 8), "0")
    return int(s, 2).to_bytes(len(s) // 8, "big")


def with_sign_in_bit0(value):
    """The firmware's bitWrite(x, 0, bitRead(x, 31))."""
    return (value & ~1) | (1 if value < 0 else 0)


def v3_packet(pid, sample1, sample2, accel_byte=0):
    bits = 18 if pid < 100 else 19
    fields = [with_sign_in_bit0(s >> (24 - bits)) for s in (*sample1, *sample2)]
    body = pack_fields(fields, bits)
    if bits == 18:
        body += bytes([accel_byte & 0xFF])
    return bytes([pid]) + body


def v2_raw_packet(sample):
    return bytes([0]) + b"".join(int(v).to_bytes(3, "big", signed=True) for v in sample) + b"ABCDEFG"


def v2_delta_packet(pid, previous, sample1, sample2, accel_byte=0):
    bits = 18 if pid <= 100 else 19
    d1 = [with_sign_in_bit0(p - c) for p, c in zip(previous, sample1)]
    d2 = [with_sign_in_bit0(p - c) for p, c in zip(sample1, sample2)]
    body = pack_fields(d1 + d2, bits)
    if bits == 18:
        body += bytes([accel_byte & 0xFF])
    return bytes([pid]) + body


def feed_all(dec, packets):
    items = []
    for i, p in enumerate(packets):
        items += dec.feed("2d30c082-f39f-4ce6-923f-3484ea480596", p, i * 0.01)
    return items


def collect(items, stream="eeg"):
    fs = [x for x in items if isinstance(x, Frame) and x.stream_id == stream]
    if not fs:
        return np.empty(0, int), np.empty((0, 4))
    return np.concatenate([np.arange(f.first_index, f.end_index) for f in fs]), np.concatenate([f.counts for f in fs])


def gaps(items):
    return [(e.payload["stream_id"], e.payload["start_index"], e.payload["n_missing"])
            for e in items if getattr(e, "kind", None) == EventKind.GAP]


def test_hand_worked_v3_packets():
    # Field 1 = 0x3FFFF: 18 one-bits -> bytes FF FF C0. Sign bit (bit 0) set; value = 0x3FFFE = −2, << 6 = −128.
    p1 = bytes([5, 0xFF, 0xFF, 0xC0]) + bytes(16)
    # Field 1 = 5 = 0b000000000000000101 -> bytes 00 01 40. Bit 0 is the (positive) sign: 4 << 6 = 256.
    p2 = bytes([6, 0x00, 0x01, 0x40]) + bytes(16)
    idx, rows = collect(feed_all(GanglionDecoder(3), [p1, p2]))
    assert idx.tolist() == [0, 1, 2, 3]
    assert rows[:, 0].tolist() == [-128, 0, 256, 0] and not rows[:, 1:].any()
    # 19-bit, id 100: field 1 = all ones except bit 0 clear... set sign: 0x7FFFF -> value −2 << 5 = −64
    p3 = bytes([100]) + pack_fields([0x7FFFF] + [0] * 7, 19)
    _, rows = collect(feed_all(GanglionDecoder(3), [p3]))
    assert rows[0].tolist() == [-64, 0, 0, 0]


def test_hand_worked_v2_delta():
    raw = v2_raw_packet([1000, -1000, 0, 8388607])
    # deltas (previous − current) = +4 and −6 on ch1: 1000 -> 996 -> 1002
    p = bytes([1]) + pack_fields([4, 0, 0, 0, with_sign_in_bit0(-6), 0, 0, 0], 18) + b"\x00"
    idx, rows = collect(feed_all(GanglionDecoder(2), [raw, p]))
    assert idx.tolist() == [0, 1, 2]
    assert rows[:, 0].tolist() == [1000, 996, 1002] and rows[0].tolist() == [1000, -1000, 0, 8388607]
    # An odd delta loses its bit 0 to the sign: +5 is sent as +4 (firmware behaviour, not a decoder bug).
    p_odd = bytes([1]) + pack_fields([with_sign_in_bit0(5)] + [0] * 7, 18) + b"\x00"
    _, rows = collect(feed_all(GanglionDecoder(2), [raw, p_odd]))
    assert rows[1, 0] == 996


@pytest.mark.parametrize("pid0", [0, 100])
def test_golden_v3_stream(pid0):
    rng = np.random.default_rng(pid0)
    samples = rng.integers(-(2**23), 2**23, size=(400, 4))
    packets = [v3_packet(pid0 + k % 100, samples[2 * k], samples[2 * k + 1]) for k in range(200)]
    dec = GanglionDecoder(3)
    idx, rows = collect(feed_all(dec, packets))
    assert idx.tolist() == list(range(400))
    low_bits = 0x7F if pid0 == 0 else 0x3F  # 6 (5) truncated bits plus bit 0 given to the sign
    np.testing.assert_array_equal(rows, samples & ~low_bits)
    assert rows.dtype == np.int32 and dec.stats.bad_packets == 0


def v2_stream(samples, bits=19):
    """Firmware 2.x packets for consecutive samples: a raw packet every 201 samples, deltas in between."""
    packets, i = [], 0
    while i + 201 <= len(samples):
        packets.append(v2_raw_packet(samples[i]))
        for pos in range(1, 101):
            s1, s2 = samples[i + 2 * pos - 1], samples[i + 2 * pos]
            pid = pos if bits == 18 else pos + 100
            packets.append(v2_delta_packet(pid, samples[i + 2 * pos - 2], s1, s2, accel_byte=pos))
        i += 201
    return packets


def even_walk(rng, n):
    steps = 2 * rng.integers(-20000, 20000, size=(n, 4))  # even deltas survive the sign-in-bit-0 exactly
    return np.cumsum(steps, axis=0) + 1000


@pytest.mark.parametrize("bits", [18, 19])
def test_golden_v2_stream(bits):
    rng = np.random.default_rng(bits)
    samples = even_walk(rng, 201 * 3)
    dec = GanglionDecoder(2)
    idx, rows = collect(feed_all(dec, v2_stream(samples, bits)))
    assert idx.tolist() == list(range(603))
    np.testing.assert_array_equal(rows, samples)


def test_v2_loss_breaks_delta_chain_until_raw_packet():
    rng = np.random.default_rng(3)
    samples = even_walk(rng, 201 * 3)
    packets = v2_stream(samples)
    del packets[101 + 50]  # cycle 1, position 50: its samples 201+99, 201+100
    dec = GanglionDecoder(2)
    items = feed_all(dec, packets)
    idx, rows = collect(items)
    # Samples 300..401 (the lost pair and every delta after it in cycle 1) cannot be rebuilt.
    expected_idx = [i for i in range(603) if not 300 <= i <= 401]
    assert idx.tolist() == expected_idx
    np.testing.assert_array_equal(rows, samples[expected_idx])
    assert gaps(items) == [("eeg", 300, 102)]
    assert dec.stats.lost_packets == 1 and dec.stats.lost_samples == 102


def test_v3_loss_every_50th_packet_is_two_percent():
    rng = np.random.default_rng(4)
    samples = rng.integers(-(2**23), 2**23, size=(10000, 4))
    packets = [v3_packet(100 + k % 100, samples[2 * k], samples[2 * k + 1]) for k in range(5000)]
    kept = [k for k in range(5000) if k % 50 != 25]
    dec = GanglionDecoder(3)
    items = feed_all(dec, [packets[k] for k in kept])
    idx, _ = collect(items)
    assert idx.tolist() == [s for k in kept for s in (2 * k, 2 * k + 1)]
    assert gaps(items)[:2] == [("eeg", 50, 2), ("eeg", 150, 2)]
    assert dec.stats.lost_samples == 200 and f"{100 * dec.stats.lost_samples / 10000:.2f}" == "2.00"


def test_accelerometer_axes_from_18_bit_packets():
    rng = np.random.default_rng(5)
    samples = rng.integers(-(2**23), 2**23, size=(400, 4))
    axis_value = {1: -5, 2: 7, 3: 127}  # byte 19 at ids ending in 1, 2, 3 -> x, y, z
    packets = [v3_packet(k % 100, samples[2 * k], samples[2 * k + 1], axis_value.get(k % 10, 99)) for k in range(200)]
    dec = GanglionDecoder(3, accel=True)
    idx, rows = collect(feed_all(dec, packets), "acc")
    assert idx.tolist() == list(range(20))  # one x,y,z sample per ten packets
    assert (rows == [-5, 7, 127]).all()
    info = GanglionProfile(accel=True).streams()[1]
    assert info.to_physical(rows[:1])[0, 0] == pytest.approx(-5 * 0.016)


@pytest.mark.parametrize("firmware", [2, 3])
def test_firmware_detected_from_data_when_revision_unreadable(firmware):
    rng = np.random.default_rng(6)
    samples = even_walk(rng, 402)
    if firmware == 2:
        packets = v2_stream(samples)
    else:
        packets = [v3_packet(k % 100, samples[2 * k], samples[2 * k + 1]) for k in range(201)]
    dec = GanglionDecoder(None)
    _, rows = collect(feed_all(dec, packets))
    assert dec.firmware == firmware
    expected = samples[: len(rows)] if firmware == 2 else samples[: len(rows)] & ~0x7F
    np.testing.assert_array_equal(rows, expected)


def test_non_data_ids_skipped_and_bad_ids_reported():
    dec = GanglionDecoder(3)
    items = feed_all(dec, [bytes([201]) + b"1234Z", bytes([206]) + b"hello", bytes([207]), bytes([250]) + bytes(19)])
    assert dec.stats.bad_packets == 1
    assert [e.kind for e in items] == [EventKind.ERROR]


def test_units_streams_and_revision():
    (eeg,) = GanglionProfile().streams()
    assert eeg.rate_hz == 200 and not eeg.spectral_ok and "Nyquist" in eeg.note and "100 Hz" in eeg.note
    assert eeg.gains()[0] == pytest.approx(0.001869, rel=1e-3)
    assert eeg.to_physical(np.array([[8388607, 0, 0, 0]]))[0, 0] == pytest.approx(1.2e6 / (1.5 * 51))
    assert SCALE_UV == pytest.approx(1.2e6 / 8388607 / 76.5)
    assert firmware_major(b"3.0.2") == 3 and firmware_major("2.0.1") == 2 and firmware_major(b"\xff") is None
    assert GanglionProfile().advertises("Ganglion-1a2b", [])
    assert GanglionProfile().advertises(None, ["0000FE84-0000-1000-8000-00805F9B34FB"])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=24), max_size=60), st.sampled_from([None, 2, 3]), st.booleans())
def test_garbage_never_raises(packets, firmware, accel):
    dec = GanglionDecoder(firmware, accel)
    items = []
    for p in packets:
        items += dec.feed("x", p, 0.0)
    assert sum(getattr(e, "kind", None) == EventKind.ERROR for e in items) <= 1
    for f in (x for x in items if isinstance(x, Frame)):
        assert f.counts.shape[1] == (4 if f.stream_id == "eeg" else 3)


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), firmware=st.sampled_from([2, 3]),
       damage=st.lists(st.tuples(st.integers(1, 199), st.integers(0, 19)), max_size=8))
def test_truncated_packets_never_raise_and_good_data_resumes(seed, firmware, damage):
    """Valid streams with packets truncated at random: never raises, indices strictly increase, and the
    last cycle (untouched) decodes exactly. The first packet stays whole: it fixes index 0."""
    rng = np.random.default_rng(seed)
    samples = even_walk(rng, 201 * 3)
    if firmware == 2:
        packets = v2_stream(samples)
    else:
        packets = [v3_packet(100 + k % 100, samples[2 * k], samples[2 * k + 1]) for k in range(301)]
    for k, length in damage:
        packets[k] = packets[k][:length]
    dec = GanglionDecoder(firmware)
    items = feed_all(dec, packets)
    idx, rows = collect(items)
    assert np.all(np.diff(idx) > 0)
    last = idx >= 420
    truth = samples if firmware == 2 else samples & ~0x3F
    np.testing.assert_array_equal(rows[last], truth[idx[last]])
    assert idx[-1] == (602 if firmware == 2 else 601)
