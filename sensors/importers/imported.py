"""What every reader returns: a whole recording in memory, in the file's own counts, plus its events.

Readers are deliberately whole-file: the formats we import are exports of finished recordings (minutes, not
hours), and holding one in memory lets every reader validate everything before a session file is touched.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sensors.stream import StreamInfo

#: Upper bound on values (samples x channels, all streams) one import may hold: 4 GB as float64. An hour of
#: 8 channels at 2 kHz is 58 M values; a header claiming more than this is corrupt, not big.
MAX_VALUES = 500_000_000
#: Sampling rates outside this range are header corruption, not exotic hardware.
MAX_RATE_HZ = 1_000_000.0
#: More channels than this in one file is a corrupt header.
MAX_CHANNELS = 1024


class ImportFormatError(ValueError):
    """A file cannot be imported; the message names the file and says what is wrong with it."""

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path.name}: {problem}")


@dataclass(frozen=True)
class ImportedEvent:
    """An annotation or marker found in the imported file.

    Parameters
    ----------
    kind : str
        Session event kind; readers emit ``"marker"`` (payload ``{"text": ...}``).
    time_s : float
        Seconds since the start of the recording (sample 0 of a stream starting at ``start_s == 0``).
    payload : dict
        JSON-serialisable details (``text``, ``duration_s``, ``source``).
    stream_id, index : str or None, int or None
        The sample the event belongs to, when the reader knows it better than ``time_s`` does (e.g. XDF, whose
        streams carry their own time stamps); otherwise `import_file` derives it from ``time_s``.
    """

    kind: str
    time_s: float
    payload: dict = field(default_factory=dict)
    stream_id: str | None = None
    index: int | None = None


@dataclass
class ImportedRecording:
    """A recording read from another system's file.

    Parameters
    ----------
    path : Path
        The file that was read.
    format : str
        Reader name: ``"edf"``, ``"csv"``, ``"uci"``, ``"delsys"``, ``"opensignals"``, ``"xdf"``, ``"wfdb"``.
    streams : list of StreamInfo
        One per sample clock, channel order as in ``counts``. No muscle/side yet (`import_file` adds them).
    counts : dict of str to ndarray, shape (n_samples, n_channels)
        Raw values per stream in ``StreamInfo.dtype`` (integer device counts where the file has them, float64 where
        the file holds decimal text); ``StreamInfo.to_physical`` gives physical units.
    aliases : dict of str to tuple of tuple of str
        Per stream, per channel: other names the file gives the channel (its number, a short name), accepted by
        `resolve_channel` besides the label.
    start_s : dict of str to float
        Time of each stream's sample 0 relative to the recording start (0 for single-clock formats).
    gaps : dict of str to list of (int, int)
        Per stream, ``(start_index, n_missing)`` spans the file says were never recorded (XDF segment breaks).
    events : list of ImportedEvent
        Annotations and markers.
    notes : list of str
        Things the user should know (skipped streams, header/content disagreements), shown by the CLI and stored
        in the session metadata.
    meta : dict
        JSON-serialisable file-level metadata worth keeping (device, start date, ...). Never patient identity.
    """

    path: Path
    format: str
    streams: list[StreamInfo]
    counts: dict[str, np.ndarray]
    aliases: dict[str, tuple[tuple[str, ...], ...]] = field(default_factory=dict)
    start_s: dict[str, float] = field(default_factory=dict)
    gaps: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    events: list[ImportedEvent] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.streams:
            raise ImportFormatError(self.path, "no numeric signal with a sampling rate found")
        ids = [s.stream_id for s in self.streams]
        if len(set(ids)) != len(ids):
            raise ValueError(f"duplicate stream ids {ids}")
        total = 0
        for s in self.streams:
            c = self.counts[s.stream_id]
            if c.ndim != 2 or c.shape[1] != s.n_channels or c.dtype != np.dtype(s.dtype):
                raise ValueError(f"stream {s.stream_id}: counts {c.shape} {c.dtype} do not match {s.n_channels} x {s.dtype}")
            total += c.size
            self.aliases.setdefault(s.stream_id, tuple(() for _ in s.channels))
            self.start_s.setdefault(s.stream_id, 0.0)
            self.gaps.setdefault(s.stream_id, [])
        check_size(self.path, total)

    def stream(self, stream_id: str) -> StreamInfo:
        for s in self.streams:
            if s.stream_id == stream_id:
                return s
        raise KeyError(stream_id)

    def physical(self, stream_id: str) -> np.ndarray:
        """Physical values of one stream, shape (n_samples, n_channels), float64."""
        return self.stream(stream_id).to_physical(self.counts[stream_id])

    def channel_names(self) -> list[str]:
        """One human-readable line per channel (label, aliases, stream, rate, unit) for listings and errors."""
        out = []
        for s in self.streams:
            for c, al in zip(s.channels, self.aliases[s.stream_id]):
                also = f" (also {', '.join(repr(a) for a in al)})" if al else ""
                out.append(f"{c.label!r}{also} [stream {s.stream_id}, {c.kind.value}, {s.rate_hz:g} Hz, {c.unit}]")
        return out

    def resolve_channel(self, name: str) -> tuple[str, int]:
        """Find the channel a user means by ``name``.

        ``name`` is a channel label, one of its aliases (e.g. the channel number the file uses), or either of
        those qualified by the stream as ``"STREAM/NAME"``. Labels are tried before aliases, so a label never loses
        to another channel's number.

        Returns
        -------
        (stream_id, channel_index)

        Raises
        ------
        ImportFormatError
            When no channel or more than one channel matches; the message lists every channel.
        """
        qualified = None
        if "/" in name:
            sid, _, rest = name.partition("/")
            if any(s.stream_id == sid for s in self.streams):
                qualified = (sid, rest)
        for by_alias in (False, True):
            hits = []
            for s in self.streams:
                want = name
                if qualified is not None:
                    if s.stream_id != qualified[0]:
                        continue
                    want = qualified[1]
                for i, (c, al) in enumerate(zip(s.channels, self.aliases[s.stream_id])):
                    if (want in al) if by_alias else (c.label == want):
                        hits.append((s.stream_id, i))
            if len(hits) == 1:
                return hits[0]
            if len(hits) > 1:
                where = ", ".join(f"{sid}/{self.stream(sid).channels[i].label}" for sid, i in hits)
                raise ImportFormatError(self.path, f"channel {name!r} is ambiguous ({where}); qualify it as STREAM/CHANNEL")
        listing = "\n  ".join(self.channel_names())
        raise ImportFormatError(self.path, f"no channel {name!r}; available channels:\n  {listing}")


def check_size(path: Path, n_values: int) -> None:
    """Refuse recordings whose (declared or actual) size is beyond `MAX_VALUES`."""
    if n_values > MAX_VALUES:
        raise ImportFormatError(path, f"{n_values} values is beyond the importer's limit of {MAX_VALUES} (corrupt header?)")


def check_rate(path: Path, rate_hz: float, what: str = "sampling rate") -> float:
    """Return ``rate_hz`` as float if it is a plausible sampling rate, else raise `ImportFormatError`."""
    try:
        rate = float(rate_hz)
    except (TypeError, ValueError):
        raise ImportFormatError(path, f"{what} {rate_hz!r} is not a number") from None
    if not (np.isfinite(rate) and 0 < rate <= MAX_RATE_HZ):
        raise ImportFormatError(path, f"{what} {rate:g} Hz is not a usable rate (must be > 0 and <= {MAX_RATE_HZ:g})")
    return rate
