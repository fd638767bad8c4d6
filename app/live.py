"""The live session, Qt-free: drain the sensor queue, record, run the causal pipeline, keep display windows.

This is the GUI thread's half of the data path in design.md. A Qt timer (or the headless runner) calls
`LiveSession.pump` ~30 times a second; it drains *everything* waiting, so recording and DSP are lossless and
only the display is a sampled view. Live and replay go through this same code.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from app.analysis.stats import activation_ratio, symmetry_index
from app.protocol import TrialType
from dsp.envelope import MovingRms
from dsp.pipeline import PipelineConfig, StreamPipeline
from sensors.stream import ChannelKind, Event, EventKind, Frame, Item, StreamInfo

#: Source name of trial events the clinician marks in the window (not scripted by the source).
CLINICIAN = "clinician"
TRIAL_KINDS = tuple(t.value for t in TrialType)

#: Window of the moving RMS whose peak over an MVIC trial is the reference (clinical.md §3: 0.5-1 s).
MVIC_WINDOW_S = 0.5


class DisplayRing:
    """The latest ``capacity`` samples of a stream, contiguous without copying (a mirrored buffer).

    Every block is written twice, at ``pos`` and ``pos + capacity``, so ``buf[pos:pos + capacity]`` is always
    the newest window in time order: the plot reads a view, never ``np.roll``.
    """

    def __init__(self, capacity: int, n_channels: int) -> None:
        self.capacity = int(capacity)
        self._buf = np.full((2 * self.capacity, n_channels), np.nan)
        self._pos = 0

    def write(self, block: np.ndarray) -> None:
        """Append samples ``(n, n_channels)``; NaN rows mark a gap."""
        n = block.shape[0]
        if n >= self.capacity:
            block, n = block[-self.capacity:], self.capacity
        end = self._pos + n
        if end <= self.capacity:
            self._buf[self._pos:end] = block
            self._buf[self._pos + self.capacity:end + self.capacity] = block
        else:
            k = self.capacity - self._pos
            self._buf[self._pos:self.capacity] = block[:k]
            self._buf[self._pos + self.capacity:2 * self.capacity] = block[:k]
            self._buf[:n - k] = block[k:]
            self._buf[self.capacity:self.capacity + n - k] = block[k:]
        self._pos = end % self.capacity

    def write_gap(self, n: int) -> None:
        self.write(np.full((min(int(n), self.capacity), self._buf.shape[1]), np.nan))

    def view(self) -> np.ndarray:
        """The newest ``capacity`` samples, oldest first, shape ``(capacity, n_channels)`` (a view)."""
        return self._buf[self._pos:self._pos + self.capacity]


@dataclass
class LiveStream:
    """Everything the live view keeps for one stream."""

    info: StreamInfo
    display: DisplayRing  # filtered EMG, or physical values for non-EMG streams
    envelope: DisplayRing | None = None
    pipeline: StreamPipeline | None = None
    mvic_rms: MovingRms | None = None
    next_index: int = 0  # index the next sample should carry
    received: int = 0
    lost: int = 0
    latest_mvic_rms: np.ndarray | None = None  # current 500 ms RMS per channel, physical units
    trial_peak: np.ndarray | None = None  # peak 500 ms RMS per channel since the current trial began
    fatigue_mdf_hz: list = field(default_factory=list)  # (t_s, mdf per channel) for the latest points

    @property
    def is_emg(self) -> bool:
        return self.pipeline is not None

    @property
    def loss_pct(self) -> float:
        total = self.received + self.lost
        return 100.0 * self.lost / total if total else 0.0


@dataclass(frozen=True)
class TrialPeak:
    """Peak 500 ms RMS of each muscle of the working side over one finished exercise or hold, as %MVIC."""

    kind: str
    movement: str
    side: str
    pct_mvic: dict  # muscle -> peak %MVIC (None without a reference)

    @property
    def ratio(self) -> float | None:
        """GMed:TFL of %MVIC, with the analysis's guard (None where it withholds the ratio)."""
        return _ratio(self.pct_mvic.get("gluteus_medius"), self.pct_mvic.get("tfl"))


@dataclass
class PumpStats:
    items: int = 0
    tick_ms: float = 0.0
    backlog: int = 0


