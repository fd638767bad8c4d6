"""OpenBCI Ganglion (4 ch, 200 Hz EEG board): firmware 2.x delta packets and 3.x truncated-MSB packets, §4.

Every data notification is 20 bytes: byte 0 is the packet id, then two samples × four channels packed
big-endian, bit-contiguous, in 18-bit (accelerometer on) or 19-bit (accelerometer off) fields. In every
field the firmware overwrites bit 0 with the sign bit, so one bit of resolution is lost; the value is the
field with bit 0 cleared, read as an N-bit two's-complement number. (BrainFlow writes the same thing as
"−(~bits) − 2 when the top bit is set".)

- **Firmware 2.x** sends *deltas* ``previous − current``: id 0 is a raw packet (one sample, 4 × int24 BE,
  padded with ``ABCDEFG``), ids 1–100 carry 18-bit deltas and 101–200 19-bit deltas. A cycle is 101
  packets = 201 samples. A lost packet breaks the delta chain: the samples until the next raw packet
  cannot be rebuilt and are reported as part of the gap.
- **Firmware 3.x** sends the top 18/19 bits of each 24-bit sample: ids 0–99 (18-bit) and 100–199 (19-bit),
  rebuilt with ``<< 6`` / ``<< 5``. A cycle is 100 packets = 200 samples; a loss costs only the lost packets.

The decoder is chosen from Software Revision (0x2A28). If that cannot be read, the data decides: a 2.x raw
packet (id 0) ends in the ``ABCDEFG`` padding, a 3.x id-0 packet does not (by chance 1 in 2⁵⁶), and only
3.x wraps from id 199 to 100. Packets before the decision (at most one cycle, about 1 s) are not decoded.

Ids 201–205 (impedance, ASCII) and 206/207 (ASCII message) are skipped without error.

Accelerometer (18-bit packets only): the last byte is one int8 axis; the firmware source writes axes 0, 1, 2
in the packets whose id ends in 1, 2, 3, and that is what this decoder reads (BrainFlow reads id % 10 = 0, 1,
2 as −Z, Y, X instead). The scale is unverified (BrainFlow 0.016 g per count; an OpenBCI JS file 0.032).
"""

from __future__ import annotations

import asyncio
import re
from typing import TYPE_CHECKING, Sequence

import numpy as np
from bleak.exc import BleakError

from sensors.ble.decoding import ErrorReporter, StreamCursor
from sensors.ble.gatt import best_effort, subscribe
from sensors.ble.profile import DecoderStats, NotifyHandler, SequenceUnwrapper
from sensors.stream import ChannelInfo, ChannelKind, Event, Frame, StreamInfo

if TYPE_CHECKING:
    from bleak import BleakClient

NAME = "ganglion"
SERVICE_UUID = "0000fe84-0000-1000-8000-00805f9b34fb"
NOTIFY_UUID = "2d30c082-f39f-4ce6-923f-3484ea480596"
WRITE_UUID = "2d30c083-f39f-4ce6-923f-3484ea480596"
SOFTWARE_REVISION_UUID = "00002a28-0000-1000-8000-00805f9b34fb"

START, STOP, ACCEL_ON, ACCEL_OFF = b"b", b"s", b"n", b"N"
RATE_HZ = 200.0
#: µV per count: 1.2 V reference over 2²³ − 1 counts, gain 1.5 × 51 (MCP3912 + front end), protocols.md §4.
SCALE_UV = 1.2e6 / (8388607 * 1.5 * 51)
#: g per accelerometer count, BrainFlow's constant; an OpenBCI JS file says 0.032, so unverified.
ACCEL_G_PER_COUNT = 0.016
RAW_PADDING = b"ABCDEFG"
SKIPPED_IDS = range(201, 208)

_SPECTRAL_NOTE = (
    "Ganglion samples at 200 Hz: its 100 Hz Nyquist limit is below most of the sEMG band (20-450 Hz), so "
    "MDF/MNF cannot be estimated; it is an EEG board and gives coarse on/off envelopes at most."
)


def firmware_major(revision: bytes | str | None) -> int | None:
    """Major version from a Software Revision string such as ``"3.0.2"``; None if unreadable."""
    if revision is None:
        return None
    text = revision.decode("ascii", "replace") if isinstance(revision, (bytes, bytearray)) else revision
    m = re.search(r"(\d+)\.", text)
    return int(m.group(1)) if m else None


def unpack_fields(payload: bytes, bits: int) -> list[int]:
    """Eight signed values from `bits`-bit big-endian fields whose bit 0 holds the sign.

    Parameters
    ----------
    payload : bytes
        The packet after its id byte (at least ``bits`` bytes: 8 fields × bits / 8).
    bits : int
        18 or 19.

    Returns
    -------
    list of int
        Sample 1 ch1..ch4, then sample 2 ch1..ch4.
    """
    packed = int.from_bytes(payload[:bits], "big")
    mask = (1 << bits) - 1
    top = 1 << (bits - 1)
    values = []
    for i in range(8):
        field = (packed >> (bits * (7 - i))) & mask & ~1
        values.append(field - (1 << bits) if field & top else field)
    return values


