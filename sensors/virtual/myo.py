"""A virtual Thalmic Myo: EMG on EmgData0..3 in rotation and IMU at half the EMG notification rate (50 Hz vs 100/s)."""

from __future__ import annotations

import asyncio
import struct
from typing import Iterator

from sensors.ble import myo as proto
from sensors.virtual.peripheral import Characteristic, CharacteristicValue, Service
from sensors.virtual.streaming import StreamingPeripheral

P = Characteristic.Properties


def emg_value(sample: int, channel: int) -> int:
    """int8 EMG the virtual armband sends: a ramp per channel, wrapping at 8 bits."""
    return (sample * (channel + 1)) % 256 - 128


def imu_values(k: int) -> list[int]:
    """The k-th IMU record (10 × int16): quaternion w = 16384 (1.0), then ramps."""
    return [16384, k, -k, 0, 2048, -2048, k % 1000, 16 * k % 30000, -16, 0]


class VirtualMyo(StreamingPeripheral):
    """Streams `n_packets` EMG notifications (and one IMU record per two) once raw EMG mode is set."""

    def __init__(self, name: str = "Myo", *, n_packets: int = 400, drop_every: int | None = None):
        super().__init__(name, (proto.CONTROL_SERVICE_UUID,), n_packets=n_packets, drop_every=drop_every)
        self.never_sleep = False

    def build_services(self) -> list[Service]:
        self.command = Characteristic(
            proto.COMMAND_UUID, P.WRITE, Characteristic.WRITEABLE, CharacteristicValue(write=self._on_write)
        )
        self.imu = Characteristic(proto.IMU_UUID, P.NOTIFY, Characteristic.READABLE, b"")
        self.emg = [Characteristic(u, P.NOTIFY, Characteristic.READABLE, b"") for u in proto.EMG_UUIDS]
        return [
            Service(proto.CONTROL_SERVICE_UUID, [self.command]),
            Service(proto.myo_uuid(0x0002), [self.imu]),
            Service(proto.myo_uuid(0x0005), self.emg),
        ]

    def _on_write(self, connection, value: bytes) -> None:
        self.writes.append(bytes(value))
        if bytes(value) == proto.NEVER_SLEEP:
            self.never_sleep = True
        elif len(value) == 5 and value[0] == 0x01 and value[1] == 0x03:
            if value[2] == proto.EMG_RAW:
                self.start_streaming(self._stream())
            elif value[2] == 0:
                self.stop_streaming()

    async def _stream(self) -> None:
        chars = {**dict(zip(proto.EMG_UUIDS, self.emg)), proto.IMU_UUID: self.imu}
        for k, (uuid, data) in enumerate(notifications(self.n_packets, self.dropped)):
            if await self.notify(chars[uuid], data):
                self.sent += 1
            if k % 32 == 31:
                await asyncio.sleep(0)


def notifications(n_emg: int, dropped=lambda k: False) -> Iterator[tuple[str, bytes]]:
    """``(characteristic uuid, bytes)``: `n_emg` EMG notifications in rotation, an IMU record after every second."""
    for k in range(n_emg):
        if not dropped(k):
            samples = [emg_value(s, c) for s in (2 * k, 2 * k + 1) for c in range(8)]
            yield proto.EMG_UUIDS[k % 4], struct.pack("<16b", *samples)
        if k % 2 == 1:
            yield proto.IMU_UUID, struct.pack("<10h", *imu_values(k // 2))