class LiveSession:
    """Consumes frames and events from a `SensorThread`'s outbox.

    Parameters
    ----------
    sensors : SensorThread-like
        ``drain() -> list[Item]`` (never blocking) and ``backlog`` (items still waiting).
    display_s : float
        Seconds of signal kept for the plots.
    mains_hz : None, 50 or 60
        Mains notch for EMG streams.
    recorder : object with ``put(item)``, optional
        Receives every frame and event, unchanged (raw counts: lossless).
    affected_side : "left", "right" or None
        Sign convention of the symmetry index (affected minus unaffected).
    """

    def __init__(self, sensors, display_s: float = 10.0, mains_hz: float | None = None, recorder=None,
                 affected_side: str | None = None) -> None:
        self._sensors = sensors
        self.display_s = float(display_s)
        self.mains_hz = mains_hz
        self.recorder = recorder
        self.affected_side = affected_side
        self.streams: dict[str, LiveStream] = {}
        self.events: list[Event] = []  # everything that is not a frame, for the UI's log
        self.trial: dict | None = None  # payload of the running trial, if any
        self.mvic_ref: dict[tuple[str, str], float] = {}  # (muscle, side) -> reference RMS, physical units
        self.finished: list[TrialPeak] = []  # exercises and holds done so far, in order
        self._pending_trials: list[tuple[str, int, dict]] = []  # (stream_id, index, payload) not yet reached
        self.source_drives_trials = False  # the source scripts its own trials (simulator, replay)
        self._trials_marked = 0
        self.ended = False
        self.stats = PumpStats()

    # -- streams ---------------------------------------------------------------------------------------
    def _declare(self, info: StreamInfo, start_s: float = 0.0) -> None:
        """(Re)build a stream's chain; after a replay seek its samples resume at ``ceil(start_s * rate)``."""
        n = max(1, int(round(self.display_s * info.rate_hz)))
        emg = any(c.kind is ChannelKind.EMG for c in info.channels) and info.rate_hz >= 100
        s = LiveStream(info, DisplayRing(n, info.n_channels))
        if emg:
            cfg = PipelineConfig(info.rate_hz, mains_hz=self.mains_hz,
                                 fatigue_window_s=1.0 if info.spectral_ok else None)
            s.pipeline = StreamPipeline(cfg, info.n_channels)
            s.envelope = DisplayRing(n, info.n_channels)
            s.mvic_rms = MovingRms(max(1, int(round(MVIC_WINDOW_S * info.rate_hz))), info.n_channels)
        s.next_index = int(np.ceil(start_s * info.rate_hz - 1e-9))
        self.streams[info.stream_id] = s

    def emg_streams(self) -> list[LiveStream]:
        return [s for s in self.streams.values() if s.is_emg]

    # -- the pump --------------------------------------------------------------------------------------
    def pump(self) -> PumpStats:
        """Drain and process everything waiting; returns what this tick did."""
        t0 = time.perf_counter()
        items = self._sensors.drain()
        for item in items:
            if self.recorder is not None:
                self.recorder.put(item)
            if isinstance(item, Frame):
                self._frame(item)
            else:
                self._event(item)
        self.stats = PumpStats(len(items), 1e3 * (time.perf_counter() - t0), self._sensors.backlog)
        return self.stats

    def _frame(self, frame: Frame) -> None:
        s = self.streams.get(frame.stream_id)
        if s is None:  # a frame before its STREAMS event: the source broke the contract; show, don't crash
            self.events.append(Event(EventKind.ERROR, message=f"frame for undeclared stream {frame.stream_id!r}"))
            return
        if frame.first_index > s.next_index:  # a jump without a GAP event: still a gap
            self._gap(s, frame.first_index - s.next_index)
        elif frame.first_index < s.next_index:  # overlap/duplicate: keep only what is new
            skip = s.next_index - frame.first_index
            if skip >= frame.n_samples:
                return
            frame = Frame(frame.stream_id, s.next_index, frame.counts[skip:], frame.arrival_s)
        x = s.info.to_physical(frame.counts)
        s.received += frame.n_samples
        s.next_index = frame.end_index
        # trial boundaries that fall inside this frame split it, so a trial's peak covers exactly its samples
        # (live and replay deliver frames cut differently; the numbers must not depend on that)
        pos = 0
        while self._pending_trials and self._pending_trials[0][0] == frame.stream_id \
                and self._pending_trials[0][1] < frame.end_index:
            _, index, payload = self._pending_trials.pop(0)
            k = max(0, index - frame.first_index)
            if k > pos:
                self._process(s, x[pos:k])
                pos = k
            self._trial(payload)
        if pos < x.shape[0]:
            self._process(s, x[pos:])

    def _process(self, s: LiveStream, x: np.ndarray) -> None:
        if s.pipeline is None:
            s.display.write(x)
            return
        result = s.pipeline.process(x)
        s.display.write(result.filtered)
        s.envelope.write(result.envelope)
        rms = s.mvic_rms.process(result.filtered)
        s.latest_mvic_rms = rms[-1].copy()
        peak = rms.max(axis=0)
        s.trial_peak = peak if s.trial_peak is None else np.maximum(s.trial_peak, peak)
        if len(result.fatigue):
            for t, mdf in zip(result.fatigue.time_s, result.fatigue.mdf_hz):
                s.fatigue_mdf_hz.append((float(t), mdf.copy()))
            del s.fatigue_mdf_hz[:-120]

    def _gap(self, s: LiveStream, n_missing: int) -> None:
        s.display.write_gap(n_missing)
        if s.envelope is not None:
            s.envelope.write_gap(n_missing)
        s.lost += n_missing
        s.next_index += n_missing

    def _event(self, event: Event) -> None:
        kind = event.kind
        if kind is EventKind.STREAMS:
            for info in event.payload.get("streams", []):
                self._declare(info, float(event.payload.get("seek_s", 0.0)))
            return
        self.events.append(event)
        del self.events[:-500]
        if kind is EventKind.GAP:
            s = self.streams.get(event.payload.get("stream_id"))
            if s is not None:  # count only what an index jump has not already counted
                end = int(event.payload.get("start_index", 0)) + int(event.payload.get("n_missing", 0))
                if end > s.next_index:
                    self._gap(s, end - s.next_index)
        elif kind is EventKind.TRIAL:
            p = event.payload
            if event.source != CLINICIAN:
                self.source_drives_trials = True
            s = self.streams.get(p.get("stream_id"))
            if s is not None and p.get("index") is not None and int(p["index"]) > s.next_index:
                self._pending_trials.append((s.info.stream_id, int(p["index"]), p))  # applied at that sample
            else:
                self._trial(p)
        elif kind is EventKind.END:
            for _, _, payload in self._pending_trials:  # boundaries at the very last sample
                self._trial(payload)
            self._pending_trials.clear()
            self.ended = True

    def _trial(self, payload: dict) -> None:
        if payload.get("phase") == "start":
            self.trial = payload
            for s in self.emg_streams():
                s.trial_peak = None
            return
        kind = payload.get("kind")
        if kind == "mvic":
            self._take_mvic(payload.get("muscle"), payload.get("side"))
        elif kind in ("exercise", "hold"):
            self._take_peak(payload)
        self.trial = None

    def _take_peak(self, payload: dict) -> None:
        side = payload.get("side")
        pct = {}
        for s in self.emg_streams():
            if s.trial_peak is None:
                continue
            for c, ch in enumerate(s.info.channels):
                ref = self.mvic_ref.get((ch.muscle, ch.side))
                if ch.side == side and ch.muscle:
                    pct[ch.muscle] = 100.0 * float(s.trial_peak[c]) / ref if ref else None
        self.finished.append(TrialPeak(payload.get("kind", ""), payload.get("movement") or payload.get("kind", ""),
                                       side, pct))

    def _take_mvic(self, muscle: str | None, side: str | None) -> None:
        """At the end of an MVIC trial, its peak 500 ms RMS becomes the reference (the best trial wins)."""
        for s in self.emg_streams():
            if s.trial_peak is None:
                continue
            for c, ch in enumerate(s.info.channels):
                if ch.muscle == muscle and ch.side == side:
                    key = (muscle, side)
                    self.mvic_ref[key] = max(self.mvic_ref.get(key, 0.0), float(s.trial_peak[c]))

    # -- a clinician-guided session -------------------------------------------------------------------
    def start_trial(self, kind: str, side: str | None = None, muscle: str | None = None,
                    movement: str | None = None) -> Event:
        """Start a trial now (at the newest EMG sample); stops a running one first. Returns the event."""
        self._check_guided()
        if kind not in TRIAL_KINDS:
            raise ValueError(f"unknown trial kind {kind!r}; expected one of {TRIAL_KINDS}")
        if kind == "mvic" and not (muscle and side):
            raise ValueError("an MVIC trial needs a muscle and a side")
        if kind in ("exercise", "hold") and not side:
            raise ValueError(f"a {kind} trial needs a side")
        if kind == "exercise" and not movement:
            raise ValueError("an exercise trial needs a movement")
        if self.trial is not None:
            self.stop_trial()
        self._trials_marked += 1
        payload = {"kind": kind, "side": side, "muscle": muscle,
                   "movement": movement or ("hold" if kind == "hold" else None), "trial": f"c{self._trials_marked}"}
        return self._mark(payload, "start")

    def stop_trial(self) -> Event | None:
        """Stop the running trial now; None if there is none."""
        self._check_guided()
        if self.trial is None:
            return None
        payload = {k: v for k, v in self.trial.items() if k not in ("phase", "index", "stream_id", "t_s")}
        return self._mark(payload, "stop")

    def _check_guided(self) -> None:
        if self.source_drives_trials:
            raise ValueError("this source scripts its own trials (simulator protocol or a recording)")

    def _mark(self, payload: dict, phase: str) -> Event:
        emg = self.emg_streams()
        if not emg:
            raise ValueError("no EMG stream yet: trials are marked on the EMG sample clock")
        s = emg[0]
        event = Event(EventKind.TRIAL, source=CLINICIAN, message=f"{payload['kind']} {phase}",
                      payload={**payload, "phase": phase, "index": s.next_index, "stream_id": s.info.stream_id,
                               "t_s": s.next_index / s.info.rate_hz},
                      arrival_s=time.monotonic())
        if self.recorder is not None:
            self.recorder.put(event)
        self._event(event)
        return event

    # -- what the biofeedback shows --------------------------------------------------------------------
    def percent_mvic(self) -> dict[tuple[str, str], float]:
        """Current 500 ms RMS as %MVIC per (muscle, side) with a reference; values above 100 are kept."""
        out = {}
        for s in self.emg_streams():
            if s.latest_mvic_rms is None:
                continue
            for c, ch in enumerate(s.info.channels):
                ref = self.mvic_ref.get((ch.muscle, ch.side))
                if ref:
                    out[(ch.muscle, ch.side)] = 100.0 * float(s.latest_mvic_rms[c]) / ref
        return out


