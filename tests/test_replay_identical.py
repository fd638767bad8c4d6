"""Live and replay are the same code: results computed while recording equal, bit for bit, the results of
replaying the file (real-time paced and as fast as possible) through the same dsp streaming pipeline."""

import asyncio

import numpy as np

from dsp.pipeline import PipelineConfig, StreamPipeline
from sensors.recording import Recorder, SessionReader
from sensors.replay import ReplaySource
from sensors.stream import ChannelInfo, Event, EventKind, Frame, StreamInfo

RATE_HZ = 1000.0
EMG = StreamInfo("emg", RATE_HZ, (
    ChannelInfo("A1", unit="mV", gain=0.0005, offset=2.0, muscle="gluteus_medius", side="left"),
    ChannelInfo("A2", unit="mV", gain=0.0005, muscle="tfl", side="left"),
    ChannelInfo("ramp", kind="other", unit="1")), dtype="int16")
CONFIG = PipelineConfig(rate_hz=RATE_HZ, mains_hz=50, fatigue_window_s=0.5, fatigue_hop_s=0.25)


class SyntheticSource:
    """A deterministic device: bursts of noise-like EMG in irregular frames, with one dropped stretch."""

    name = "synthetic"

    def __init__(self, seconds=2.4):
        rng = np.random.default_rng(21)
        n = int(seconds * RATE_HZ)
        t = np.arange(n) / RATE_HZ
        burst = 1 + 3 * (np.sin(2 * np.pi * 0.8 * t) > 0.3)
        emg = rng.normal(0, 1500, (n, 2)) * burst[:, None]
        self.counts = np.column_stack([emg, np.arange(n) % 30000]).round().astype(np.int16)
        self.sizes = rng.integers(5, 60, 10_000)

    @property
    def streams(self):
        return [EMG]

    async def start(self):
        pass

    async def stop(self):
        pass

    async def items(self):
        yield Event(EventKind.STREAMS, self.name, payload={"streams": [EMG]})
        i, k = 0, 0
        while i < self.counts.shape[0]:
            n = int(self.sizes[k])
            k += 1
            if 1100 <= i < 1300:  # packets lost over the air
                yield Event(EventKind.GAP, self.name, payload={"stream_id": "emg", "start_index": i, "n_missing": n})
            else:
                yield Frame("emg", i, self.counts[i:i + n])
            i += n
        yield Event(EventKind.END, self.name)


class Consumer:
    """What the app's pump does with a source's items: the same object for live and replay."""

    def __init__(self):
        self.pipe = StreamPipeline(CONFIG, 2)
        self.expected = 0
        self.out = {"index": [], "filtered": [], "envelope": [], "fatigue": []}

    def feed(self, item):
        if isinstance(item, Event):
            if item.kind is EventKind.STREAMS:
                self.pipe.reset()
            return
        if item.first_index != self.expected:
            self.pipe.reset()  # a gap: the filter state no longer continues
        self.expected = item.end_index
        phys = EMG.to_physical(item.counts)[:, :2]
        r = self.pipe.process(np.ascontiguousarray(phys))
        self.out["index"].append(np.arange(item.first_index, item.end_index))
        self.out["filtered"].append(r.filtered.copy())
        self.out["envelope"].append(r.envelope.copy())
        if len(r.fatigue):
            self.out["fatigue"].append(np.column_stack([r.fatigue.time_s, r.fatigue.mdf_hz, r.fatigue.mnf_hz,
                                                        r.fatigue.fi_nsm5, r.fatigue.band_power, r.fatigue.rms]))

    def results(self):
        return {k: np.concatenate(v) for k, v in self.out.items()}


async def _live(source, path):
    rec = Recorder(path, {"patient_code": "BIT", "filters": {"mains_hz": 50}})
    live = Consumer()
    await source.start()
    async for item in source.items():
        rec.put(item)
        live.feed(item)
    rec.close()
    assert rec.poll_events() == []
    return live.results()


async def _replay(path, speed):
    src = ReplaySource(path, speed=speed)
    await src.start()
    consumer = Consumer()
    async for item in src.items():
        consumer.feed(item)
    return consumer.results()


def test_replay_reproduces_live_results_bit_for_bit(tmp_path):
    path = tmp_path / "live.medius"
    live = asyncio.run(_live(SyntheticSource(), path))
    assert len(live["fatigue"]) >= 4 and np.all(np.isfinite(live["fatigue"]))
    assert live["index"][0] == 0 and np.any(np.diff(live["index"]) > 1)  # the gap really is in there
    with SessionReader(path) as r:
        assert len(r.gaps("emg")) == 1  # packet-by-packet GAP events and the index jump: one stored gap
    for speed in (None, 1.0):
        replayed = asyncio.run(_replay(path, speed))
        for key in ("index", "filtered", "envelope", "fatigue"):
            assert replayed[key].shape == live[key].shape, (speed, key)
            assert np.array_equal(replayed[key], live[key]), (speed, key)
