"""The one data contract every source speaks: stream descriptions, frames and events.

Samples are *indexed*, not timestamped: a `Frame` says where its first sample sits in the stream
(``first_index``, samples since the stream started, unwrapped from the device's packet counter), and a jump in
the index is a gap. Host arrival time is carried for diagnostics only.

Raw values stay in device counts so recordings are lossless; `ChannelInfo` says how to turn counts into
physical units: ``value = (count - offset) * gain``.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass, field
from typing import AsyncIterator, Protocol, Sequence, Union, runtime_checkable

import numpy as np

#: Muscle names used throughout Medius (channel hints, analysis keys, importer ``--map``).
MUSCLES = ("gluteus_medius", "tfl", "gluteus_maximus")
SIDES = ("left", "right")


class ChannelKind(str, enum.Enum):
    """What a channel measures; decides which analysis may use it."""

    EMG = "emg"  # raw surface EMG (spectral analysis possible if the rate allows)
    ENVELOPE = "env"  # an analogue/on-board envelope: amplitude only, never spectra
    ACC = "acc"
    GYRO = "gyro"
    QUAT = "quat"
    ANGLE = "angle"  # goniometer / joint angle
    OTHER = "other"


@dataclass(frozen=True)
class ChannelInfo:
    """One channel of a stream.

    Parameters
    ----------
    label : str
        Device label, e.g. ``"A1"`` or ``"emg3"``.
    kind : ChannelKind
        What the channel measures.
    unit : str
        Physical unit after scaling, e.g. ``"mV"``, ``"V_adc"``, ``"g"``, ``"deg/s"``.
    gain : float
        Physical units per count.
    offset : float
        Count that maps to zero, so ``value = (count - offset) * gain``.
    muscle, side : str or None
        Placement hints (`MUSCLES`, `SIDES`), when the device or user knows them.
    count_min, count_max : int or None
        The lowest and highest count the device's converter can produce (its rails, e.g. 0 and 1023 for a
        10-bit ADC stored in int16); a sample at either is clipped. None: the stream dtype's limits.
    """

    label: str
    kind: ChannelKind = ChannelKind.EMG
    unit: str = "V"
    gain: float = 1.0
    offset: float = 0.0
    muscle: str | None = None
    side: str | None = None
    count_min: int | None = None
    count_max: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", ChannelKind(self.kind))
        if (self.count_min is None) != (self.count_max is None):
            raise ValueError(f"channel {self.label!r}: give both count_min and count_max, or neither")
        if self.count_min is not None:
            lo, hi = int(self.count_min), int(self.count_max)
            if lo != self.count_min or hi != self.count_max or not lo < hi:
                raise ValueError(f"channel {self.label!r}: count range must be integers with count_min < "
                                 f"count_max, got {self.count_min!r}..{self.count_max!r}")
            object.__setattr__(self, "count_min", lo)
            object.__setattr__(self, "count_max", hi)
        if self.muscle is not None and self.muscle not in MUSCLES:
            raise ValueError(f"unknown muscle {self.muscle!r}; expected one of {MUSCLES}")
        if self.side is not None and self.side not in SIDES:
            raise ValueError(f"unknown side {self.side!r}; expected one of {SIDES}")

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["kind"] = self.kind.value
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ChannelInfo":
        """Inverse of `to_dict`; dicts written before ``count_min``/``count_max`` existed load with None."""
        return cls(**d)


@dataclass(frozen=True)
class StreamInfo:
    """Description of one stream: one sample clock, one dtype, several channels.

    Parameters
    ----------
    stream_id : str
        Unique within a source, e.g. ``"emg"`` or ``"imu"``.
    rate_hz : float
        Nominal sampling rate in Hz.
    channels : tuple of ChannelInfo
        Column order of every `Frame` of this stream.
    dtype : str
        NumPy dtype of the raw counts in frames (``"int16"``, ``"int32"``, ``"float32"``, ...).
    spectral_ok : bool
        False where the rate or format cannot support spectral fatigue indices; `note` says why.
    note : str
        Human-readable caveat shown by the UI and stored in recordings.
    device : str
        Device/profile name, for file headers.
    """

    stream_id: str
    rate_hz: float
    channels: tuple[ChannelInfo, ...]
    dtype: str = "int16"
    spectral_ok: bool = True
    note: str = ""
    device: str = ""

    def __post_init__(self) -> None:
        if not (self.rate_hz > 0 and np.isfinite(self.rate_hz)):
            raise ValueError(f"stream {self.stream_id!r}: rate must be a positive finite number, got {self.rate_hz!r}")
        if not self.channels:
            raise ValueError(f"stream {self.stream_id!r} has no channels")
        object.__setattr__(self, "channels", tuple(self.channels))
        np.dtype(self.dtype)  # raises on nonsense

    @property
    def n_channels(self) -> int:
        return len(self.channels)

    def gains(self) -> np.ndarray:
        """Per-channel gain, shape ``(n_channels,)``, float64."""
        return np.array([c.gain for c in self.channels], dtype=np.float64)

    def offsets(self) -> np.ndarray:
        """Per-channel offset in counts, shape ``(n_channels,)``, float64."""
        return np.array([c.offset for c in self.channels], dtype=np.float64)

    def count_range(self, column: int) -> tuple[int, int] | None:
        """Clipping limits ``(lowest, highest)`` of channel ``column`` in counts: its declared ADC range, else
        the integer dtype's limits; None for a float-coded stream that declares none."""
        c = self.channels[column]
        if c.count_min is not None:
            return c.count_min, c.count_max
        if np.issubdtype(np.dtype(self.dtype), np.integer):
            info = np.iinfo(np.dtype(self.dtype))
            return int(info.min), int(info.max)
        return None

    def to_physical(self, counts: np.ndarray) -> np.ndarray:
        """Scale raw counts ``(n_samples, n_channels)`` to physical units (float64)."""
        return (np.asarray(counts, dtype=np.float64) - self.offsets()) * self.gains()

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["channels"] = [c.to_dict() for c in self.channels]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "StreamInfo":
        d = dict(d)
        d["channels"] = tuple(ChannelInfo.from_dict(c) for c in d["channels"])
        return cls(**d)


