"""The simulator as a `Source`, and as the sample generator of a virtual Medius peripheral.

`Simulator` is the deterministic core: ``emg_counts(first, n)`` / ``imu_counts(first, n)`` give any range of
samples (identical however the ranges are cut), and `truth` is the ground truth. `SimulatorSource` streams it
on the sample clock (``speed=1.0`` real time, ``None`` as fast as possible), in packets of
``config.packet_samples`` with ``config.packet_loss`` of them dropped (``GAP`` events), and emits ``TRIAL``
start/stop events at the exact sample index of every trial boundary. `Simulator.medius_peripheral` builds a
virtual Medius board streaming the same EMG, so the demo and tests can run the whole BLE path.
"""

from __future__ import annotations

import asyncio
import time
from typing import AsyncIterator, Sequence

import numpy as np

from sensors.sim.model import IMU_CHANNELS, GroundTruth, SimConfig, Timeline, ground_truth
from sensors.sim.protocol import Trial, standard_protocol
from sensors.sim.synth import IMU_UNITS_PER_COUNT, EmgSynth, ImuSynth
from sensors.stream import ChannelInfo, ChannelKind, Event, EventKind, Frame, Item, StreamInfo

_LOSS_STREAM = 3


class Simulator:
    """Deterministic physiological simulator (no I/O, no clock).

    Parameters
    ----------
    config : SimConfig
        All parameters, the seed included.
    trials : sequence of Trial, optional
        The protocol script; `standard_protocol()` by default.
    """

    def __init__(self, config: SimConfig | None = None, trials: Sequence[Trial] | None = None) -> None:
        self.config = config or SimConfig()
        self.timeline = Timeline(self.config, list(trials) if trials is not None else standard_protocol())
        self.emg = EmgSynth(self.timeline)
        self.imu = ImuSynth(self.timeline)
        self.truth: GroundTruth = ground_truth(self.timeline)
        c = self.config
        self.emg_stream = StreamInfo(
            "emg", float(c.emg_rate_hz),
            tuple(ChannelInfo(ch.label, ChannelKind.EMG, "uV", c.gain_uv_per_count, 0.0, ch.muscle, ch.side,
                              -32768, 32767)  # the synthesis clips at the int16 rails
                  for ch in self.timeline.channels),
            dtype="int16", device="medius-simulator")
        kinds = {"deg": (ChannelKind.ANGLE, "deg"), "dps": (ChannelKind.GYRO, "deg/s"), "g": (ChannelKind.ACC, "g")}
        self.imu_stream = StreamInfo(
            "imu", float(c.imu_rate_hz),
            tuple(ChannelInfo(name, *kinds[name.rsplit("_", 1)[1]], float(gain), count_min=-32768, count_max=32767)
                  for name, gain in zip(IMU_CHANNELS, IMU_UNITS_PER_COUNT)),
            dtype="int16", spectral_ok=False, note="kinematics, not EMG", device="medius-simulator")

    @property
    def duration_s(self) -> float:
        return self.timeline.duration_s

    @property
    def n_emg_samples(self) -> int:
        return int(round(self.duration_s * self.config.emg_rate_hz))

    def emg_counts(self, first_index: int, n_samples: int) -> np.ndarray:
        """EMG counts ``(n_samples, n_emg_channels)`` int16 for sample indices ``[first, first + n)``."""
        return self.emg.counts(int(first_index), int(n_samples))

    def imu_counts(self, first_index: int, n_samples: int) -> np.ndarray:
        """IMU counts ``(n_samples, 10)`` int16, columns `IMU_CHANNELS` (gains in ``imu_stream``)."""
        return self.imu.counts(int(first_index), int(n_samples))

    def lost_packets(self, n_packets: int) -> np.ndarray:
        """Boolean mask of dropped packets ``[0, n_packets)`` (deterministic in the seed)."""
        rng = np.random.default_rng([self.config.seed, _LOSS_STREAM])
        return rng.random(n_packets) < self.config.packet_loss

    def medius_peripheral(self, **kwargs):
        """A virtual Medius board streaming this simulator's EMG (kwargs go to `MediusPeripheral`).

        The board loses ``config.packet_loss`` of its packets on the air; the IMU and trial events are not
        part of the Medius profile (EMG only).
        """
        from sensors.ble.medius import MediusChannel
        from sensors.virtual.medius_peripheral import MediusPeripheral

        channels = [MediusChannel(c.label, "emg", c.gain, c.offset, c.unit, c.muscle, c.side)
                    for c in self.emg_stream.channels]
        kwargs.setdefault("fs_hz", self.config.emg_rate_hz)
        kwargs.setdefault("packet_loss", self.config.packet_loss)
        kwargs.setdefault("seed", self.config.seed)
        kwargs.setdefault("name", "Medius-Sim")
        kwargs.setdefault("adc_bits", 16)  # the simulator's counts span int16 (its clipping limits)
        return MediusPeripheral(channels, self.emg_counts, **kwargs)


