"""A virtual OpenBCI Ganglion speaking firmware 2.x (deltas) or 3.x (truncated MSBs), chosen by its revision."""

from __future__ import annotations

import asyncio
from typing import Iterator

from sensors.ble import ganglion as proto
from sensors.virtual.peripheral import Characteristic, CharacteristicValue, Service
from sensors.virtual.streaming import StreamingPeripheral

P = Characteristic.Properties
DEVICE_INFORMATION_UUID = "180A"
ACCEL_AXES = (-10, 20, 30)  # int8 x, y, z the virtual board reports


def ganglion_value(sample: int, channel: int) -> int:
    """24-bit count at `sample`: a sawtooth per channel, in steps of 256 so 3.x truncation and 2.x's
    one-bit sign loss leave it exact, with jumps small enough for an 18-bit delta."""
    return 256 * ((sample * (channel + 1)) % 200) - 25600


def _signed_to_field(value: int, bits: int) -> int:
    # Firmware: the sign bit (bit 31) overwrites bit 0, then only the low `bits` bits are sent.
    value = (value & ~1) | (1 if value < 0 else 0)
    return value & ((1 << bits) - 1)


def pack_two_samples(values: list[int], bits: int) -> bytes:
    """Eight fields (sample 1 ch1..4, sample 2 ch1..4) packed big-endian and bit-contiguous."""
    packed = 0
    for v in values:
        packed = (packed << bits) | _signed_to_field(v, bits)
    n_bytes = (8 * bits + 7) // 8
    return (packed << (8 * n_bytes - 8 * bits)).to_bytes(n_bytes, "big")


class VirtualGanglion(StreamingPeripheral):
    """Streams `n_packets` data packets after ``b``; ``n``/``N`` switch the accelerometer (18/19-bit packets).

    Parameters
    ----------
    firmware : str
        Software Revision string ("2.0.1" or "3.0.2"), which picks the packet format.
    serve_revision : bool
        Whether the Device Information service with Software Revision (0x2A28) exists; without it the host
        has to tell the firmware from the data.
    """

    def __init__(self, firmware: str = "3.0.2", name: str = "Ganglion-1a2b", *, n_packets: int = 300,
                 drop_every: int | None = None, serve_revision: bool = True):
        super().__init__(name, (proto.SERVICE_UUID,), n_packets=n_packets, drop_every=drop_every)
        self.firmware = firmware
        self.serve_revision = serve_revision
        self.accel = True  # the firmware's power-on default

    def build_services(self) -> list[Service]:
        self.data = Characteristic(proto.NOTIFY_UUID, P.NOTIFY | P.READ, Characteristic.READABLE, b"")
        self.write = Characteristic(
            proto.WRITE_UUID,
            P.WRITE | P.WRITE_WITHOUT_RESPONSE,
            Characteristic.WRITEABLE,
            CharacteristicValue(write=self._on_write),
        )
        disconnect_uuid = proto.NOTIFY_UUID.replace("2d30c082", "2d30c084")
        disconnect = Characteristic(disconnect_uuid, P.WRITE, Characteristic.WRITEABLE, b"")
        revision = Characteristic(proto.SOFTWARE_REVISION_UUID, P.READ, Characteristic.READABLE, self.firmware.encode())
        services = [Service(proto.SERVICE_UUID, [self.data, self.write, disconnect])]
        if self.serve_revision:
            services.append(Service(DEVICE_INFORMATION_UUID, [revision]))
        return services

    def _on_write(self, connection, value: bytes) -> None:
        self.writes.append(bytes(value))
        command = bytes(value)
        if command == proto.ACCEL_ON:
            self.accel = True
        elif command == proto.ACCEL_OFF:
            self.accel = False
        elif command == proto.START:
            self.start_streaming(self._stream())
        elif command == proto.STOP:
            self.stop_streaming()

    async def _stream(self) -> None:
        make = packets_v2 if self.firmware.startswith("2.") else packets_v3
        for k, packet in enumerate(make(self.n_packets, self.accel)):
            if not self.dropped(k) and await self.notify(self.data, packet):
                self.sent += 1
            if k % 32 == 31:
                await asyncio.sleep(0)


def _accel_byte(pid: int) -> bytes:
    slot = pid % 10
    return bytes([ACCEL_AXES[slot - 1] & 0xFF]) if slot in (1, 2, 3) else b"\x00"


def packets_v3(n_packets: int, accel: bool) -> Iterator[bytes]:
    """Firmware 3.x packets of the sawtooth: top 18 (accelerometer on) or 19 bits of each sample."""
    bits = 18 if accel else 19
    for k in range(n_packets):
        pid = k % 100 + (0 if accel else 100)
        samples = [ganglion_value(s, c) >> (24 - bits) for s in (2 * k, 2 * k + 1) for c in range(4)]
        packet = bytes([pid]) + pack_two_samples(samples, bits)
        yield packet + (_accel_byte(pid) if accel else b"")


def packets_v2(n_packets: int, accel: bool) -> Iterator[bytes]:
    """Firmware 2.x packets of the sawtooth: a raw packet every 101, deltas (previous − current) between."""
    bits = 18 if accel else 19
    sample = 0
    last = [0] * 4
    for k in range(n_packets):
        pos = k % 101
        if pos == 0:  # one sample as 4 × int24 BE, padded
            last = [ganglion_value(sample, c) for c in range(4)]
            yield bytes([0]) + b"".join((v & 0xFFFFFF).to_bytes(3, "big") for v in last) + proto.RAW_PADDING
            sample += 1
            continue
        pid = pos if accel else pos + 100
        deltas = []
        for s in (sample, sample + 1):
            current = [ganglion_value(s, c) for c in range(4)]
            deltas += [p - c for p, c in zip(last, current)]
            last = current
        sample += 2
        yield bytes([pid]) + pack_two_samples(deltas, bits) + (_accel_byte(pid) if accel else b"")