class GanglionDecoder:
    """Incremental decoder for one streaming run.

    Parameters
    ----------
    firmware : int or None
        Major firmware version (2 or 3); None detects it from the data (see the module docstring).
    accel : bool
        Whether an ``acc`` stream is declared (decoded from the 18-bit packets' last byte).
    """

    def __init__(self, firmware: int | None, accel: bool = False) -> None:
        self.firmware = firmware if firmware in (2, 3) else None
        self.accel = accel
        self.stats = DecoderStats()
        self._errors = ErrorReporter(NAME, self.stats)
        self._eeg = StreamCursor(NAME, "eeg", self.stats)
        self._acc = StreamCursor(NAME, "acc", self.stats)
        self._unwrap: SequenceUnwrapper | None = None
        self._base: int | None = None  # sample index (un-rebased) of the first decoded sample
        self._last: list[int] | None = None  # firmware 2.x: last absolute sample, None while the chain is broken
        self._axes: dict[int, int] = {}  # accelerometer axis -> count, for the decade being filled
        self._axes_decade: int | None = None
        self._acc_base: int | None = None
        self._prev_pid: int | None = None  # while detecting the firmware

    def feed(self, char_uuid: str, data: bytes, arrival_s: float) -> list[Frame | Event]:
        self.stats.packets += 1
        if not data:
            return self._errors.bad("empty notification", arrival_s)
        pid = data[0]
        if pid in SKIPPED_IDS:
            return []
        if len(data) != 20:
            return self._errors.bad(f"packet id {pid} of {len(data)} bytes, expected 20", arrival_s)
        if self.firmware is None:
            self.firmware = self._detect(pid, bytes(data))
            if self.firmware is None:
                return []  # cannot tell 2.x from 3.x yet
        if self.firmware == 2:
            return self._feed_v2(pid, bytes(data), arrival_s)
        return self._feed_v3(pid, bytes(data), arrival_s)

    def _detect(self, pid: int, data: bytes) -> int | None:
        # 2.x opens every 101-packet cycle with a raw id-0 packet padded "ABCDEFG"; a 3.x cycle starts at id 0
        # (18-bit) or wraps 199 -> 100 (19-bit), which 2.x never does while the accelerometer stays as set.
        previous, self._prev_pid = self._prev_pid, pid
        if pid == 0:
            return 2 if data[13:20] == RAW_PADDING else 3
        if pid == 100 and previous == 199:
            return 3
        return None

    # --- firmware 3.x: absolute truncated samples -------------------------------------------------------
    def _feed_v3(self, pid: int, data: bytes, arrival_s: float) -> list[Frame | Event]:
        if pid >= 200:
            return self._errors.bad(f"unknown packet id {pid} for firmware 3.x", arrival_s)
        bits = 18 if pid < 100 else 19
        if self._unwrap is None:
            self._unwrap = SequenceUnwrapper(100)
        number, lost = self._unwrap.next(pid % 100)
        self.stats.lost_packets += lost
        values = [v << (24 - bits) for v in unpack_fields(data[1:], bits)]
        out = self._emit_eeg(2 * number, values, arrival_s)
        if bits == 18:
            out += self._accel(number // 10, pid % 10, data[19], arrival_s)
        return out

    # --- firmware 2.x: deltas between raw packets --------------------------------------------------------
    def _feed_v2(self, pid: int, data: bytes, arrival_s: float) -> list[Frame | Event]:
        if pid > 200:
            return self._errors.bad(f"unknown packet id {pid} for firmware 2.x", arrival_s)
        pos = pid if pid <= 100 else pid - 100  # place in the 101-packet cycle
        if self._unwrap is None:
            if pid != 0:
                return []  # deltas mean nothing before the first raw packet
            self._unwrap = SequenceUnwrapper(101)
        number, lost = self._unwrap.next(pos)
        self.stats.lost_packets += lost
        if lost:
            self._last = None
        cycle, pos = divmod(number, 101)
        if pos == 0:
            self._last = [int.from_bytes(data[1 + 3 * c : 4 + 3 * c], "big", signed=True) for c in range(4)]
            return self._emit_eeg(201 * cycle, self._last, arrival_s)
        bits = 18 if pid <= 100 else 19
        out: list[Frame | Event] = []
        if self._last is not None:
            deltas = unpack_fields(data[1:], bits)
            first = [self._last[c] - deltas[c] for c in range(4)]
            second = [first[c] - deltas[4 + c] for c in range(4)]
            self._last = second
            out += self._emit_eeg(201 * cycle + 2 * pos - 1, first + second, arrival_s)
        if bits == 18:
            out += self._accel(10 * cycle + (pos - 1) // 10, pos % 10, data[19], arrival_s)
        return out

    # --- shared ------------------------------------------------------------------------------------------
    def _emit_eeg(self, first_index: int, values: list[int], arrival_s: float) -> list[Frame | Event]:
        if self._base is None:
            self._base = first_index
        rows = np.array(values, dtype=np.int32).reshape(-1, 4)
        indices = first_index - self._base + np.arange(rows.shape[0])
        why = "lost packets" if self.firmware == 3 else "lost packets; 2.x deltas resume at the next raw packet"
        return self._eeg.emit_rows(indices, rows, arrival_s, why)

    def _accel(self, decade: int, slot: int, byte: int, arrival_s: float) -> list[Frame | Event]:
        # The firmware puts axis 0, 1, 2 in the packets whose id ends in 1, 2, 3; a sample is whole once all
        # three axes of the same ten-packet decade have arrived.
        if not self.accel or slot not in (1, 2, 3):
            return []
        if decade != self._axes_decade:
            self._axes, self._axes_decade = {}, decade
        self._axes[slot - 1] = byte - 256 if byte > 127 else byte
        if len(self._axes) < 3:
            return []
        if self._acc_base is None:
            self._acc_base = decade
        row = np.array([[self._axes[0], self._axes[1], self._axes[2]]], dtype=np.int8)
        self._axes = {}
        return self._acc.emit_rows(np.array([decade - self._acc_base]), row, arrival_s, "lost packets")


class GanglionProfile:
    """OpenBCI Ganglion over its Simblee/nRF GATT service.

    Parameters
    ----------
    accel : bool
        Turn the accelerometer on (``n``): 18-bit packets plus an ``acc`` stream at about 10 Hz. Off (``N``,
        the default) gives 19-bit packets, the better resolution for EMG.
    """

    name = NAME

    def __init__(self, accel: bool = False) -> None:
        self.accel = bool(accel)
        self.firmware: int | None = None  # read by start()

    def advertises(self, device_name: str | None, service_uuids: Sequence[str]) -> bool:
        if SERVICE_UUID in (u.lower() for u in service_uuids):
            return True
        return bool(device_name) and device_name.startswith(("Ganglion", "Simblee"))

    def streams(self) -> list[StreamInfo]:
        fw = f"firmware {self.firmware}.x" if self.firmware else "firmware detected from the data"
        # the 24-bit ADC's codes in int32; 3.x 18-bit fields (bit 0 and 6 LSBs lost) top out at 2^23 - 128, so
        # that is the highest value at which the positive rail can show on every firmware
        eeg = tuple(ChannelInfo(f"ch{i}", ChannelKind.EMG, "uV", gain=SCALE_UV, count_min=-(2**23),
                                count_max=2**23 - 128) for i in range(1, 5))
        out = [StreamInfo("eeg", RATE_HZ, eeg, "int32", False, f"{_SPECTRAL_NOTE} ({fw})", NAME)]
        if self.accel:
            # One 3-axis sample per ten packets: 10 Hz on 3.x; 2.x adds a raw packet per 101 (200·10/201 Hz).
            rate = 10.0 if self.firmware != 2 else RATE_HZ * 10 / 201
            acc = tuple(ChannelInfo(f"acc_{a}", ChannelKind.ACC, "g", gain=ACCEL_G_PER_COUNT, count_min=-128,
                                    count_max=127) for a in "xyz")
            note = "Accelerometer scale unverified (0.016 vs 0.032)."
            out.append(StreamInfo("acc", rate, acc, "int8", False, note, NAME))
        return out

    async def start(self, client: "BleakClient", on_notify: NotifyHandler) -> list[StreamInfo]:
        try:
            self.firmware = firmware_major(await client.read_gatt_char(SOFTWARE_REVISION_UUID))
        except (BleakError, OSError, asyncio.TimeoutError):  # unknown: the decoder detects it from the data
            self.firmware = None
        await subscribe(client, NOTIFY_UUID, on_notify)
        # BrainFlow writes Ganglion commands without response.
        await client.write_gatt_char(WRITE_UUID, ACCEL_ON if self.accel else ACCEL_OFF, response=False)
        await client.write_gatt_char(WRITE_UUID, START, response=False)
        return self.streams()

    def new_decoder(self, streams: Sequence[StreamInfo]) -> GanglionDecoder:
        return GanglionDecoder(self.firmware, self.accel)

    async def stop(self, client: "BleakClient") -> None:
        if not client.is_connected:
            return
        await best_effort(client.write_gatt_char(WRITE_UUID, STOP, response=False), "stop byte")
        await best_effort(client.stop_notify(NOTIFY_UUID), "unsubscribe")
