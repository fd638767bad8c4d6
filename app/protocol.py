"""The session protocol: who was measured, how the electrodes sat, and which trials were recorded.

Qt-free. Everything here round-trips through plain JSON dicts, because it is stored in the session file: the
patient and session description in the file's ``meta``, each trial as a pair of ``trial_start`` /
``trial_stop`` events and each marker as a ``marker`` event (see ``sensors.recording``).

Times are seconds from the start of the recording (sample index / stream rate), the clock every stream shares.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass

from sensors.stream import MUSCLES, SIDES

PROTOCOL_VERSION = 1


class ProtocolError(ValueError):
    """A protocol description (meta or events) that cannot be understood."""


def _side(value: str | None, what: str, allow_none: bool = False) -> str | None:
    if value is None and allow_none:
        return None
    if value not in SIDES:
        raise ProtocolError(f"{what}: side must be one of {SIDES}, got {value!r}")
    return value


def _muscle(value: str | None, what: str) -> str:
    if value not in MUSCLES:
        raise ProtocolError(f"{what}: muscle must be one of {MUSCLES}, got {value!r}")
    return value


def other_side(side: str) -> str:
    """The contralateral side label."""
    return "right" if _side(side, "other_side") == "left" else "left"


@dataclass(frozen=True)
class Patient:
    """A pseudonymous patient: no names, no birth dates, just a code chosen by the clinic."""

    code: str
    affected_side: str | None = None  # None: no affected side declared (e.g. a healthy volunteer)
    notes: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.code, str) or not self.code.strip():
            raise ProtocolError("patient code must be a non-empty string")
        _side(self.affected_side, "patient affected_side", allow_none=True)


@dataclass(frozen=True)
class Placement:
    """Where one EMG channel's electrodes sat, and which recorded channel carries it."""

    muscle: str
    side: str
    stream_id: str
    channel: int  # column in the stream
    site: str = ""  # free text, e.g. "50 % crest-trochanter (SENIAM)"; stored for comparability between sessions
    inter_electrode_mm: float | None = None

    def __post_init__(self) -> None:
        _muscle(self.muscle, "placement")
        _side(self.side, "placement")
        if not isinstance(self.channel, int) or self.channel < 0:
            raise ProtocolError(f"placement {self.key}: channel must be a non-negative int, got {self.channel!r}")

    @property
    def key(self) -> str:
        """Analysis key, e.g. ``gluteus_medius_right``."""
        return f"{self.muscle}_{self.side}"


class TrialType(str, enum.Enum):
    REST = "rest"
    MVIC = "mvic"  # maximal voluntary isometric contraction of one muscle on one side
    EXERCISE = "exercise"  # repetitions of a movement on one side
    HOLD = "hold"  # sustained submaximal hold on one side, for fatigue


@dataclass(frozen=True)
class Trial:
    """One trial, ``start_s`` to ``stop_s`` on the session clock.

    ``muscle`` is required for MVIC trials; ``side`` for MVIC, exercise and hold; ``movement`` names the
    exercise (e.g. ``"side_lying_abduction"``, ``"clam"``).
    """

    trial_id: str
    type: TrialType
    start_s: float
    stop_s: float
    side: str | None = None
    muscle: str | None = None
    movement: str = ""
    notes: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "type", TrialType(self.type))
        if not (0 <= self.start_s < self.stop_s):
            raise ProtocolError(f"trial {self.trial_id!r}: need 0 <= start_s < stop_s, got {self.start_s}, {self.stop_s}")
        if self.type is not TrialType.REST:
            _side(self.side, f"trial {self.trial_id!r}")
        else:
            _side(self.side, f"trial {self.trial_id!r}", allow_none=True)
        if self.type is TrialType.MVIC:
            _muscle(self.muscle, f"MVIC trial {self.trial_id!r}")
        if self.type is TrialType.EXERCISE and not self.movement:
            raise ProtocolError(f"exercise trial {self.trial_id!r} needs a movement name")

    @property
    def duration_s(self) -> float:
        return self.stop_s - self.start_s

    def payload(self) -> dict:
        d = dataclasses.asdict(self)
        d["type"] = self.type.value
        del d["start_s"], d["stop_s"]
        return d


@dataclass(frozen=True)
class Marker:
    time_s: float
    text: str


