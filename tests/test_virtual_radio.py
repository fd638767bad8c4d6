"""The Bumble bleak backend, exercised only through bleak's public BleakScanner/BleakClient API."""

from __future__ import annotations

import asyncio
import struct

import pytest
from bleak import BleakClient, BleakScanner
from bleak.exc import BleakError

from sensors.virtual import VirtualPeripheral, VirtualRadio
from sensors.virtual.peripheral import Characteristic, CharacteristicValue, Service
from sensors.virtual.radio import parse_advertising_data

SVC = "3f1c0001-9a2b-4c5d-8e6f-0123456789ab"
DATA = "3f1c0002-9a2b-4c5d-8e6f-0123456789ab"
CTRL = "3f1c0003-9a2b-4c5d-8e6f-0123456789ab"
CCCD = "00002902-0000-1000-8000-00805f9b34fb"
P = Characteristic.Properties


class Echo(VirtualPeripheral):
    """Notifies on DATA; CTRL records writes and indicates ``[0xF0] + write`` back."""

    def __init__(self, name: str = "Echo-Sensor-With-A-Long-Name", **kwargs):
        super().__init__(name, [SVC], manufacturer_data={0x1234: b"\x01\x02"}, **kwargs)
        self.writes: list[bytes] = []

    def build_services(self):
        self.data = Characteristic(DATA, P.NOTIFY | P.READ, Characteristic.READABLE, b"hello")
        self.ctrl = Characteristic(
            CTRL,
            P.WRITE | P.WRITE_WITHOUT_RESPONSE | P.INDICATE,
            Characteristic.WRITEABLE,
            CharacteristicValue(write=self._on_write),
        )
        return [Service(SVC, [self.data, self.ctrl])]

    def _on_write(self, connection, value):
        self.writes.append(bytes(value))
        asyncio.get_running_loop().create_task(self.indicate(self.ctrl, b"\xf0" + bytes(value)))


async def _find(radio, **kwargs):
    async with BleakScanner(backend=radio.scanner_backend, **kwargs) as scanner:
        async for device, adv in scanner.advertisement_data():
            return device, adv


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, timeout=60))


def test_advertising_data_round_trip_through_the_ad_parser():
    from sensors.virtual.peripheral import advertising_data

    raw = advertising_data("Ab", [SVC, "180f"], {0x004C: b"\x09"})
    # flags, 16-bit list (0x180F LE), 128-bit list (UUID bytes reversed), manufacturer, complete name
    expected = (
        b"\x02\x01\x06"
        + b"\x03\x03\x0f\x18"
        + b"\x11\x07"
        + bytes.fromhex(SVC.replace("-", ""))[::-1]
        + b"\x04\xff\x4c\x00\x09"
        + b"\x03\x09Ab"
    )
    assert raw == expected
    name, uuids, manufacturer, service_data, tx = parse_advertising_data(raw + b"\x05\xff")  # truncated tail
    assert name == "Ab"
    assert uuids == ["0000180f-0000-1000-8000-00805f9b34fb", SVC]
    assert manufacturer == {0x004C: b"\x09"} and service_data == {} and tx is None


def test_scan_reports_name_uuids_rssi_and_filters_by_service():
    async def main():
        radio = await VirtualRadio.create(rssi_dbm=-47)
        await radio.add(VirtualPeripheralWithoutServices())
        echo = await radio.add(Echo())
        device, adv = await _find(radio, service_uuids=[SVC])
        assert device.address == echo.address
        assert device.name == adv.local_name == "Echo-Sensor-With-A-Long-Name"
        assert adv.service_uuids == [SVC]
        assert adv.manufacturer_data == {0x1234: b"\x01\x02"}
        assert adv.rssi == -47
        await radio.close()

    run(main())


class VirtualPeripheralWithoutServices(VirtualPeripheral):
    def __init__(self):
        super().__init__("Other")

    def build_services(self):
        return []


