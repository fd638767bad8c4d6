"""A virtual mbientlab MetaMotion: BMI160 accelerometer and gyroscope driven by raw MetaWear commands."""

from __future__ import annotations

import asyncio
import struct
from typing import Iterator

from sensors.ble import metamotion as proto
from sensors.virtual.peripheral import Characteristic, CharacteristicValue, Service
from sensors.virtual.streaming import StreamingPeripheral

P = Characteristic.Properties


def imu_sample(module: int, k: int) -> tuple[int, int, int]:
    """The k-th x, y, z int16 sample of the accelerometer (0x03) or gyroscope (0x13): ramps of period 4000."""
    k %= 4000
    if module == proto.ACC:
        return (k, -k, 2048)
    return (3 * k, 100, -7 * k)


class VirtualMetaMotion(StreamingPeripheral):
    """Streams `n_packets` data messages per sensor once both are powered, plain or packed as subscribed."""

    def __init__(self, name: str = "MetaWear", *, n_packets: int = 300, drop_every: int | None = None):
        super().__init__(name, (proto.SERVICE_UUID,), n_packets=n_packets, drop_every=drop_every)
        self.subscribed_register: dict[int, int] = {}  # module -> data register the host subscribed to
        self.powered: set[int] = set()
        self.config: dict[int, bytes] = {}

    def build_services(self) -> list[Service]:
        self.command = Characteristic(
            proto.COMMAND_UUID,
            P.WRITE | P.WRITE_WITHOUT_RESPONSE,
            Characteristic.WRITEABLE,
            CharacteristicValue(write=self._on_write),
        )
        self.data = Characteristic(proto.NOTIFY_UUID, P.NOTIFY, Characteristic.READABLE, b"")
        return [Service(proto.SERVICE_UUID, [self.command, self.data])]

    def _on_write(self, connection, value: bytes) -> None:
        msg = bytes(value)
        self.writes.append(msg)
        if len(msg) < 3 or msg[0] not in (proto.ACC, proto.GYRO):
            return
        module, register = msg[0], msg[1]
        if register == proto.CONFIG:
            self.config[module] = msg[2:]
        elif register in (proto.DATA_REGISTER[module], proto.PACKED_REGISTER[module]) and msg[2] == 1:
            self.subscribed_register[module] = register
        elif register == proto.POWER:
            (self.powered.add if msg[2] else self.powered.discard)(module)
            if self.powered == {proto.ACC, proto.GYRO}:
                self.start_streaming(self._stream())
            elif not self.powered:
                self.stop_streaming()

    async def _stream(self) -> None:
        for k, message in enumerate(messages(self.n_packets, dict(self.subscribed_register), self.dropped)):
            if await self.notify(self.data, message):
                self.sent += 1
            if k % 32 == 31:
                await asyncio.sleep(0)


def messages(n_packets: int, registers: dict[int, int], dropped=lambda k: False) -> Iterator[bytes]:
    """`n_packets` data messages per subscribed sensor; `registers` maps module -> subscribed data register."""
    counters = {module: 0 for module in registers}
    for k in range(n_packets):
        for module, register in registers.items():
            per = 3 if register == proto.PACKED_REGISTER[module] else 1
            values = [v for i in range(per) for v in imu_sample(module, counters[module] + i)]
            counters[module] += per
            if not dropped(k):
                yield bytes([module, register]) + struct.pack(f"<{3 * per}h", *values)