def _ratio(gmed_pct: float | None, tfl_pct: float | None) -> float | None:
    if gmed_pct is None or tfl_pct is None:
        return None
    r = activation_ratio(gmed_pct, tfl_pct)
    return None if math.isnan(r) else r


def live_symmetry_index(affected_pct: float | None, unaffected_pct: float | None) -> float | None:
    """The analysis's SI (clinical.md §8) of two %MVIC values; None where it withholds it (small activations)."""
    if affected_pct is None or unaffected_pct is None:
        return None
    si = symmetry_index(affected_pct, unaffected_pct)
    return None if math.isnan(si) else si


def side_pairs(finished: list[TrialPeak]) -> dict[str, dict[str, TrialPeak]]:
    """Latest finished trial per movement and side: ``{movement: {"left": TrialPeak, "right": TrialPeak}}``."""
    out: dict[str, dict[str, TrialPeak]] = {}
    for t in finished:
        out.setdefault(t.movement, {})[t.side] = t
    return out


def feedback_summary(pct: dict[tuple[str, str], float]) -> dict[str, dict[str, float | None]]:
    """Per side: GMed and TFL %MVIC and their ratio (None where a muscle has no reference yet)."""
    out = {}
    for side in ("left", "right"):
        g, t = pct.get(("gluteus_medius", side)), pct.get(("tfl", side))
        out[side] = {"gmed_pct": g, "tfl_pct": t, "ratio": _ratio(g, t)}
    return out