class SimulatorSource:
    """The simulator as a `Source`.

    Parameters
    ----------
    simulator : Simulator
    speed : float or None
        Sample-clock speed relative to wall time (1.0 real time); None = as fast as the consumer reads.
    block_s : float
        Sample time generated per step (rounded to whole packets).
    """

    def __init__(self, simulator: Simulator, speed: float | None = 1.0, block_s: float = 0.05) -> None:
        self.sim = simulator
        self.name = "simulator"
        self.speed = speed
        c = simulator.config
        self.packet = c.packet_samples
        self.imu_packet = c.packet_samples * c.imu_rate_hz // c.emg_rate_hz
        self.packets_per_block = max(1, int(round(block_s * c.emg_rate_hz / self.packet)))
        self.n_packets = -(-simulator.n_emg_samples // self.packet)
        self.lost = simulator.lost_packets(self.n_packets)
        self.lost_imu = np.random.default_rng([c.seed, _LOSS_STREAM, 1]).random(self.n_packets) < c.packet_loss
        self._stopped = asyncio.Event()
        self._started = False

    @property
    def streams(self) -> Sequence[StreamInfo]:
        return (self.sim.emg_stream, self.sim.imu_stream)

    async def start(self) -> None:
        self._started = True
        self._stopped.clear()

    async def stop(self) -> None:
        self._stopped.set()

    def _trial_events(self, lo: int, hi: int) -> list[Event]:
        """TRIAL events whose boundary sample index lies in ``[lo, hi)``."""
        fs = self.sim.config.emg_rate_hz
        out = []
        for i, trial in enumerate(self.sim.timeline.trials):
            for phase, t_s in (("start", self.sim.timeline.starts_s[i]), ("stop", self.sim.timeline.ends_s[i])):
                index = int(round(t_s * fs))
                if lo <= index < hi or (phase == "stop" and index == hi == self.sim.n_emg_samples):
                    out.append(Event(EventKind.TRIAL, source=self.name, message=f"{trial.kind} {phase}",
                                     payload=dict(trial.to_dict(), trial=i, phase=phase, index=index,
                                                  stream_id="emg", t_s=float(t_s)),
                                     arrival_s=time.monotonic()))
        return sorted(out, key=lambda e: (e.payload["index"], e.payload["phase"] == "start"))

    def _packets(self, stream_id: str, p0: int, p1: int, size: int, lost: np.ndarray, counts_fn,
                 now: float) -> list[Item]:
        """Frames for packets ``[p0, p1)`` of one stream, with a GAP for each run of dropped packets."""
        out: list[Item] = []
        keep = ~lost[p0:p1]
        k = 0
        while k < p1 - p0:
            j = k
            while j < p1 - p0 and keep[j] == keep[k]:
                j += 1
            first, n = (p0 + k) * size, (j - k) * size
            if keep[k]:
                out.append(Frame(stream_id, first, counts_fn(first, n), now))
            else:
                gap = {"stream_id": stream_id, "start_index": first, "n_missing": n}
                self.sim.truth.gaps.append(gap)
                out.append(Event(EventKind.GAP, source=self.name, message=f"{n} samples lost", payload=gap,
                                 arrival_s=now))
            k = j
        return out

    async def items(self) -> AsyncIterator[Item]:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        fs = self.sim.config.emg_rate_hz
        yield Event(EventKind.STREAMS, source=self.name, payload={"streams": list(self.streams)},
                    arrival_s=time.monotonic())
        p = 0
        while p < self.n_packets and not self._stopped.is_set():
            p1 = min(self.n_packets, p + self.packets_per_block)
            if self.speed is not None:
                due = t0 + p1 * self.packet / fs / self.speed
                try:
                    await asyncio.wait_for(self._stopped.wait(), max(0.0, due - loop.time()))
                    break
                except TimeoutError:
                    pass
            else:
                await asyncio.sleep(0)
            now = time.monotonic()
            for event in self._trial_events(p * self.packet, p1 * self.packet):
                yield event
            for item in self._packets("emg", p, p1, self.packet, self.lost, self.sim.emg_counts, now):
                yield item
            for item in self._packets("imu", p, p1, self.imu_packet, self.lost_imu, self.sim.imu_counts, now):
                yield item
            p = p1
        yield Event(EventKind.END, source=self.name, arrival_s=time.monotonic())
