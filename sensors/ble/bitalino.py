"""BITalino (r)evolution over BLE (BT121 transparent UART bridge): protocols.md §2.

The BT121 forwards the MCU's serial byte stream as notifications of at most 20 bytes with arbitrary
boundaries, so the decoder reassembles a byte stream and cuts frames out of it. Each frame ends with a 4-bit
sequence number and a CRC-4; a CRC failure means lost alignment (or corrupt bytes), and the decoder slides one
byte at a time until it finds a frame whose CRC holds *and* whose successor's CRC holds with the next sequence
number -- the second check keeps a 1-in-16 chance CRC match inside garbage from being taken as a frame.

Units: EMG ``V = (ADC·Vcc/2ⁿ − Vcc/2)/G`` with Vcc = 3.3 V and G = 1000 (BITalino forum, "Converting
BITalino's Output Values into their Real Units", 2014). The (r)evolution EMG sensor's gain is not verified
from its current data sheet; the forum formula is used as stated.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np

from sensors.ble.decoding import ErrorReporter, StreamCursor
from sensors.ble.gatt import best_effort, subscribe
from sensors.ble.profile import DecoderStats, NotifyHandler, SequenceUnwrapper
from sensors.stream import ChannelInfo, ChannelKind, Event, Frame, StreamInfo

if TYPE_CHECKING:
    from bleak import BleakClient

NAME = "bitalino"
SERVICE_UUID = "c566488a-0882-4e1b-a6d0-0b717e652234"
COMMAND_UUID = "4051eb11-bf0a-4c74-8730-a48f4193fcea"
FRAMES_UUID = "40fdba6b-672e-47c4-808a-e529adff3633"

RATE_COMMANDS = {1: 0x03, 10: 0x43, 100: 0x83, 1000: 0xC3}
STOP_COMMAND = 0x00
STREAM_ID = "analog"

VCC_V = 3.3
EMG_GAIN = 1000.0  # forum formula; see module docstring

_CRC4_TABLE = (0, 3, 6, 5, 12, 15, 10, 9, 11, 8, 13, 14, 7, 4, 1, 2)
# The table walk over one whole byte (high nibble, then low), precomputed: _CRC4_BYTE[crc][byte].
_CRC4_BYTE = tuple(
    tuple(_CRC4_TABLE[_CRC4_TABLE[crc] ^ (byte >> 4)] ^ (byte & 0x0F) for byte in range(256)) for crc in range(16)
)
_PAD = tuple(bytes(k) for k in range(8))


def frame_length(n_channels: int) -> int:
    """Bytes per frame for `n_channels` analog channels (1..6): nCh + 2, plus 1 when 3 <= nCh <= 5."""
    if not 1 <= n_channels <= 6:
        raise ValueError(f"BITalino acquires 1 to 6 analog channels, not {n_channels}")
    return n_channels + 2 + (1 if 3 <= n_channels <= 5 else 0)


def channel_bits(position: int) -> int:
    """Resolution of the analog field at `position` (0-based) in the frame: 10 bits for the first four."""
    return 10 if position < 4 else 6


def start_command(analog_channels: Sequence[int]) -> int:
    """Live-mode start byte for 1-based ports A1..A6: ``(mask << 2) | 0x01``."""
    mask = 0
    for port in analog_channels:
        mask |= 1 << (port - 1)
    return (mask << 2) | 0x01


def crc4_ok(frame: bytes) -> bool:
    """CRC-4 check of one frame: the table walk over every nibble, the CRC nibble itself counting as zero."""
    crc = 0
    for byte in frame[:-1]:
        crc = _CRC4_BYTE[crc][byte]
    last = frame[-1]
    return _CRC4_TABLE[_CRC4_TABLE[crc] ^ (last >> 4)] == last & 0x0F


def decode_frame(frame: bytes, n_channels: int) -> tuple[int, list[int]]:
    """Unpack one CRC-checked frame.

    Returns
    -------
    seq : int
        4-bit sequence number.
    row : list of int
        ``n_channels`` analog counts (10-bit for the first four, 6-bit after), then digital inputs I1..I4.
    """
    # Left-pad to the 8-byte maximum so every field's bytes exist (fields past n_channels are discarded);
    # tK is byte b[n-K] of the frame, as the spec indexes bytes from the end.
    t8, t7, t6, t5, t4, t3, t2, t1 = _PAD[8 - len(frame)] + frame
    analog = [
        ((t2 & 0x0F) << 6) | (t3 >> 2),
        ((t3 & 0x03) << 8) | t4,
        (t5 << 2) | (t6 >> 6),
        ((t6 & 0x3F) << 4) | (t7 >> 4),
        ((t7 & 0x0F) << 2) | (t8 >> 6),
        t8 & 0x3F,
    ]
    return t1 >> 4, analog[:n_channels] + [t2 >> 7, (t2 >> 6) & 1, (t2 >> 5) & 1, (t2 >> 4) & 1]


class BitalinoDecoder:
    """Incremental decoder: notifications in any chunking -> frames of ``(n, n_channels + 4)`` int16.

    Parameters
    ----------
    n_channels : int
        Analog channels acquired (1..6), which fixes the frame length.
    """

    def __init__(self, n_channels: int) -> None:
        self.n_channels = int(n_channels)
        self.frame_len = frame_length(self.n_channels)
        self.stats = DecoderStats()
        self._errors = ErrorReporter(NAME, self.stats)
        self._cursor = StreamCursor(NAME, STREAM_ID, self.stats)
        self._unwrap = SequenceUnwrapper(16)
        self._buf = bytearray()
        self._synced = False
        self._skipping = False
        self._last_seq = 0
        self._base: int | None = None  # unwrapped number of the first frame: index 0

    def feed(self, char_uuid: str, data: bytes, arrival_s: float) -> list[Frame | Event]:
        """Append one notification to the byte stream and return whatever whole frames it completes."""
        self.stats.packets += 1
        self._buf += data
        out: list[Frame | Event] = []
        n = self.frame_len
        buf = self._buf
        while len(buf) >= n:
            if self._synced:
                out += self._take_synced_frames(arrival_s)
                continue
            if len(buf) < 2 * n:
                break
            first, second = bytes(buf[:n]), bytes(buf[n : 2 * n])
            if crc4_ok(first) and crc4_ok(second) and second[-1] >> 4 == ((first[-1] >> 4) + 1) % 16:
                self._synced = True
                self._skipping = False
                self._last_seq = ((first[-1] >> 4) - 1) % 16
            else:
                if not self._skipping:  # one bad packet per run of discarded bytes
                    self._skipping = True
                    out += self._errors.bad("bytes failed CRC-4; resynchronising", arrival_s)
                del buf[0]
        return out

    def _take_synced_frames(self, arrival_s: float) -> list[Frame | Event]:
        # In sync, a frame must pass CRC *and* carry the next sequence number; anything else (corrupt bytes,
        # or bytes missing from a dropped notification) sends us back to resynchronise.
        n, buf = self.frame_len, self._buf
        numbers: list[int] = []
        rows: list[list[int]] = []
        pos = 0
        while len(buf) - pos >= n:
            frame = bytes(buf[pos : pos + n])
            if frame[-1] >> 4 != (self._last_seq + 1) % 16 or not crc4_ok(frame):
                self._synced = False
                break
            seq, row = decode_frame(frame, self.n_channels)
            number, lost = self._unwrap.next(seq)
            self.stats.lost_packets += lost
            self._last_seq = seq
            numbers.append(number)
            rows.append(row)
            pos += n
        del buf[:pos]
        if not rows:
            return []
        if self._base is None:
            self._base = numbers[0]
        indices = np.array(numbers, dtype=np.int64) - self._base
        return self._cursor.emit_rows(indices, np.array(rows, dtype=np.int16), arrival_s)


class BitalinoProfile:
    """BITalino (r)evolution BLE: rate, live start with a channel mask, and stop, all written with response.

    Parameters
    ----------
    analog_channels : sequence of int
        1-based analog ports to acquire (A1..A6), in ascending order.
    rate_hz : int
        1, 10, 100 or 1000.
    """

    name = NAME

    def __init__(self, analog_channels: Sequence[int] = (1, 2, 3, 4), rate_hz: int = 1000) -> None:
        ports = tuple(int(p) for p in analog_channels)
        if not ports or sorted(set(ports)) != list(ports) or not all(1 <= p <= 6 for p in ports):
            raise ValueError(f"analog_channels must be distinct ascending ports in 1..6, got {analog_channels!r}")
        if rate_hz not in RATE_COMMANDS:
            raise ValueError(f"BITalino rate must be one of {sorted(RATE_COMMANDS)} Hz, got {rate_hz!r}")
        self.analog_channels = ports
        self.rate_hz = int(rate_hz)

    def advertises(self, device_name: str | None, service_uuids: Sequence[str]) -> bool:
        if SERVICE_UUID in (u.lower() for u in service_uuids):
            return True
        return bool(device_name) and device_name.lower().startswith("bitalino")

    def streams(self) -> list[StreamInfo]:
        """The one stream this configuration produces: analog ports then digital inputs I1..I4."""
        channels = []
        for pos, port in enumerate(self.analog_channels):
            bits = channel_bits(pos)
            channels.append(
                ChannelInfo(
                    f"A{port}", ChannelKind.EMG, "mV", gain=VCC_V / 2**bits / EMG_GAIN * 1e3, offset=2 ** (bits - 1),
                    count_min=0, count_max=2**bits - 1,  # unsigned ADC codes: 0..1023 (10-bit) or 0..63 (6-bit)
                )
            )
        channels += [ChannelInfo(f"I{i}", ChannelKind.OTHER, "bool", count_min=0, count_max=1) for i in range(1, 5)]
        notes = [f"EMG scaling from the BITalino forum formula (Vcc 3.3 V, G = {EMG_GAIN:g}); gain unverified."]
        spectral_ok = self.rate_hz >= 1000
        if not spectral_ok:
            notes.append(f"{self.rate_hz} Hz is too slow for spectral fatigue indices (MDF/MNF need >= 1 kHz).")
        if len(self.analog_channels) > 4:
            notes.append("Analog channels after the fourth are 6-bit: amplitude only.")
        note = " ".join(notes)
        return [StreamInfo(STREAM_ID, float(self.rate_hz), tuple(channels), "int16", spectral_ok, note, NAME)]

    async def start(self, client: "BleakClient", on_notify: NotifyHandler) -> list[StreamInfo]:
        await subscribe(client, FRAMES_UUID, on_notify)
        # Only ATT write *requests* reach the MCU through the BT121 bridge (protocols.md §2).
        await client.write_gatt_char(COMMAND_UUID, bytes([RATE_COMMANDS[self.rate_hz]]), response=True)
        await client.write_gatt_char(COMMAND_UUID, bytes([start_command(self.analog_channels)]), response=True)
        return self.streams()

    def new_decoder(self, streams: Sequence[StreamInfo]) -> BitalinoDecoder:
        return BitalinoDecoder(len(self.analog_channels))

    async def stop(self, client: "BleakClient") -> None:
        if not client.is_connected:
            return
        await best_effort(client.write_gatt_char(COMMAND_UUID, bytes([STOP_COMMAND]), response=True), "stop byte")
        await best_effort(client.stop_notify(FRAMES_UUID), "unsubscribe")
