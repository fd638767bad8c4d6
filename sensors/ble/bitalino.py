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

_CRC4_TABLE = np.array([0, 3, 6, 5, 12, 15, 10, 9, 11, 8, 13, 14, 7, 4, 1, 2], dtype=np.uint8)


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


def crc4_ok(frames: np.ndarray) -> np.ndarray:
    """CRC-4 check of each frame.

    Parameters
    ----------
    frames : ndarray of uint8, shape (k, n)
        Candidate frames, one per row.

    Returns
    -------
    ndarray of bool, shape (k,)
    """
    crc = np.zeros(frames.shape[0], dtype=np.uint8)
    for j in range(frames.shape[1] - 1):
        crc = _CRC4_TABLE[crc] ^ (frames[:, j] >> 4)
        crc = _CRC4_TABLE[crc] ^ (frames[:, j] & 0x0F)
    crc = _CRC4_TABLE[crc] ^ (frames[:, -1] >> 4)
    crc = _CRC4_TABLE[crc]  # the CRC nibble itself counts as zero
    return crc == (frames[:, -1] & 0x0F)


def decode_frames(frames: np.ndarray, n_channels: int) -> tuple[np.ndarray, np.ndarray]:
    """Unpack CRC-checked frames.

    Parameters
    ----------
    frames : ndarray of uint8, shape (k, n)
    n_channels : int
        Analog channels in the frame (1..6).

    Returns
    -------
    seq : ndarray of uint8, shape (k,)
        4-bit sequence numbers.
    rows : ndarray of int16, shape (k, n_channels + 4)
        Analog counts (10-bit for the first four, 6-bit after) then digital inputs I1..I4 (0/1).
    """
    k, n = frames.shape
    # Left-pad to the 8-byte maximum so every field's bytes exist; fields past n_channels are discarded.
    b = np.zeros((k, 8), dtype=np.int16)
    b[:, 8 - n :] = frames

    def tail(j: int) -> np.ndarray:  # byte b[n-j] of the frame, as the spec indexes from the end
        return b[:, 8 - j]

    fields = [
        ((tail(2) & 0x0F) << 6) | (tail(3) >> 2),
        ((tail(3) & 0x03) << 8) | tail(4),
        (tail(5) << 2) | (tail(6) >> 6),
        ((tail(6) & 0x3F) << 4) | (tail(7) >> 4),
        ((tail(7) & 0x0F) << 2) | (tail(8) >> 6),
        tail(8) & 0x3F,
    ][:n_channels]
    digital = [(tail(2) >> (7 - i)) & 1 for i in range(4)]
    rows = np.stack(fields + digital, axis=1).astype(np.int16)
    return (frames[:, -1] >> 4).astype(np.uint8), rows


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
        while len(self._buf) >= n:
            if self._synced:
                k = len(self._buf) // n
                block = np.frombuffer(bytes(self._buf[: k * n]), dtype=np.uint8).reshape(k, n)
                # In sync, a frame must pass CRC *and* carry the next sequence number; anything else
                # (corrupt bytes, or bytes missing from a dropped notification) sends us back to resync.
                expected = (self._last_seq + 1 + np.arange(k)) % 16
                ok = crc4_ok(block) & ((block[:, -1] >> 4) == expected)
                good = k if ok.all() else int(np.argmin(ok))
                if good:
                    out += self._accept(block[:good], arrival_s)
                    del self._buf[: good * n]
                if good < k:
                    self._synced = False
                continue
            if len(self._buf) < 2 * n:
                break
            pair = np.frombuffer(bytes(self._buf[: 2 * n]), dtype=np.uint8).reshape(2, n)
            if crc4_ok(pair).all() and (pair[1, -1] >> 4) == ((pair[0, -1] >> 4) + 1) % 16:
                self._synced = True
                self._skipping = False
                self._last_seq = (int(pair[0, -1] >> 4) - 1) % 16
            else:
                if not self._skipping:  # one bad packet per run of discarded bytes
                    self._skipping = True
                    out += self._errors.bad("bytes failed CRC-4; resynchronising", arrival_s)
                del self._buf[0]
        return out

    def _accept(self, block: np.ndarray, arrival_s: float) -> list[Frame | Event]:
        seq, rows = decode_frames(block, self.n_channels)
        self._last_seq = int(seq[-1])
        numbers = np.empty(len(seq), dtype=np.int64)
        for i, s in enumerate(seq.tolist()):
            number, lost = self._unwrap.next(s)
            self.stats.lost_packets += lost
            numbers[i] = number
        if self._base is None:
            self._base = int(numbers[0])
        return self._cursor.emit_rows(numbers - self._base, rows, arrival_s)


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
                    f"A{port}", ChannelKind.EMG, "mV", gain=VCC_V / 2**bits / EMG_GAIN * 1e3, offset=2 ** (bits - 1)
                )
            )
        channels += [ChannelInfo(f"I{i}", ChannelKind.OTHER, "bool") for i in range(1, 5)]
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
