"""Live and replay are the same code: results computed while recording a simulator session equal, bit for bit,
the results of replaying the file (real-time paced and as fast as possible) through the same dsp streaming
pipeline. The simulator delivers 20-sample packets with lost ones as GAP events; the replay delivers 20 ms steps
of the stored blocks: different chunking, same numbers."""

import asyncio

import numpy as np

from dsp.pipeline import PipelineConfig, StreamPipeline
from sensors.recording import Recorder, SessionReader
from sensors.replay import ReplaySource
from sensors.sim import SimConfig, Simulator, SimulatorSource, Trial
from sensors.stream import Event, EventKind

SIM = Simulator(SimConfig(seed=3, packet_loss=0.005, hum_uv=10.0, fatigue_mdf_pct_per_s=-0.5),
                [Trial.rest(0.5), Trial.mvic("gluteus_medius", "left", 2.5)])
EMG = SIM.emg_stream
CONFIG = PipelineConfig(rate_hz=EMG.rate_hz, mains_hz=50, fatigue_window_s=0.5, fatigue_hop_s=0.25)


class Consumer:
    """What the app's pump does with a source's items: the same object for live and replay."""

    def __init__(self):
        self.pipe = StreamPipeline(CONFIG, EMG.n_channels)
        self.trials = []
        self.gaps = []
        self.expected = 0
        self.out = {"index": [], "filtered": [], "envelope": [], "fatigue": []}

    def feed(self, item):
        if isinstance(item, Event):
            if item.kind is EventKind.STREAMS:
                self.pipe.reset()
            elif item.kind is EventKind.GAP and item.payload["stream_id"] == "emg":
                self.gaps.append((item.payload["start_index"], item.payload["n_missing"]))
            elif item.kind is EventKind.TRIAL:
                self.trials.append((item.payload["phase"], item.payload["index"], item.payload["trial"]))
            return
        if item.stream_id != "emg":
            return
        if item.first_index != self.expected:
            self.pipe.reset()  # a gap: the filter state no longer continues
        self.expected = item.end_index
        r = self.pipe.process(EMG.to_physical(item.counts))
        self.out["index"].append(np.arange(item.first_index, item.end_index))
        self.out["filtered"].append(r.filtered.copy())
        self.out["envelope"].append(r.envelope.copy())
        if len(r.fatigue):
            self.out["fatigue"].append(np.column_stack([r.fatigue.time_s, r.fatigue.mdf_hz, r.fatigue.mnf_hz,
                                                        r.fatigue.fi_nsm5, r.fatigue.band_power, r.fatigue.rms]))

    def results(self):
        return {"trials": np.array(self.trials, dtype=object),
                "gaps": np.array(self.gaps, dtype=np.int64).reshape(-1, 2),
                **{k: np.concatenate(v) for k, v in self.out.items()}}


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
    live = asyncio.run(_live(SimulatorSource(SIM, speed=None), path))
    assert len(live["fatigue"]) >= 4 and np.all(np.isfinite(live["fatigue"]))
    assert [t[0] for t in live["trials"]] == ["start", "stop", "start", "stop"]
    assert live["index"][0] == 0 and np.any(np.diff(live["index"]) > 1)  # the gap really is in there
    with SessionReader(path) as r:
        assert r.gaps("emg") == [tuple(g) for g in live["gaps"]]  # each GAP event and its index jump: one gap
    for speed in (None, 1.0):
        replayed = asyncio.run(_replay(path, speed))
        for key in ("index", "filtered", "envelope", "fatigue", "trials", "gaps"):
            assert replayed[key].shape == live[key].shape, (speed, key)
            assert np.array_equal(replayed[key], live[key]), (speed, key)
