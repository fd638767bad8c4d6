"""A virtual BITalino (r)evolution BLE: the BT121 UART bridge streaming frames in ≤20-byte chunks."""

from __future__ import annotations

import asyncio
import random
from typing import Iterator

from sensors.ble import bitalino as proto
from sensors.virtual.peripheral import Characteristic, CharacteristicValue, Service
from sensors.virtual.streaming import StreamingPeripheral

P = Characteristic.Properties
_CRC4 = (0, 3, 6, 5, 12, 15, 10, 9, 11, 8, 13, 14, 7, 4, 1, 2)
RATES_HZ = {0: 1, 1: 10, 2: 100, 3: 1000}  # rate command bits 7-6


def ramp_value(frame: int, position: int) -> int:
    """Analog count the virtual device sends at `frame` for the field at `position` (a ramp per channel)."""
    return (frame * (position + 1) + 7 * position) % (1024 if position < 4 else 64)


def ramp_digital(frame: int) -> list[int]:
    """Digital inputs I1..I4 at `frame`: the frame number's low four bits, I1 = bit 3."""
    return [(frame >> (3 - i)) & 1 for i in range(4)]


def encode_frame(seq: int, digital: list[int], analog: list[int]) -> bytes:
    """One frame as the MCU sends it: fields written into bytes counted from the end, then the CRC-4."""
    n = proto.frame_length(len(analog))
    acc = 0  # fields from the top of the frame downwards: seq, crc(0), I1..I4, analog fields
    width = 0
    fields = [(seq, 4), (0, 4), *((d, 1) for d in digital)]
    fields += [(a, 10 if i < 4 else 6) for i, a in enumerate(analog)]
    for value, bits in fields:
        acc = (acc << bits) | (value & ((1 << bits) - 1))
        width += bits
    acc <<= 8 * n - width
    frame = bytearray(acc.to_bytes(n, "little"))  # the top of the integer is the frame's last byte
    crc = 0
    for byte in frame[:-1]:
        crc = _CRC4[crc] ^ (byte >> 4)
        crc = _CRC4[crc] ^ (byte & 0x0F)
    crc = _CRC4[_CRC4[crc] ^ (frame[-1] >> 4)]
    frame[-1] |= crc
    return bytes(frame)


class VirtualBitalino(StreamingPeripheral):
    """Streams `n_packets` frames of ramps after a live start command; chunks have seeded random lengths 1..20.

    Lost "packets" (`drop_every`) are whole frames left out of the byte stream, as a dropped frame from the MCU.
    """

    def __init__(
        self, name: str = "BITalino BLE", *, n_packets: int = 1000, drop_every: int | None = None, seed: int = 0
    ):
        # The BT121 firmware does not advertise its service UUID; it is recognised by name.
        super().__init__(name, (), n_packets=n_packets, drop_every=drop_every)
        self.rate_hz: int | None = None
        self.ignored_write_commands = 0
        self._rng = random.Random(seed)

    async def attach(self, radio) -> None:
        await super().attach(radio)
        # Like the BT121 bridge, pass only ATT write *requests* to the "MCU": write commands to the command
        # characteristic are swallowed (protocols.md §2), so a profile writing without response gets nowhere.
        server = self.device.gatt_server
        forward = server.on_att_write_command

        def on_att_write_command(bearer, request) -> None:
            if request.attribute_handle == self.command.handle:
                self.ignored_write_commands += 1
                return
            forward(bearer, request)

        server.on_att_write_command = on_att_write_command

    def build_services(self) -> list[Service]:
        self.command = Characteristic(
            proto.COMMAND_UUID,
            P.READ | P.WRITE | P.INDICATE,
            Characteristic.READABLE | Characteristic.WRITEABLE,
            CharacteristicValue(read=lambda _c: b"", write=self._on_write),
        )
        self.frames = Characteristic(proto.FRAMES_UUID, P.READ | P.NOTIFY, Characteristic.READABLE, b"")
        return [Service(proto.SERVICE_UUID, [self.command, self.frames])]

    def _on_write(self, connection, value: bytes) -> None:
        self.writes.append(bytes(value))
        if not value:
            return
        cmd = value[0]
        if cmd == proto.STOP_COMMAND:
            self.stop_streaming()
        elif cmd & 0x03 == 0x03:
            self.rate_hz = RATES_HZ[cmd >> 6]
        elif cmd & 0x03 in (0x01, 0x02):
            ports = [p for p in range(1, 7) if cmd >> (p + 1) & 1]
            self.start_streaming(self._stream(len(ports)))

    async def _stream(self, n_channels: int) -> None:
        for k, chunk in enumerate(notifications(self.n_packets, n_channels, self._rng, self.dropped)):
            if await self.notify(self.frames, chunk):
                self.sent += 1
            if k % 32 == 31:
                await asyncio.sleep(0)  # let the central's host run, like a real connection interval


def notifications(n_frames: int, n_channels: int, rng: random.Random, dropped=lambda i: False) -> Iterator[bytes]:
    """The byte stream of `n_frames` ramp frames, cut into chunks of random length 1..20 (BT121 style)."""
    pending = bytearray()
    for i in range(n_frames):
        if not dropped(i):
            analog = [ramp_value(i, pos) for pos in range(n_channels)]
            pending += encode_frame(i % 16, ramp_digital(i), analog)
        while len(pending) >= 20 or (pending and i == n_frames - 1):
            k = min(len(pending), rng.randint(1, 20))
            chunk, pending = bytes(pending[:k]), pending[k:]
            yield chunk