@dataclass(frozen=True)
class SessionProtocol:
    """Everything a session file says about the measurement besides the samples."""

    patient: Patient
    date: str  # ISO date of the session, e.g. "2026-11-25"
    placements: tuple[Placement, ...]
    devices: tuple[str, ...] = ()
    trials: tuple[Trial, ...] = ()
    markers: tuple[Marker, ...] = ()
    mvic_protocol: str = ""  # e.g. "3 x 5 s side-lying abduction against a strap, 1 min rest"
    notes: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "placements", tuple(self.placements))
        object.__setattr__(self, "devices", tuple(self.devices))
        object.__setattr__(self, "trials", tuple(sorted(self.trials, key=lambda t: t.start_s)))
        object.__setattr__(self, "markers", tuple(self.markers))
        keys = [p.key for p in self.placements]
        if len(set(keys)) != len(keys):
            raise ProtocolError(f"each muscle/side may be placed once; got {keys}")
        ids = [t.trial_id for t in self.trials]
        if len(set(ids)) != len(ids):
            raise ProtocolError(f"trial ids must be unique; got {ids}")

    # --- queries -----------------------------------------------------------------------------------------
    def placement(self, muscle: str, side: str) -> Placement | None:
        for p in self.placements:
            if p.muscle == muscle and p.side == side:
                return p
        return None

    def trials_of(self, type_: TrialType | str) -> list[Trial]:
        type_ = TrialType(type_)
        return [t for t in self.trials if t.type is type_]

    # --- serialisation -----------------------------------------------------------------------------------
    def to_meta(self) -> dict:
        """The JSON dict stored as the session file's ``meta`` (trials and markers go to events)."""
        return {
            "protocol_version": PROTOCOL_VERSION,
            "patient_code": self.patient.code,
            "patient": dataclasses.asdict(self.patient),
            "date": self.date,
            "devices": list(self.devices),
            "placements": [dataclasses.asdict(p) for p in self.placements],
            "mvic_protocol": self.mvic_protocol,
            "notes": self.notes,
        }

    def to_events(self) -> list[dict]:
        """Trials and markers as session-file events (``kind``, ``stream_id``, ``index``, ``time_s``, ``payload``)."""
        out = []
        for t in self.trials:
            out.append(dict(kind="trial_start", stream_id=None, index=None, time_s=t.start_s, payload=t.payload()))
            out.append(dict(kind="trial_stop", stream_id=None, index=None, time_s=t.stop_s, payload={"trial_id": t.trial_id}))
        for m in self.markers:
            out.append(dict(kind="marker", stream_id=None, index=None, time_s=m.time_s, payload={"text": m.text}))
        return sorted(out, key=lambda e: e["time_s"])

    @classmethod
    def from_file(cls, meta: dict, events: list[dict], stream_rates_hz: dict[str, float] | None = None) -> "SessionProtocol":
        """Rebuild from a session file's ``meta`` and ``events``.

        Events that carry a sample ``index`` but no ``time_s`` are timed with ``stream_rates_hz``. Unknown event
        kinds (connection, battery, reps written live, ...) are ignored here. A trial started but never stopped
        (a recording cut short) ends at the last event time or is dropped if nothing follows it.
        """
        try:
            version = int(meta.get("protocol_version", PROTOCOL_VERSION))
        except (TypeError, ValueError):
            raise ProtocolError(f"protocol_version must be an int, got {meta.get('protocol_version')!r}") from None
        if version > PROTOCOL_VERSION:
            raise ProtocolError(f"session protocol version {version} is newer than this Medius ({PROTOCOL_VERSION})")
        try:
            if "patient" in meta:
                patient = Patient(**meta["patient"])
            else:  # a file written without the protocol model (e.g. the recorder's demo): its conventional keys
                notes = meta.get("session") if isinstance(meta.get("session"), dict) else {}
                patient = Patient(code=meta["patient_code"], affected_side=notes.get("affected_side"))
            placements = [Placement(**p) for p in meta.get("placements", [])]
        except (KeyError, TypeError) as exc:
            raise ProtocolError(f"session meta lacks or garbles the patient/placements: {exc}") from None

        def when(ev: dict) -> float:
            if ev.get("time_s") is not None:
                return float(ev["time_s"])
            rate = (stream_rates_hz or {}).get(ev.get("stream_id"))
            if ev.get("index") is None or rate is None:
                raise ProtocolError(f"event {ev.get('kind')!r} has neither time_s nor a stream index with a known rate")
            return float(ev["index"]) / rate

        open_trials: dict[str, tuple[float, dict]] = {}
        trials, markers, last_s = [], [], 0.0
        ours = [e for e in events if e["kind"] in ("trial_start", "trial_stop", "marker")]
        for ev in sorted(ours, key=when):
            t_s = when(ev)
            last_s = max(last_s, t_s)
            payload = ev.get("payload") or {}
            if ev["kind"] == "trial_start":
                open_trials[_trial_id(payload)] = (t_s, payload)
            elif ev["kind"] == "trial_stop":
                tid = _trial_id(payload)
                if tid not in open_trials:
                    raise ProtocolError(f"trial_stop for {tid!r} without a trial_start")
                start_s, p = open_trials.pop(tid)
                trials.append(_trial(p, start_s, t_s))
            elif ev["kind"] == "marker":
                markers.append(Marker(t_s, str(payload.get("text", ""))))
        for start_s, p in open_trials.values():
            if last_s > start_s:
                trials.append(_trial(p, start_s, last_s))
        return cls(
            patient=patient,
            date=str(meta.get("date") or str(meta.get("created_utc", ""))[:10]),
            placements=tuple(placements),
            devices=tuple(meta.get("devices", ())),
            trials=tuple(trials),
            markers=tuple(markers),
            mvic_protocol=str(meta.get("mvic_protocol", "")),
            notes=str(meta.get("notes", "")),
        )


def _trial_id(payload: dict) -> str:
    # the recorder's own events number trials ("trial": int); the protocol names them ("trial_id": str)
    tid = payload.get("trial_id", payload.get("trial"))
    if tid is None:
        raise ProtocolError(f"trial event without a trial id: {payload!r}")
    return str(tid)


_TYPES = {t.value for t in TrialType}


def _trial(payload: dict, start_s: float, stop_s: float) -> Trial:
    fields = {f.name for f in dataclasses.fields(Trial)} - {"start_s", "stop_s", "trial_id"}
    p = {k: v for k, v in payload.items() if k in fields and v is not None}
    # the recorder stores a live source's trial with "type" = its label (the movement, if any) and the
    # trial kind under "kind" (sensors.recording.events); the protocol's own events put the kind in "type"
    if p.get("type") not in _TYPES:
        if payload.get("kind") not in _TYPES:
            raise ProtocolError(f"trial event payload {payload!r}: no trial type among {sorted(_TYPES)}")
        p.setdefault("movement", p.get("type") or "")
        p["type"] = payload["kind"]
    try:
        return Trial(trial_id=_trial_id(payload), start_s=start_s, stop_s=stop_s, **p)
    except TypeError as exc:
        raise ProtocolError(f"trial event payload {payload!r}: {exc}") from None
