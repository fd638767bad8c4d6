"""What every BLE device profile provides: how to recognise it, how to start it, how to decode it.

A profile is a pure decoder plus its command sequence. Decoding never raises for bad bytes from the air: a
decoder returns an ``ERROR`` event, counts what it dropped and carries on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Protocol, Sequence

from sensors.stream import Event, Frame, StreamInfo

if TYPE_CHECKING:  # bleak is imported for typing only; the device module imports it for real
    from bleak import BleakClient

NotifyHandler = Callable[[str, bytearray], None]  # (characteristic uuid, data); must only enqueue


@dataclass
class DecoderStats:
    """Counters a decoder keeps, shown in the UI and stored with recordings."""

    packets: int = 0
    bad_packets: int = 0  # wrong length, CRC failure, unknown id: dropped
    lost_packets: int = 0  # inferred from sequence counters
    lost_samples: int = 0  # per channel


class Decoder(Protocol):
    stats: DecoderStats

    def feed(self, char_uuid: str, data: bytes, arrival_s: float) -> list[Frame | Event]:
        """Decode one notification. Never raises on malformed input."""
        ...


class DeviceProfile(Protocol):
    name: str  # e.g. "medius-semg", "bitalino", "myo", "ganglion", "metamotion"

    def advertises(self, device_name: str | None, service_uuids: Sequence[str]) -> bool:
        """True if an advertisement looks like this device."""
        ...

    async def start(self, client: "BleakClient", on_notify: NotifyHandler) -> list[StreamInfo]:
        """Read device info, subscribe (``on_notify`` is called for every notification) and start streaming."""
        ...

    def new_decoder(self, streams: Sequence[StreamInfo]) -> Decoder:
        """A fresh decoder for one streaming run (sequence state starts at zero)."""
        ...

    async def stop(self, client: "BleakClient") -> None:
        """Stop streaming; must tolerate an already-disconnected client."""
        ...


class SequenceUnwrapper:
    """Unwrap a wrapping packet counter into a monotonic packet number and report gaps.

    Parameters
    ----------
    modulo : int
        Counter period (65536 for uint16, 16 for BITalino's 4-bit counter, ...).
    """

    def __init__(self, modulo: int) -> None:
        self.modulo = int(modulo)
        self._last: int | None = None  # unwrapped number of the last packet

    def reset(self) -> None:
        self._last = None

    def next(self, seq: int) -> tuple[int, int]:
        """Return ``(unwrapped_packet_number, packets_lost_before_this_one)``."""
        seq = int(seq) % self.modulo
        if self._last is None:
            self._last = seq
            return seq, 0
        step = (seq - self._last) % self.modulo  # 1 = contiguous; 0 = duplicate/full wrap (treated as lost)
        if step == 0:
            step = self.modulo
        self._last += step
        return self._last, step - 1
