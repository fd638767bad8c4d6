"""BleSource over bleak's public API against the virtual Medius peripheral on the Bumble link.

The 60 s runs are 60 s of *sample time*; the peripheral's clock runs faster than real time (``speed``).
A channel carries the sample index (``ramp_generator``), so every frame's content checks its index.
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from bleak.backends.device import BLEDevice
from hypothesis import given, settings
from hypothesis import strategies as st

from sensors.ble import medius as mp
from sensors.ble.device import BleSource, coalesce, scan
from sensors.stream import Event, EventKind, Frame, Source
from sensors.virtual import VirtualRadio
from sensors.virtual.medius_peripheral import MediusPeripheral, ramp_generator


def run(coro, timeout_s=120):
    return asyncio.run(asyncio.wait_for(coro, timeout_s))


def _channels(n):
    return [mp.MediusChannel(f"ch{i}", gain=0.000806, offset=0) for i in range(n)]


async def _setup(n_channels, fs_hz, mtu, speed, **source_kwargs):
    radio = await VirtualRadio.create()
    peripheral = await radio.add(MediusPeripheral(_channels(n_channels), ramp_generator(n_channels, ramp_channel=1),
                                                  fs_hz=fs_hz, speed=speed, max_mtu=mtu))
    results = await scan([mp.MediusProfile()], 0.2, backend=radio.scanner_backend)
    (result,) = [r for r in results if r.profiles]
    source = BleSource(result.device, mp.MediusProfile(), scanner_backend=radio.scanner_backend,
                       client_backend=radio.client_backend, **source_kwargs)
    return radio, peripheral, result, source


def _check_ramp(frame: Frame) -> None:
    ramp = frame.counts[:, 1].view(np.uint16).astype(np.int64)
    np.testing.assert_array_equal(ramp, np.arange(frame.first_index, frame.end_index) % 65536)


@pytest.mark.parametrize("n_channels, fs_hz, mtu, n_per_packet", [(4, 2000, 247, 30), (2, 1000, 23, 4)])
def test_sixty_seconds_without_loss_and_exact_index_continuity(n_channels, fs_hz, mtu, n_per_packet):
    async def main():
        radio, peripheral, result, source = await _setup(n_channels, fs_hz, mtu, speed=None)
        assert isinstance(source, Source)
        assert result.name == "Medius-EMG" and result.rssi_dbm == -60 and result.profiles == ("medius-semg",)
        await source.start()
        assert source.client.mtu_size == mtu
        (stream,) = source.streams
        assert stream.rate_hz == fs_hz and stream.n_channels == n_channels
        total = 60 * fs_hz
        next_index, kinds = 0, []
        async for item in source.items():
            if isinstance(item, Frame):
                assert item.first_index == next_index
                assert item.counts.shape[1] == n_channels
                _check_ramp(item)
                next_index = item.end_index
                if next_index >= total:
                    break
            else:
                kinds.append(item.kind)
                assert item.kind not in (EventKind.GAP, EventKind.ERROR), item
        assert kinds[:2] == [EventKind.CONNECTED, EventKind.STREAMS]
        assert EventKind.BATTERY in kinds  # status notifications ~1/s of sample time
        assert source.decoder.stats.lost_packets == 0 and source.decoder.stats.bad_packets == 0
        assert source.decoder.info.samples_per_packet == n_per_packet
        await source.stop()
        assert not peripheral.streaming  # STOP reached the device
        tail = [item async for item in source.items()]
        assert [i.kind for i in tail if isinstance(i, Event)][-2:] == [EventKind.DISCONNECTED, EventKind.END]
        assert peripheral.samples_unsent == 0
        await radio.close()

    run(main())


def test_forced_disconnect_reconnects_and_records_the_exact_gap():
    async def main():
        radio, peripheral, _, source = await _setup(4, 2000, 247, speed=5.0, backoff_s=0.05)
        await source.start()
        next_index, events, gap = 0, [], None
        cut_at = 5 * 2000
        cut_task = None
        async for item in source.items():
            if isinstance(item, Frame):
                assert item.first_index == next_index, (item.first_index, next_index)
                _check_ramp(item)
                next_index = item.end_index
                if cut_task is None and next_index >= cut_at:
                    cut_task = asyncio.get_running_loop().create_task(peripheral.force_disconnect())
                if gap is not None and next_index >= gap.payload["start_index"] + gap.payload["n_missing"] + 4000:
                    break
            else:
                events.append(item)
                if item.kind is EventKind.GAP:
                    assert gap is None, "one link loss, one gap"
                    gap = item
                    assert item.payload["start_index"] == next_index
                    next_index += item.payload["n_missing"]
        await cut_task
        kinds = [e.kind for e in events]
        assert kinds.index(EventKind.RECONNECTING) < kinds.index(EventKind.GAP)
        assert kinds.count(EventKind.CONNECTED) == 2
        # the gap is exactly what the peripheral produced while nobody was listening
        assert peripheral.samples_unsent > 0
        assert gap.payload["n_missing"] == peripheral.samples_unsent
        assert gap.payload["n_missing"] % 30 == 0
        assert source.decoder.stats.lost_samples == peripheral.samples_unsent
        assert source.reconnects == 1 and peripheral.connections == 2
        await source.stop()
        await radio.close()

    run(main())


def test_gives_up_after_the_reconnect_limit_with_disconnected_then_end():
    async def main():
        radio, peripheral, _, source = await _setup(2, 1000, 247, speed=5.0, backoff_s=0.01, max_backoff_s=0.02,
                                                    reconnect_attempts=3, scan_timeout_s=0.15)
        await source.start()
        kinds = []
        async for item in source.items():
            if isinstance(item, Frame) and not kinds.count(EventKind.RECONNECTING) and item.end_index > 500:
                await peripheral.set_advertising(False)  # out of range for good
                await peripheral.force_disconnect()
            elif isinstance(item, Event):
                kinds.append(item.kind)
        assert kinds.count(EventKind.RECONNECTING) == 3
        assert kinds[-2:] == [EventKind.DISCONNECTED, EventKind.END]
        await source.stop()  # stopping an ended source is harmless
        await radio.close()

    run(main())


def test_bleak_connect_requires_a_device_not_an_address():
    with pytest.raises(TypeError, match="BLEDevice"):
        BleSource("C0:00:00:00:00:01", mp.MediusProfile())


def test_coalesce_merges_only_contiguous_frames_of_one_stream():
    a = Frame("emg", 0, np.zeros((2, 1), np.int16))
    b = Frame("emg", 2, np.ones((3, 1), np.int16))
    c = Frame("emg", 9, np.ones((1, 1), np.int16))
    gap = Event(EventKind.GAP)
    out = coalesce([a, b, gap, c, Frame("imu", 10, np.zeros((1, 1), np.int16))])
    assert [type(i).__name__ for i in out] == ["Frame", "Event", "Frame", "Frame"]
    assert out[0].first_index == 0 and out[0].counts.ravel().tolist() == [0, 0, 1, 1, 1]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.binary(max_size=30), min_size=1, max_size=20))
def test_garbage_notifications_become_error_events_never_exceptions(garbage):
    async def main():
        source = BleSource(BLEDevice("C0:00:00:00:00:09", "x", None), mp.MediusProfile())
        source.decoder = mp.MediusDecoder(mp.MediusInfo(fs_hz=1000, samples_per_packet=2, channels=_channels(2)))
        good = mp.encode_data_packet(0, 0, np.array([[1, 2], [3, 4]]))
        for raw in garbage:
            source._on_notify(mp.DATA_UUID, bytearray(raw))  # the callback the profile hands to bleak
        source._on_notify(mp.DATA_UUID, bytearray(good))
        await source.stop()
        items = [i async for i in source.items()]
        frames = [i for i in items if isinstance(i, Frame)]
        errors = [i for i in items if isinstance(i, Event) and i.kind is EventKind.ERROR]
        n_bad = sum(1 for g in garbage if len(g) != 12 or g[3] != 2)
        assert len(errors) == n_bad == source.decoder.stats.bad_packets
        assert frames[-1].counts[-2:].tolist() == [[1, 2], [3, 4]]
        assert items[-1].kind is EventKind.END

    run(main())


def test_control_commands_and_replies_over_bleak():
    from bleak import BleakClient

    async def main():
        radio, peripheral, result, _ = await _setup(2, 1000, 247, speed=None)
        client = BleakClient(result.device, backend=radio.client_backend)
        await client.connect()
        replies: asyncio.Queue[bytes] = asyncio.Queue()
        await client.start_notify(mp.CONTROL_UUID, lambda _c, d: replies.put_nowait(bytes(d)))

        async def send(raw: bytes) -> bytes:
            await client.write_gatt_char(mp.CONTROL_UUID, raw, response=True)
            return await asyncio.wait_for(replies.get(), 5)

        assert await send(mp.command(mp.OP_SET_RATE, 500)) == bytes([0xF0, 0x03, 0])
        info = mp.MediusInfo.from_json(bytes(await client.read_gatt_char(mp.INFO_UUID)))
        assert info.fs_hz == 500 and info.samples_per_packet == 60
        assert await send(b"\x03\x00\x00") == bytes([0xF0, 0x03, 2])  # 0 Hz: invalid parameter
        assert await send(mp.command(mp.OP_IDENTIFY)) == bytes([0xF0, 0x04, 0])
        assert peripheral.identify_count == 1
        assert await send(b"\x7f") == bytes([0xF0, 0x7F, 1])  # unknown opcode
        assert await send(mp.command(mp.OP_STOP)) == bytes([0xF0, 0x02, 3])  # not streaming
        assert await send(mp.command(mp.OP_START)) == bytes([0xF0, 0x01, 0])
        assert mp.decode_status(bytes(await client.read_gatt_char(mp.STATUS_UUID)))["state"] == 1
        assert await send(mp.command(mp.OP_SET_RATE, 1000)) == bytes([0xF0, 0x03, 3])  # only while stopped
        assert await send(mp.command(mp.OP_START)) == bytes([0xF0, 0x01, 3])
        assert await send(mp.command(mp.OP_STOP)) == bytes([0xF0, 0x02, 0])
        assert not peripheral.streaming
        assert await client.read_gatt_char(mp.BATTERY_LEVEL_UUID) == bytes([66])  # 3900 mV on a LiPo scale
        await client.disconnect()
        await radio.close()

    run(main())


def test_packets_lost_on_the_air_become_exact_gaps_and_clipping_is_flagged():
    async def main():
        radio = await VirtualRadio.create()

        def generate(first, n):  # ramp on channel 1, channel 0 at the rail every 1000th sample
            out = ramp_generator(2, ramp_channel=1)(first, n)
            idx = np.arange(first, first + n)
            out[idx % 1000 == 0, 0] = 32767
            return out

        peripheral = await radio.add(MediusPeripheral(_channels(2), generate, fs_hz=1000, speed=None,
                                                      packet_loss=0.05, seed=11))
        (result,) = [r for r in await scan([mp.MediusProfile()], 0.2, backend=radio.scanner_backend) if r.profiles]
        source = BleSource(result.device, mp.MediusProfile(), scanner_backend=radio.scanner_backend,
                           client_backend=radio.client_backend)
        await source.start()
        next_index, gap_total, total = 0, 0, 20 * 1000
        async for item in source.items():
            if isinstance(item, Frame):
                assert item.first_index == next_index
                _check_ramp(item)
                next_index = item.end_index
                if next_index >= total:
                    break
            elif item.kind is EventKind.GAP:
                assert item.payload["start_index"] == next_index
                next_index += item.payload["n_missing"]
                gap_total += item.payload["n_missing"]
        await source.stop()
        n_packets = next_index // 60
        lost = {p for p in peripheral.unsent_packets if p < n_packets}
        # every gap is exactly the packets the board failed to send, and the loss rate is the parameter's
        assert gap_total == 60 * len(lost) > 0
        assert abs(len(lost) / n_packets - 0.05) < 4 * np.sqrt(0.05 * 0.95 / n_packets)
        # the decoder has seen packets [0, seen) (it decoded past where we stopped reading)
        stats = source.decoder.stats
        seen = stats.packets + stats.lost_packets
        lost_seen = [p for p in peripheral.unsent_packets if p < seen]
        assert stats.lost_packets == len(lost_seen)
        received = np.setdiff1d(np.arange(seen), lost_seen)
        with_rail = np.unique(np.arange(0, seen * 60, 1000) // 60)
        assert source.decoder.clipped_packets == np.intersect1d(received, with_rail).size > 0
        await radio.close()

    run(main())


def test_device_reset_during_outage_restarts_the_run_with_an_estimated_gap():
    async def main():
        radio, peripheral, _, source = await _setup(2, 1000, 247, speed=5.0, backoff_s=0.05)
        await source.start()
        next_index, gap, after = 0, None, []
        async for item in source.items():
            if isinstance(item, Frame):
                assert item.first_index == next_index
                next_index = item.end_index
                if gap is None and next_index >= 3000 and peripheral.streaming and peripheral.connections == 1:
                    await peripheral.force_disconnect()
                    peripheral.stop_streaming()  # the board reset: its counter will start again at 0
                if gap is not None:
                    after.append(item)
                    if len(after) >= 3:
                        break
            elif item.kind is EventKind.GAP:
                gap = item
                assert item.payload["start_index"] == next_index
                next_index += item.payload["n_missing"]
        assert gap.payload["exact"] is False and gap.payload["n_missing"] > 0
        assert source.profile.resumed is False  # START was sent again
        # the new run's samples sit after the estimated gap; its ramp restarted at the device's index 0
        first = after[0]
        offset = gap.payload["start_index"] + gap.payload["n_missing"]
        assert first.first_index == offset
        np.testing.assert_array_equal(first.counts[:, 1].view(np.uint16), np.arange(first.n_samples))
        await source.stop()
        await radio.close()

    run(main())
