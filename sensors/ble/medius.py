"""The Medius open sEMG profile (spec: ``sensors/ble/MEDIUS_PROFILE.md``): pure codec plus command sequence.

The codec half (`MediusInfo`, `encode_data_packet`, `MediusDecoder`, command/status helpers) has no I/O and
is shared by the host and the virtual peripheral. `MediusProfile` is the `DeviceProfile` the BLE source drives.
"""

from __future__ import annotations

import asyncio
import json
import struct
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from sensors.ble.profile import DecoderStats, NotifyHandler, SequenceUnwrapper
from sensors.stream import MUSCLES, SIDES, ChannelInfo, ChannelKind, Event, EventKind, Frame, StreamInfo

if TYPE_CHECKING:
    from bleak import BleakClient

SERVICE_UUID = "e251b121-9d5d-48f6-8a3e-5d1ef96ebcbd"
DATA_UUID = "e251b122-9d5d-48f6-8a3e-5d1ef96ebcbd"
INFO_UUID = "e251b123-9d5d-48f6-8a3e-5d1ef96ebcbd"
CONTROL_UUID = "e251b124-9d5d-48f6-8a3e-5d1ef96ebcbd"
STATUS_UUID = "e251b125-9d5d-48f6-8a3e-5d1ef96ebcbd"
BATTERY_SERVICE_UUID = "0000180f-0000-1000-8000-00805f9b34fb"
BATTERY_LEVEL_UUID = "00002a19-0000-1000-8000-00805f9b34fb"

PROFILE_NAME = "medius-semg"
PROFILE_VERSION = 1
INFO_MAX_BYTES = 512  # ATT attribute value maximum (Core Spec Vol 3 Part F §3.2.9)
HEADER_BYTES = 4
SEQ_MODULO = 65536

OP_START, OP_STOP, OP_SET_RATE, OP_IDENTIFY = 0x01, 0x02, 0x03, 0x04
REPLY = 0xF0
STATUS_OK, STATUS_UNKNOWN_OPCODE, STATUS_INVALID_PARAMETER, STATUS_INVALID_STATE = 0, 1, 2, 3
FLAG_OVERRUN, FLAG_CLIPPED = 0x01, 0x02
STATE_IDLE, STATE_STREAMING = 0, 1

_STATUS = struct.Struct("<HIIB")
_HEADER = struct.Struct("<HBB")
_CHANNEL_KINDS = {"emg": ChannelKind.EMG, "env": ChannelKind.ENVELOPE, "raw": ChannelKind.EMG,
                  "acc": ChannelKind.ACC, "gyro": ChannelKind.GYRO, "other": ChannelKind.OTHER}


# Placement hint codes of Info ``"at"`` (``"L.gmed"``): short, because Info must fit 512 bytes.
_MUSCLE_CODES = {"gluteus_medius": "gmed", "tfl": "tfl", "gluteus_maximus": "gmax"}
_SIDE_CODES = {"L": "left", "R": "right"}


class MediusProfileError(ValueError):
    """The device broke the Medius profile (bad Info, refused command, no reply)."""


def _parse_placement(code: str) -> tuple[str, str]:
    side, _, muscle = code.partition(".")
    names = {v: k for k, v in _MUSCLE_CODES.items()}
    if side not in _SIDE_CODES or muscle not in names:
        raise MediusProfileError(f"bad placement hint {code!r}; expected <L|R>.<{'|'.join(names)}>")
    return names[muscle], _SIDE_CODES[side]


