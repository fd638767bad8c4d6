"""A session in memory for analysis: the protocol plus every stream as physical values on its own clock."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.protocol import SessionProtocol
from sensors.stream import ChannelInfo, ChannelKind, StreamInfo

#: physical unit -> factor to microvolts, for amplitude units people can compare across devices
_TO_UV = {"V": 1e6, "mV": 1e3, "uV": 1.0, "µV": 1.0}


class AnalysisError(ValueError):
    """The session cannot be analysed as asked (missing channels, no trials, ...); the message says why."""


@dataclass
class StreamData:
    """One stream: description, physical values ``(n, ch)`` float64 with NaN in gaps, and raw counts."""

    info: StreamInfo
    physical: np.ndarray
    counts: np.ndarray | None = None  # raw device counts, for saturation; None when unavailable

    def __post_init__(self) -> None:
        if self.physical.ndim != 2 or self.physical.shape[1] != self.info.n_channels:
            raise AnalysisError(f"stream {self.info.stream_id!r}: data shape {self.physical.shape} does not match "
                                f"{self.info.n_channels} channels")

    @property
    def rate_hz(self) -> float:
        return self.info.rate_hz

    def index(self, time_s: float) -> int:
        """Sample index of a session time, clipped to the stream."""
        return int(min(max(round(time_s * self.rate_hz), 0), self.physical.shape[0]))


@dataclass(frozen=True)
class EmgChannel:
    """Where one muscle/side's EMG lives, with what the analysis needs to know about it."""

    key: str  # e.g. "gluteus_medius_right"
    muscle: str
    side: str
    stream: StreamData
    column: int

    @property
    def info(self) -> ChannelInfo:
        return self.stream.info.channels[self.column]

    @property
    def rate_hz(self) -> float:
        return self.stream.rate_hz

    @property
    def to_uv(self) -> float:
        """Factor from the channel's unit to µV; NaN when the unit is not a voltage (e.g. ADC counts)."""
        return _TO_UV.get(self.info.unit, math.nan)

    def values(self) -> np.ndarray:
        return self.stream.physical[:, self.column]


@dataclass
class SessionData:
    protocol: SessionProtocol
    streams: dict[str, StreamData]
    source: str = ""  # file path, for reports
    recorded_mains_hz: float | None = None  # the mains frequency the session's meta records (filters.mains_hz)

    def emg_channels(self) -> list[EmgChannel]:
        """Every placed EMG channel: the protocol's placements first, channel hints where no placement exists."""
        found: dict[str, EmgChannel] = {}
        for p in self.protocol.placements:
            if p.stream_id not in self.streams:
                raise AnalysisError(f"placement {p.key} names stream {p.stream_id!r}, which the session lacks")
            s = self.streams[p.stream_id]
            if p.channel >= s.info.n_channels:
                raise AnalysisError(f"placement {p.key}: stream {p.stream_id!r} has no channel {p.channel}")
            found[p.key] = EmgChannel(p.key, p.muscle, p.side, s, p.channel)
        for s in self.streams.values():
            for col, ch in enumerate(s.info.channels):
                if ch.kind in (ChannelKind.EMG, ChannelKind.ENVELOPE) and ch.muscle and ch.side:
                    key = f"{ch.muscle}_{ch.side}"
                    found.setdefault(key, EmgChannel(key, ch.muscle, ch.side, s, col))
        return sorted(found.values(), key=lambda c: c.key)

    def emg(self, muscle: str, side: str) -> EmgChannel | None:
        for c in self.emg_channels():
            if c.muscle == muscle and c.side == side:
                return c
        return None

    def thigh_imu(self, side: str) -> tuple[np.ndarray, np.ndarray, float] | None:
        """``(acc (n, 3), gyro_dps (n, 3), rate_hz)`` of the IMU on that side's thigh, if one was recorded."""
        for s in self.streams.values():
            acc = [i for i, c in enumerate(s.info.channels) if c.kind is ChannelKind.ACC and c.side == side]
            gyro = [i for i, c in enumerate(s.info.channels) if c.kind is ChannelKind.GYRO and c.side == side]
            if len(acc) == 3 and len(gyro) == 3:
                units = {s.info.channels[i].unit for i in gyro}
                scale = 180.0 / math.pi if units == {"rad/s"} else 1.0
                return s.physical[:, acc], s.physical[:, gyro] * scale, s.rate_hz
        return None


    def joint_angles(self, side: str | None) -> list[tuple[str, np.ndarray, float]]:
        """``(label, angle_deg (n,), rate_hz)`` of every joint-angle channel on that side or without a side
        (a goniometer, or an IMU that reports the working side's angles)."""
        out = []
        for s in self.streams.values():
            for i, c in enumerate(s.info.channels):
                if c.kind is ChannelKind.ANGLE and c.side in (side, None):
                    out.append((c.label, s.physical[:, i], s.rate_hz))
        return out


def load_session(path: str | Path) -> SessionData:
    """Read a ``.medius`` session file completely (streams as physical values, NaN in gaps)."""
    from sensors.recording import SessionReader

    reader = SessionReader(path)
    try:
        streams = {}
        for info in reader.streams:
            n = reader.n_samples(info.stream_id)
            counts = reader.read_counts(info.stream_id, 0, n)
            physical = reader.read_physical(info.stream_id, 0, n)
            streams[info.stream_id] = StreamData(info, physical, counts)
        rates = {sid: s.rate_hz for sid, s in streams.items()}
        protocol = SessionProtocol.from_file(reader.meta, reader.events(), rates)
        recorded = recorded_mains_hz(reader.meta)
    finally:
        reader.close()
    return SessionData(protocol, streams, str(path), recorded)


def recorded_mains_hz(meta: dict) -> float | None:
    """The mains frequency a session's meta records (``filters.mains_hz``), or None.

    Only a real mains frequency is taken; anything else (absent, 0, garbled) means "not recorded".
    """
    filters = meta.get("filters")
    mains = filters.get("mains_hz") if isinstance(filters, dict) else None
    return float(mains) if isinstance(mains, (int, float)) and mains in (50, 60) else None