@dataclass(frozen=True, eq=False)
class Frame:
    """A block of consecutive samples of one stream.

    Parameters
    ----------
    stream_id : str
        Which `StreamInfo` this belongs to.
    first_index : int
        Index of the first row in the stream (samples since the stream started, never wraps).
    counts : ndarray, shape (n_samples, n_channels)
        Raw device counts in the stream's dtype.
    arrival_s : float
        Host monotonic clock at arrival (diagnostics only; never used as a sample time).
    """

    stream_id: str
    first_index: int
    counts: np.ndarray
    arrival_s: float = 0.0

    @property
    def n_samples(self) -> int:
        return int(self.counts.shape[0])

    @property
    def end_index(self) -> int:
        """One past the index of the last sample."""
        return self.first_index + self.n_samples


class EventKind(str, enum.Enum):
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"
    RECONNECTING = "reconnecting"
    ERROR = "error"
    BATTERY = "battery"
    GAP = "gap"  # samples [start_index, start_index + n_missing) of a stream never arrived
    STREAMS = "streams"  # the source (re)declared its streams; payload["streams"] is a list of StreamInfo
    END = "end"  # a finite source (replay, import) has delivered everything
    TRIAL = "trial"  # a protocol trial started or stopped; payload: trial, kind, phase ("start"/"stop"), index, ...
    MARKER = "marker"  # a user or device marker at payload["index"] of payload["stream_id"]
    # A recorded session event replayed that has no live kind (a repetition, a stored device event);
    # payload is the stored event: {"kind", "stream_id", "index", "time_s", "payload"}.
    ANNOTATION = "annotation"


@dataclass(frozen=True)
class Event:
    """Something the UI should show or the recorder should store, other than samples."""

    kind: EventKind
    source: str = ""
    message: str = ""
    payload: dict = field(default_factory=dict)
    arrival_s: float = 0.0


Item = Union[Frame, Event]


@runtime_checkable
class Source(Protocol):
    """Anything that produces frames: a BLE device, the simulator, a replayed recording.

    A source is driven on the sensor thread's asyncio loop. ``streams`` is valid after ``start()`` returns;
    ``items()`` yields frames and events until ``stop()`` is called or the source ends (then it yields an
    ``END`` event and returns). A source never raises out of ``items()`` for bad input from the outside
    world: it yields an ``ERROR`` event and carries on or ends.
    """

    name: str

    @property
    def streams(self) -> Sequence[StreamInfo]: ...

    async def start(self) -> None: ...

    def items(self) -> AsyncIterator[Item]: ...

    async def stop(self) -> None: ...