def samples_per_packet(mtu: int, n_channels: int) -> int:
    """Largest ``n`` with ``4 + 2·n·C <= mtu - 3`` (at most 255), or 0 if not even one sample fits."""
    return max(0, min(255, (int(mtu) - 3 - HEADER_BYTES) // (2 * int(n_channels))))


@dataclass(frozen=True)
class MediusChannel:
    """One entry of Info ``channels`` (see the spec for the fields)."""

    label: str
    kind: str = "emg"
    gain: float = 1.0
    offset: float = 0.0
    unit: str = "V_adc"
    muscle: str | None = None
    side: str | None = None


@dataclass(frozen=True)
class MediusInfo:
    """The Info characteristic: what the device streams.

    Parameters
    ----------
    fs_hz : int
        Sample rate of every channel, Hz.
    samples_per_packet : int
        ``n``, samples per channel per data packet (1..255).
    channels : tuple of MediusChannel
        Packet column order.
    adc_bits : int
        ADC resolution; with each channel's offset it gives the clipping limits (`count_range`).
    fw : str
        Firmware version string.
    """

    fs_hz: int
    samples_per_packet: int
    channels: tuple[MediusChannel, ...]
    adc_bits: int = 12
    fw: str = "1.0.0"

    def __post_init__(self) -> None:
        object.__setattr__(self, "channels", tuple(self.channels))
        if not (isinstance(self.fs_hz, int) and 0 < self.fs_hz <= 65535):
            raise MediusProfileError(f"Info fs_hz must be an integer in 1..65535, got {self.fs_hz!r}")
        if not (isinstance(self.samples_per_packet, int) and 1 <= self.samples_per_packet <= 255):
            raise MediusProfileError(f"Info samples_per_packet must be in 1..255, got {self.samples_per_packet!r}")
        if not self.channels:
            raise MediusProfileError("Info lists no channels")
        for c in self.channels:
            if c.kind not in _CHANNEL_KINDS:
                raise MediusProfileError(f"Info channel {c.label!r}: unknown kind {c.kind!r}")
            if c.muscle is not None and c.muscle not in MUSCLES:
                raise MediusProfileError(f"Info channel {c.label!r}: unknown muscle {c.muscle!r}")
            if c.side is not None and c.side not in SIDES:
                raise MediusProfileError(f"Info channel {c.label!r}: unknown side {c.side!r}")

    @property
    def n_channels(self) -> int:
        return len(self.channels)

    @property
    def packet_bytes(self) -> int:
        return HEADER_BYTES + 2 * self.samples_per_packet * self.n_channels

    def to_json(self) -> bytes:
        """Encode as the Info value (compact: shared fields at the top); raises `MediusProfileError` above 512 B."""
        shared: dict[str, Any] = {}
        for key in ("kind", "gain", "offset", "unit"):
            values = {getattr(c, key) for c in self.channels}
            if len(values) == 1:
                shared[key] = values.pop()
        channels = []
        for c in self.channels:
            d: dict[str, Any] = {"label": c.label}
            for key in ("kind", "gain", "offset", "unit"):
                if key not in shared:
                    d[key] = getattr(c, key)
            if c.muscle is not None and c.side is not None:
                d["at"] = f"{c.side[0].upper()}.{_MUSCLE_CODES[c.muscle]}"
            channels.append(d)
        raw = json.dumps({"profile": PROFILE_NAME, "version": PROFILE_VERSION, "fw": self.fw, "fs_hz": self.fs_hz,
                          "samples_per_packet": self.samples_per_packet, "adc_bits": self.adc_bits, **shared,
                          "channels": channels}, separators=(",", ":")).encode("utf-8")
        if len(raw) > INFO_MAX_BYTES:
            raise MediusProfileError(f"Info is {len(raw)} bytes, more than the {INFO_MAX_BYTES}-byte ATT maximum "
                                     "(shorten labels or drop placement hints)")
        return raw

    @classmethod
    def from_json(cls, raw: bytes) -> "MediusInfo":
        """Parse and validate an Info value; any problem raises `MediusProfileError` naming it."""
        if len(raw) > INFO_MAX_BYTES:
            raise MediusProfileError(f"Info is {len(raw)} bytes, more than {INFO_MAX_BYTES}")
        try:
            d = json.loads(bytes(raw).decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise MediusProfileError(f"Info is not UTF-8 JSON: {exc}") from None
        if not isinstance(d, dict) or d.get("profile") != PROFILE_NAME:
            raise MediusProfileError(f"Info profile is not {PROFILE_NAME!r}")
        if d.get("version") != PROFILE_VERSION:
            raise MediusProfileError(f"unsupported Medius profile version {d.get('version')!r}")
        try:
            channels = []
            for i, c in enumerate(d["channels"]):
                if "id" in c and c["id"] != i:
                    raise MediusProfileError(f"Info channel {i} has id {c['id']!r}; ids must equal positions")
                muscle = side = None
                if "at" in c:
                    muscle, side = _parse_placement(str(c["at"]))
                channels.append(MediusChannel(
                    label=str(c["label"]), kind=str(c.get("kind", d.get("kind", "emg"))),
                    gain=float(c["gain"] if "gain" in c else d["gain"]),  # gain is required, here or on top
                    offset=float(c.get("offset", d.get("offset", 0.0))), unit=str(c.get("unit", d.get("unit", ""))),
                    muscle=muscle, side=side))
            return cls(fs_hz=d["fs_hz"], samples_per_packet=d["samples_per_packet"], channels=tuple(channels),
                       adc_bits=int(d.get("adc_bits", 0)), fw=str(d.get("fw", "")))
        except MediusProfileError:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            raise MediusProfileError(f"Info is missing or mistypes a field: {exc!r}") from None

    def count_range(self, channel: MediusChannel) -> tuple[int, int] | tuple[None, None]:
        """The ADC codes ``channel`` can take, from ``adc_bits`` and its offset (spec, Info): unsigned
        ``0 .. 2^bits - 1`` for an envelope or a channel with a positive offset (a biased ADC), two's complement
        ``-2^(bits-1) .. 2^(bits-1) - 1`` for a signal channel with offset 0; cut to int16. ``(None, None)``
        (the int16 limits) when ``adc_bits`` is absent or outside 1..16."""
        bits = self.adc_bits
        if not 1 <= bits <= 16:
            return None, None
        if channel.kind == "env" or channel.offset > 0:
            lo, hi = 0, 2**bits - 1
        else:
            lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
        return max(lo, -32768), min(hi, 32767)

    def stream_info(self, device: str = PROFILE_NAME) -> StreamInfo:
        """The `StreamInfo` of the data stream (``stream_id`` ``"emg"``, int16 counts)."""
        channels = tuple(
            ChannelInfo(label=c.label, kind=_CHANNEL_KINDS[c.kind], unit=c.unit, gain=c.gain, offset=c.offset,
                        muscle=c.muscle, side=c.side, **dict(zip(("count_min", "count_max"), self.count_range(c))))
            for c in self.channels
        )
        return StreamInfo(stream_id="emg", rate_hz=float(self.fs_hz), channels=channels, dtype="int16",
                          device=device)


def encode_data_packet(seq: int, flags: int, samples: np.ndarray) -> bytes:
    """Encode one Data notification.

    Parameters
    ----------
    seq : int
        Packet counter (taken modulo 65536).
    flags : int
        `FLAG_OVERRUN` | `FLAG_CLIPPED`.
    samples : ndarray, shape (n, n_channels), integer
        Counts; must fit int16.
    """
    samples = np.asarray(samples)
    if samples.ndim != 2 or not 1 <= samples.shape[0] <= 255:
        raise ValueError(f"samples must be (n, n_channels) with 1 <= n <= 255, got shape {samples.shape}")
    return _HEADER.pack(seq % SEQ_MODULO, flags & 0xFF, samples.shape[0]) + samples.astype("<i2").tobytes()


def command(opcode: int, fs_hz: int | None = None) -> bytes:
    """Bytes of a Control write (``fs_hz`` only for SET_RATE)."""
    if opcode == OP_SET_RATE:
        if fs_hz is None or not 0 < fs_hz <= 65535:
            raise ValueError(f"SET_RATE needs fs_hz in 1..65535, got {fs_hz!r}")
        return bytes([OP_SET_RATE]) + int(fs_hz).to_bytes(2, "little")
    return bytes([opcode])


def encode_status(battery_mv: int, overrun_samples: int, clipped_samples: int, state: int) -> bytes:
    return _STATUS.pack(battery_mv, overrun_samples & 0xFFFFFFFF, clipped_samples & 0xFFFFFFFF, state)


def decode_status(raw: bytes) -> dict[str, int]:
    """Status value -> dict; raises `MediusProfileError` on a wrong length."""
    if len(raw) != _STATUS.size:
        raise MediusProfileError(f"Status must be {_STATUS.size} bytes, got {len(raw)}")
    battery_mv, overrun, clipped, state = _STATUS.unpack(bytes(raw))
    return {"battery_mv": battery_mv, "overrun_samples": overrun, "clipped_samples": clipped, "state": state}


@dataclass
class MediusDecoder:
    """Decode Data, Status and Battery Level notifications of one streaming run. Never raises on bad bytes.

    Frames carry ``first_index = S·n`` with ``S`` the unwrapped packet counter; a counter jump yields a ``GAP``
    event before the frame, so the index always continues exactly past the gap.
    """

    info: MediusInfo
    source: str = PROFILE_NAME
    stats: DecoderStats = field(default_factory=DecoderStats)
    overrun_packets: int = 0
    clipped_packets: int = 0

    def __post_init__(self) -> None:
        self._unwrap = SequenceUnwrapper(SEQ_MODULO)
        self._n = self.info.samples_per_packet
        self._c = self.info.n_channels
        self._size = self.info.packet_bytes
        self._next_packet: int | None = None

    def _error(self, message: str, arrival_s: float, **payload: Any) -> Event:
        return Event(EventKind.ERROR, source=self.source, message=message, payload=payload, arrival_s=arrival_s)

    def feed(self, char_uuid: str, data: bytes, arrival_s: float) -> list[Frame | Event]:
        uuid = char_uuid.lower()
        if uuid == DATA_UUID:
            return self._feed_data(data, arrival_s)
        if uuid == STATUS_UUID:
            try:
                status = decode_status(data)
            except MediusProfileError as exc:
                self.stats.bad_packets += 1
                return [self._error(str(exc), arrival_s)]
            return [Event(EventKind.BATTERY, source=self.source, message=f"{status['battery_mv']} mV",
                          payload=status, arrival_s=arrival_s)]
        if uuid == BATTERY_LEVEL_UUID:
            if len(data) != 1 or data[0] > 100:
                self.stats.bad_packets += 1
                return [self._error(f"bad Battery Level value {bytes(data).hex()}", arrival_s)]
            return [Event(EventKind.BATTERY, source=self.source, message=f"{data[0]} %",
                          payload={"percent": int(data[0])}, arrival_s=arrival_s)]
        return []  # Control replies are consumed by the command sequence, not the decoder

    def _feed_data(self, data: bytes, arrival_s: float) -> list[Frame | Event]:
        if len(data) != self._size or data[3] != self._n:
            self.stats.bad_packets += 1
            return [self._error(f"data packet of {len(data)} bytes (n={data[3] if len(data) > 3 else '?'}); "
                                f"expected {self._size} bytes with n={self._n}", arrival_s, raw=bytes(data[:16]).hex())]
        seq, flags, _ = _HEADER.unpack_from(data)
        packet, lost = self._unwrap.next(seq)
        self.stats.packets += 1
        out: list[Frame | Event] = []
        if self._next_packet is None:
            self._next_packet = packet - lost
        if lost:
            self.stats.lost_packets += lost
            self.stats.lost_samples += lost * self._n
            out.append(Event(EventKind.GAP, source=self.source, message=f"{lost * self._n} samples lost",
                             payload={"stream_id": "emg", "start_index": (packet - lost) * self._n,
                                      "n_missing": lost * self._n}, arrival_s=arrival_s))
        if flags & FLAG_OVERRUN:
            self.overrun_packets += 1
        if flags & FLAG_CLIPPED:
            self.clipped_packets += 1
        counts = np.frombuffer(data, dtype="<i2", offset=HEADER_BYTES).reshape(self._n, self._c).astype(np.int16)
        out.append(Frame("emg", packet * self._n, counts, arrival_s))
        return out


class MediusProfile:
    """`DeviceProfile` for the Medius open sEMG profile.

    After `start`, ``resumed`` says whether the device was still streaming from before a link loss (no START
    sent, the packet counter continues, so the BLE source keeps its decoder and the gap stays exact).
    """

    name = PROFILE_NAME
    reply_timeout_s = 3.0

    def __init__(self) -> None:
        self.info: MediusInfo | None = None
        self.resumed = False
        self._replies: asyncio.Queue[bytes] | None = None

    def advertises(self, device_name: str | None, service_uuids: Sequence[str]) -> bool:
        return SERVICE_UUID in (u.lower() for u in service_uuids)

    async def start(self, client: "BleakClient", on_notify: NotifyHandler) -> list[StreamInfo]:
        self.info = MediusInfo.from_json(bytes(await client.read_gatt_char(INFO_UUID)))
        replies: asyncio.Queue[bytes] = asyncio.Queue()
        self._replies = replies
        await client.start_notify(CONTROL_UUID, lambda _c, d: replies.put_nowait(bytes(d)))
        for uuid in (STATUS_UUID, BATTERY_LEVEL_UUID, DATA_UUID):
            await client.start_notify(uuid, lambda c, d: on_notify(c.uuid, d))
        state = decode_status(bytes(await client.read_gatt_char(STATUS_UUID)))["state"]
        self.resumed = state == STATE_STREAMING
        if not self.resumed:
            await self._command(client, command(OP_START))
        return [self.info.stream_info(device=f"{PROFILE_NAME} {self.info.fw}")]

    async def _command(self, client: "BleakClient", raw: bytes) -> None:
        assert self._replies is not None
        await client.write_gatt_char(CONTROL_UUID, raw, response=True)
        try:
            reply = await asyncio.wait_for(self._replies.get(), self.reply_timeout_s)
        except TimeoutError:
            raise MediusProfileError(f"no Control reply to {raw.hex()} within {self.reply_timeout_s} s") from None
        if len(reply) != 3 or reply[0] != REPLY or reply[1] != raw[0]:
            raise MediusProfileError(f"malformed Control reply {reply.hex()} to {raw.hex()}")
        if reply[2] != STATUS_OK:
            raise MediusProfileError(f"device refused {raw.hex()} with status {reply[2]}")

    def new_decoder(self, streams: Sequence[StreamInfo]) -> MediusDecoder:
        if self.info is None:
            raise MediusProfileError("new_decoder() before start(): Info not read")
        return MediusDecoder(self.info)

    async def stop(self, client: "BleakClient") -> None:
        if not client.is_connected or self._replies is None:
            return
        try:
            await self._command(client, command(OP_STOP))
        except Exception as exc:
            if isinstance(exc, MediusProfileError) or client.is_connected:
                raise
            # the link dropped while stopping: nothing left to stop on our side
