"""Medius profile codec: golden bytes from sensors/ble/MEDIUS_PROFILE.md, Info validation, fuzzed decoding."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sensors.ble import medius as mp
from sensors.stream import EventKind, Frame


def _info(n_channels=2, n=2, fs_hz=1000):
    chans = [mp.MediusChannel(f"c{i}", gain=0.5, offset=10) for i in range(n_channels)]
    return mp.MediusInfo(fs_hz=fs_hz, samples_per_packet=n, channels=chans)


def test_uuids_are_the_ones_fixed_in_the_spec():
    spec = (mp.__file__.rsplit("/", 1)[0] + "/MEDIUS_PROFILE.md")
    text = open(spec, encoding="utf-8").read()
    for uuid in (mp.SERVICE_UUID, mp.DATA_UUID, mp.INFO_UUID, mp.CONTROL_UUID, mp.STATUS_UUID):
        assert f"`{uuid}`" in text
    assert len({mp.SERVICE_UUID, mp.DATA_UUID, mp.INFO_UUID, mp.CONTROL_UUID, mp.STATUS_UUID}) == 5


def test_golden_data_packet():
    raw = mp.encode_data_packet(0x0102, 0, np.array([[1, -1], [0x1234, -32768]]))
    assert raw == bytes.fromhex("02 01 00 02 01 00 FF FF 34 12 00 80")
    items = mp.MediusDecoder(_info()).feed(mp.DATA_UUID, raw, 1.5)
    assert len(items) == 1 and isinstance(items[0], Frame)
    frame = items[0]
    assert frame.first_index == 0x0102 * 2 and frame.arrival_s == 1.5
    assert frame.counts.dtype == np.int16
    assert frame.counts.tolist() == [[1, -1], [0x1234, -32768]]


def test_golden_commands_and_status():
    assert mp.command(mp.OP_START) == b"\x01"
    assert mp.command(mp.OP_STOP) == b"\x02"
    assert mp.command(mp.OP_SET_RATE, 1000) == bytes.fromhex("03 E8 03")
    assert mp.command(mp.OP_IDENTIFY) == b"\x04"
    assert mp.encode_status(3700, 5, 7, 1) == bytes.fromhex("74 0E 05 00 00 00 07 00 00 00 01")
    assert mp.decode_status(bytes.fromhex("74 0E 05 00 00 00 07 00 00 00 01")) == {
        "battery_mv": 3700, "overrun_samples": 5, "clipped_samples": 7, "state": 1}
    with pytest.raises(ValueError, match="SET_RATE"):
        mp.command(mp.OP_SET_RATE, 0)


@pytest.mark.parametrize("mtu, channels, n", [(23, 1, 8), (23, 2, 4), (23, 4, 2), (247, 1, 120), (247, 2, 60),
                                              (247, 4, 30), (247, 16, 7), (23, 9, 0), (517, 1, 255)])
def test_samples_per_packet_table_from_the_spec(mtu, channels, n):
    assert mp.samples_per_packet(mtu, channels) == n


def test_info_round_trip_and_stream_description():
    info = mp.MediusInfo(
        fs_hz=2000, samples_per_packet=30, adc_bits=12,
        channels=[mp.MediusChannel("L_GMED", "emg", 0.000806, 2048, "V_adc", "gluteus_medius", "left"),
                  mp.MediusChannel("ENV", "env", 0.000806, 0, "V_adc")])
    raw = info.to_json()
    d = json.loads(raw)
    assert d["profile"] == "medius-semg" and d["version"] == 1 and d["fs_hz"] == 2000
    assert d["gain"] == 0.000806 and d["unit"] == "V_adc"  # shared fields go to the top
    assert d["channels"] == [{"label": "L_GMED", "kind": "emg", "offset": 2048, "at": "L.gmed"},
                             {"label": "ENV", "kind": "env", "offset": 0}]
    assert mp.MediusInfo.from_json(raw) == info
    stream = info.stream_info()
    assert stream.rate_hz == 2000.0 and stream.dtype == "int16" and stream.n_channels == 2
    assert stream.channels[0].muscle == "gluteus_medius" and stream.channels[0].side == "left"
    assert stream.channels[1].kind.value == "env"
    # value = (count - offset) * gain
    assert stream.to_physical(np.array([[2048 + 1000, 0]]))[0, 0] == pytest.approx(0.806)


def test_spec_info_example_parses_with_top_level_defaults():
    text = open(mp.__file__.rsplit("/", 1)[0] + "/MEDIUS_PROFILE.md", encoding="utf-8").read()
    example = text.split("```json", 1)[1].split("```", 1)[0]
    info = mp.MediusInfo.from_json(example.encode())
    assert [c.label for c in info.channels] == ["L_GMED", "R_GMED", "L_TFL", "ENV"]
    assert info.channels[2].muscle == "tfl" and info.channels[2].side == "left" and info.channels[2].gain == 0.5
    assert info.channels[3].kind == "env" and info.channels[3].unit == "V_adc" and info.channels[3].gain == 0.000806


def test_eight_hinted_or_sixteen_plain_channels_fit_in_512_bytes():
    sides, muscles = ("left", "right"), ("gluteus_medius", "tfl", "gluteus_maximus", "gluteus_medius")
    hinted = [mp.MediusChannel(f"{s[0].upper()}_{m[:4].upper()}{k}", gain=0.5, unit="uV", muscle=m, side=s)
              for k, m in enumerate(muscles) for s in sides]
    assert len(mp.MediusInfo(2000, 7, tuple(hinted)).to_json()) <= 512
    plain = [mp.MediusChannel(f"EMG{k}", gain=0.5, unit="uV") for k in range(16)]
    assert len(mp.MediusInfo(2000, 7, tuple(plain)).to_json()) <= 512


def test_protocols_md_info_example_parses():
    example = ('{"profile":"medius-semg","version":1,"fw":"1.0.0","fs_hz":1000,"samples_per_packet":4,"adc_bits":12,'
               '"channels":[{"id":0,"label":"RAW","kind":"raw","gain":0.000806,"offset":2048,"unit":"V_adc"},'
               '{"id":1,"label":"ENV","kind":"env","gain":0.000806,"offset":0,"unit":"V_adc"}]}')
    info = mp.MediusInfo.from_json(example.encode())
    assert info.fs_hz == 1000 and info.samples_per_packet == 4 and info.n_channels == 2
    assert info.stream_info().channels[0].offset == 2048


_HEAD = b'{"profile":"medius-semg","version":1,"fs_hz":10,"samples_per_packet":4,'


@pytest.mark.parametrize("raw, match", [
    (b"\xff\xfe", "not UTF-8 JSON"),
    (b"[]", "profile"),
    (b'{"profile":"medius-semg","version":2}', "version"),
    (b'{"profile":"medius-semg","version":1,"fs_hz":1000,"samples_per_packet":4}', "missing"),
    (_HEAD.replace(b'"fs_hz":10', b'"fs_hz":0') + b'"channels":[{"label":"a","gain":1}]}', "fs_hz"),
    (_HEAD + b'"channels":[{"label":"a","gain":1,"at":"L.biceps"}]}', "placement"),
    (_HEAD + b'"channels":[{"label":"a"}]}', "missing"),
    (_HEAD + b'"channels":[{"id":3,"label":"a","gain":1}]}', "positions"),
    (_HEAD + b'"channels":[]}', "no channels"),
    (b" " * 513, "512"),
])
def test_bad_info_is_one_clear_error(raw, match):
    with pytest.raises(mp.MediusProfileError, match=match):
        mp.MediusInfo.from_json(raw)


def test_info_larger_than_512_bytes_is_refused_when_encoding():
    info = mp.MediusInfo(fs_hz=1000, samples_per_packet=1,
                         channels=[mp.MediusChannel("x" * 60, gain=1.0) for _ in range(10)])
    with pytest.raises(mp.MediusProfileError, match="512"):
        info.to_json()


def test_sequence_wrap_and_gap_are_exact():
    dec = mp.MediusDecoder(_info(n_channels=1, n=3))
    seqs = [65534, 65535, 0, 3]  # wraps, then loses packets 1 and 2
    items = []
    for s in seqs:
        items += dec.feed(mp.DATA_UUID, mp.encode_data_packet(s, 0, np.full((3, 1), s % 100)), 0.0)
    frames = [i for i in items if isinstance(i, Frame)]
    gaps = [i for i in items if not isinstance(i, Frame)]
    assert [f.first_index for f in frames] == [65534 * 3, 65535 * 3, 65536 * 3, 65539 * 3]
    assert len(gaps) == 1 and gaps[0].kind is EventKind.GAP
    assert gaps[0].payload == {"stream_id": "emg", "start_index": 65537 * 3, "n_missing": 6}
    assert dec.stats.lost_packets == 2 and dec.stats.lost_samples == 6 and dec.stats.packets == 4


def test_status_and_battery_become_battery_events_and_flags_are_counted():
    dec = mp.MediusDecoder(_info())
    (ev,) = dec.feed(mp.STATUS_UUID, mp.encode_status(3700, 5, 7, 1), 0.0)
    assert ev.kind is EventKind.BATTERY and ev.payload["battery_mv"] == 3700
    (ev,) = dec.feed(mp.BATTERY_LEVEL_UUID, b"\x42", 0.0)
    assert ev.kind is EventKind.BATTERY and ev.payload == {"percent": 66}
    dec.feed(mp.DATA_UUID, mp.encode_data_packet(0, mp.FLAG_OVERRUN | mp.FLAG_CLIPPED, np.zeros((2, 2))), 0.0)
    assert dec.overrun_packets == 1 and dec.clipped_packets == 1


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([mp.DATA_UUID, mp.STATUS_UUID, mp.BATTERY_LEVEL_UUID, mp.CONTROL_UUID]),
                          st.binary(max_size=40)), max_size=30))
def test_decoder_never_raises_on_garbage(packets):
    dec = mp.MediusDecoder(_info())
    bad = 0
    for uuid, data in packets:
        items = dec.feed(uuid, data, 0.0)
        if uuid == mp.DATA_UUID and (len(data) != 12 or data[3] != 2):
            bad += 1
            assert [i.kind for i in items] == [EventKind.ERROR]
    assert dec.stats.bad_packets >= bad


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 65535), st.integers(0, 11))
def test_truncated_packets_are_counted_not_decoded(seq, cut):
    dec = mp.MediusDecoder(_info())
    good = mp.encode_data_packet(seq, 0, np.arange(4).reshape(2, 2))
    assert [i.kind for i in dec.feed(mp.DATA_UUID, good[:cut], 0.0)] == [EventKind.ERROR]
    assert dec.stats.bad_packets == 1 and dec.stats.packets == 0
    (frame,) = dec.feed(mp.DATA_UUID, good, 0.0)  # a good packet after garbage still decodes
    assert frame.counts.tolist() == [[0, 1], [2, 3]]