@pytest.mark.parametrize("peripheral_mtu, expected_mtu", [(247, 247), (23, 23)])
def test_connect_discover_read_write_notify_indicate(peripheral_mtu, expected_mtu):
    async def main():
        radio = await VirtualRadio.create(central_mtu=247)
        echo = await radio.add(Echo(max_mtu=peripheral_mtu))
        device, _ = await _find(radio)
        client = BleakClient(device, backend=radio.client_backend)
        await client.connect()
        assert client.is_connected
        assert client.mtu_size == expected_mtu
        data_char = client.services.get_characteristic(DATA)
        assert sorted(data_char.properties) == ["notify", "read"]
        assert [d.uuid for d in data_char.descriptors] == [CCCD]
        assert data_char.max_write_without_response_size == expected_mtu - 3
        ctrl_char = client.services.get_characteristic(CTRL)
        assert sorted(ctrl_char.properties) == ["indicate", "write", "write-without-response"]

        assert await client.read_gatt_char(DATA) == b"hello"

        notes: list[bytes] = []
        senders = set()
        await client.start_notify(DATA, lambda ch, d: (notes.append(bytes(d)), senders.add(ch.uuid)))
        assert await client.read_gatt_descriptor(data_char.descriptors[0]) == b"\x01\x00"  # notifications on
        indications: list[bytes] = []
        await client.start_notify(CTRL, lambda ch, d: indications.append(bytes(d)))
        await client.write_gatt_char(CTRL, b"\x01\x02", response=True)
        await client.write_gatt_char(CTRL, b"\x03", response=False)

        payload = expected_mtu - 3
        n = 2000
        for i in range(n):
            assert await echo.notify(echo.data, struct.pack("<H", i) + bytes([i & 0xFF]) * (payload - 2))
            if i % 64 == 0:
                await asyncio.sleep(0)
        while len(notes) < n or len(indications) < 2:
            await asyncio.sleep(0.005)
        assert [struct.unpack_from("<H", b)[0] for b in notes] == list(range(n))
        assert {len(b) for b in notes} == {payload}  # the full negotiated payload arrives, no truncation
        assert senders == {DATA}
        assert echo.writes == [b"\x01\x02", b"\x03"]
        assert sorted(indications) == [b"\xf0\x01\x02", b"\xf0\x03"]

        await client.stop_notify(DATA)
        assert not echo.is_subscribed(echo.data)
        assert not await echo.notify(echo.data, b"xx")
        await client.disconnect()
        assert not client.is_connected
        await radio.close()

    run(main())


def test_forced_disconnect_fires_callback_and_reconnect_works_clean_disconnect_does_not():
    async def main():
        radio = await VirtualRadio.create()
        echo = await radio.add(Echo())
        device, _ = await _find(radio)
        calls: list[BleakClient] = []
        client = BleakClient(device, disconnected_callback=calls.append, backend=radio.client_backend)
        await client.connect()
        await echo.force_disconnect()
        for _ in range(200):
            if calls:
                break
            await asyncio.sleep(0.005)
        assert calls == [client]
        assert not client.is_connected
        with pytest.raises(BleakError):
            await client.read_gatt_char(DATA)

        # the peripheral advertises again after the drop; a fresh scan finds it and the same client reconnects
        device2, _ = await _find(radio)
        assert device2.address == device.address
        await client.connect()
        assert client.is_connected and echo.connections == 2
        assert await client.read_gatt_char(DATA) == b"hello"
        await client.disconnect()
        await asyncio.sleep(0.05)
        assert calls == [client]  # a disconnect we asked for is not reported as unsolicited
        await radio.close()

    run(main())


def test_out_of_range_peripheral_fails_to_connect_with_bleak_error():
    async def main():
        radio = await VirtualRadio.create()
        echo = await radio.add(Echo())
        device, _ = await _find(radio)
        await echo.set_advertising(False)
        client = BleakClient(device, timeout=0.5, backend=radio.client_backend)
        with pytest.raises(BleakError, match="could not connect"):
            await client.connect()
        await echo.set_advertising(True)
        await client.connect()
        assert client.is_connected
        await client.disconnect()
        await radio.close()

    run(main())
