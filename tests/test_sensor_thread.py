"""The sensor thread: commands as futures from another thread, frames on one queue, clean shutdown."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from sensors.ble import medius as mp
from sensors.sim import SimConfig, Simulator, SimulatorSource, Trial
from sensors.stream import Event, EventKind, Frame
from sensors.thread import SensorThread
from sensors.virtual import VirtualRadio


def _drain_until(thread: SensorThread, predicate, timeout_s: float = 60.0) -> list:
    got: list = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        got += thread.drain()
        if predicate(got):
            return got
        time.sleep(0.01)
    raise AssertionError(f"condition not met; got {len(got)} items")


def test_simulator_frames_arrive_on_the_queue_from_the_sensor_thread():
    sim = Simulator(SimConfig(seed=1), [Trial.rest(1.0), Trial.exercise("clamshell", "left", 1)])
    with SensorThread() as sensors:
        assert sensors.alive
        source = SimulatorSource(sim, speed=None)
        fut = sensors.start(source)
        assert fut.result(timeout=10) is None
        items = _drain_until(sensors, lambda got: got and isinstance(got[-1], Event) and got[-1].kind is EventKind.END)
        assert sensors.max_backlog >= 1 and sensors.backlog == 0
        emg = [i for i in items if isinstance(i, Frame) and i.stream_id == "emg"]
        counts = np.concatenate([f.counts for f in emg])
        np.testing.assert_array_equal(counts, sim.emg_counts(0, counts.shape[0]))
        assert counts.shape[0] >= sim.n_emg_samples
        with pytest.raises(RuntimeError, match="already running"):
            sensors.start(source).result(timeout=10)
        sensors.stop(source).result(timeout=10)
    assert not sensors.alive
    with pytest.raises(RuntimeError, match="closed"):
        sensors.start(SimulatorSource(sim))


def test_ble_scan_connect_disconnect_as_futures_with_the_simulator_driving_the_medius_peripheral():
    sim = Simulator(SimConfig(seed=2, include_gmax=True), [Trial.rest(1.0), Trial.exercise("squat", "right", 2)])
    with SensorThread() as sensors:
        async def make_radio():
            radio = await VirtualRadio.create()
            await radio.add(sim.medius_peripheral(speed=None))
            return radio

        radio = sensors.submit(make_radio()).result(timeout=10)
        results = sensors.scan([mp.MediusProfile()], 0.2, backend=radio.scanner_backend).result(timeout=10)
        (medius,) = [r for r in results if r.profiles == ("medius-semg",)]
        assert medius.name == "Medius-Sim"
        source = sensors.connect(medius.device, mp.MediusProfile(), scanner_backend=radio.scanner_backend,
                                 client_backend=radio.client_backend).result(timeout=10)
        assert source.client.is_connected  # read from this thread only for the assertion
        (stream,) = source.streams
        assert [c.label for c in stream.channels] == [c.label for c in sim.emg_stream.channels]
        assert stream.channels[0].muscle == "gluteus_medius" and stream.channels[0].unit == "uV"
        n = 4 * sim.config.emg_rate_hz
        items = _drain_until(sensors, lambda got: sum(i.n_samples for i in got if isinstance(i, Frame)) >= n)
        frames = [i for i in items if isinstance(i, Frame)]
        counts = np.concatenate([f.counts for f in frames])
        # byte-exact through Bumble, bleak and the decoder: what the simulator generated, from index 0
        assert frames[0].first_index == 0
        np.testing.assert_array_equal(counts, sim.emg_counts(0, counts.shape[0]))
        sensors.disconnect(source).result(timeout=10)
        tail = sensors.drain()
        kinds = [i.kind for i in tail if isinstance(i, Event)]
        assert kinds[-2:] == [EventKind.DISCONNECTED, EventKind.END]
        sensors.submit(radio.close()).result(timeout=10)


def test_producer_never_waits_for_the_consumer_and_backlog_is_measured():
    sim = Simulator(SimConfig(seed=3), [Trial.rest(5.0)])
    with SensorThread() as sensors:
        source = SimulatorSource(sim, speed=None, block_s=0.01)
        sensors.start(source).result(timeout=10)
        # nobody drains: the source still runs to its end, and the backlog shows it
        sensors.wait(source).result(timeout=30)
        assert sensors.backlog == sensors.max_backlog > 100
        assert threading.current_thread() is threading.main_thread()


def test_close_stops_running_sources_cleanly():
    sim = Simulator(SimConfig(seed=4), [Trial.rest(3600.0)])
    sensors = SensorThread()
    source = SimulatorSource(sim, speed=1.0)
    sensors.start(source).result(timeout=10)
    _drain_until(sensors, lambda got: any(isinstance(i, Frame) for i in got))
    sensors.close()
    assert not sensors.alive
    rest = sensors.drain()
    assert rest and rest[-1].kind is EventKind.END
