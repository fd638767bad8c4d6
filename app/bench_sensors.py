"""``medius bench sensors``: decode throughput per BLE profile, and notification → frame-on-queue latency.

Decode: each registered profile builds a decoder and a list of realistic notifications; we time
``decoder.feed`` over all of them against the baseline of merely copying the same bytes
(``np.frombuffer(...).copy()``), measured in the same run. Throughput counts sample values
(samples × channels).

Simulator: sample time generated per wall second for 8 EMG channels at 2 kHz plus the IMU, in the 50 ms
blocks the live source asks for (needs to stay well above 1).

Latency: a 16-channel × 2 kHz virtual Medius board (247-byte MTU, 7 samples per packet, real-time clock)
streams through the Bumble link, bleak, `BleSource` and `SensorThread` to this thread, which blocks on the
outbox; latency is the time from the newest notification's arrival in bleak's callback to the frame being
taken off the queue. Lost samples are counted from the data (the board's ramp channel numbers every sample),
not from GAP events, so a loss the host failed to notice still shows.
"""

from __future__ import annotations

import json
import time
from typing import Callable, Sequence

import numpy as np

from app import bench_profile_cases

_RAMP_CHANNEL = 0  # the latency board's channel that carries the sample index

# profile key -> factory returning (decoder, [(char_uuid, bytes), ...], sample values per pass).
# Other profiles add a line here (key = the suffix of ``decode_msamples_per_s_<key>`` in --json).
DecodeCase = Callable[[], tuple[object, list[tuple[str, bytes]], int]]


def _medius_case() -> tuple[object, list[tuple[str, bytes]], int]:
    from sensors.ble import medius as mp

    n_channels, n = 8, 15  # 8 ch at the 247-byte MTU
    info = mp.MediusInfo(2000, n, tuple(mp.MediusChannel(f"c{i}", gain=0.5) for i in range(n_channels)))
    rng = np.random.default_rng(0)
    packets = [(mp.DATA_UUID, mp.encode_data_packet(s, 0, rng.integers(-2000, 2000, (n, n_channels))))
               for s in range(4000)]
    return mp.MediusDecoder(info), packets, 4000 * n * n_channels


DECODE_CASES: dict[str, DecodeCase] = {
    "medius": _medius_case,
    "bitalino": bench_profile_cases.bitalino_case,
    "myo": bench_profile_cases.myo_case,
    "ganglion": bench_profile_cases.ganglion_case,
    "metamotion": bench_profile_cases.metamotion_case,
}


def _decode_rate(case: DecodeCase, repeats: int) -> tuple[float, float]:
    """(decoder, baseline) throughput in million sample values per second (best of ``repeats``)."""
    best, base_best = np.inf, np.inf
    for _ in range(repeats):
        decoder, packets, values = case()
        t = time.perf_counter()
        for uuid, data in packets:
            decoder.feed(uuid, data, 0.0)
        best = min(best, time.perf_counter() - t)
        t = time.perf_counter()
        for _, data in packets:
            np.frombuffer(data, dtype=np.uint8).copy()  # any profile's bytes (BITalino chunks can be 1 byte)
        base_best = min(base_best, time.perf_counter() - t)
    return values / best / 1e6, values / base_best / 1e6


def sample_accounting(ramps: Sequence[np.ndarray]) -> dict[str, int]:
    """Samples produced, received and lost over the span a run received, from the ramp channel alone.

    The virtual board's ramp channel carries each sample's index modulo 2**16 (`ramp_generator`), so the
    samples it produced between the first and the last one received are known from the data, independently of
    the host's counter unwrapping or of any ``GAP`` event (a loss the host never noticed still counts).

    Parameters
    ----------
    ramps : sequence of ndarray, each shape (n_samples,), int16
        The ramp column of every received frame, in arrival order.

    Returns
    -------
    dict
        ``produced`` (samples the board made from the first to the last received one, inclusive),
        ``received`` and ``lost = produced - received``. Assumes no single hole of 65536 samples or more.
    """
    ramp = np.concatenate([np.asarray(r).reshape(-1) for r in ramps]) if ramps else np.empty(0, np.int16)
    received = int(ramp.size)
    if received == 0:
        return {"produced": 0, "received": 0, "lost": 0}
    step = np.diff(ramp.astype(np.int16).view(np.uint16).astype(np.int64)) % 65536  # 1 when nothing is missing
    produced = int(step.sum()) + 1
    return {"produced": produced, "received": received, "lost": produced - received}


def _latency(seconds: float) -> tuple[np.ndarray, dict[str, int], int]:
    """Latencies (ms) of every frame, `sample_accounting` of the run, and the samples announced by GAP events,
    at 16 ch × 2 kHz in real time."""
    from sensors.ble import medius as mp
    from sensors.stream import Event, EventKind, Frame
    from sensors.thread import SensorThread
    from sensors.virtual import VirtualRadio
    from sensors.virtual.medius_peripheral import MediusPeripheral, ramp_generator

    channels = [mp.MediusChannel(f"EMG{i}", gain=0.5, unit="uV") for i in range(16)]
    latencies: list[float] = []
    ramps: list[np.ndarray] = []
    gap_samples = 0
    with SensorThread() as sensors:
        async def make_radio():
            radio = await VirtualRadio.create()
            await radio.add(MediusPeripheral(channels, ramp_generator(16, _RAMP_CHANNEL), fs_hz=2000, speed=1.0,
                                             name="Medius-16"))
            return radio

        radio = sensors.submit(make_radio()).result(timeout=10)
        (found,) = [r for r in sensors.scan([mp.MediusProfile()], 0.3, backend=radio.scanner_backend).result(10)
                    if r.profiles]
        source = sensors.connect(found.device, mp.MediusProfile(), scanner_backend=radio.scanner_backend,
                                 client_backend=radio.client_backend).result(timeout=10)
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                item = sensors.outbox.get(timeout=0.5)
            except Exception:  # queue.Empty: keep waiting until the deadline
                continue
            now = time.monotonic()
            if isinstance(item, Frame):
                latencies.append((now - item.arrival_s) * 1e3)
                ramps.append(item.counts[:, _RAMP_CHANNEL].copy())
            elif isinstance(item, Event) and item.kind is EventKind.GAP:
                gap_samples += int(item.payload["n_missing"])
        sensors.disconnect(source).result(timeout=10)
        sensors.submit(radio.close()).result(timeout=10)
    return np.asarray(latencies), sample_accounting(ramps), gap_samples


def _simulator_speed(seconds: float) -> float:
    """How many times faster than real time the simulator makes 8 ch × 2 kHz EMG + IMU (fresh instance)."""
    from sensors.sim import SimConfig, Simulator, standard_protocol

    sim = Simulator(SimConfig(seed=0, include_gmax=True, hum_uv=5.0, motion_uv=50.0), standard_protocol())
    n_emg, n_imu = int(seconds * 2000), int(seconds * 100)
    t = time.perf_counter()
    for k in range(0, n_emg, 100):  # 50 ms blocks, as the live source asks for them
        sim.emg_counts(k, 100)
    for k in range(0, n_imu, 5):
        sim.imu_counts(k, 5)
    return seconds / (time.perf_counter() - t)


def run_sensors_bench(quick: bool, json_path: str | None) -> int:
    """Print the sensor benchmarks; with ``json_path`` also write them as flat JSON. Returns 0."""
    results: dict[str, float] = {}
    print("decode throughput (M sample values/s; baseline = copying the same bytes, np.frombuffer(...).copy())")
    for key, case in DECODE_CASES.items():
        ours, base = _decode_rate(case, repeats=2 if quick else 5)
        results[f"decode_msamples_per_s_{key}"] = round(ours, 3)
        print(f"  {key:<12} {ours:8.2f}   baseline {base:8.2f}   ratio {ours / base:5.2f}")
    factor = _simulator_speed(20.0 if quick else 120.0)
    results["sim_realtime_factor_8ch_2khz"] = round(factor, 1)
    print(f"simulator, 8 ch x 2 kHz EMG + IMU in 50 ms blocks: {factor:.0f}x real time")
    seconds = 3.0 if quick else 15.0
    lat, samples, gap_samples = _latency(seconds)
    p50, p99 = (float(np.percentile(lat, q)) if lat.size else float("nan") for q in (50, 99))
    results.update(latency_p50_ms=round(p50, 3), latency_p99_ms=round(p99, 3), lost_samples=samples["lost"],
                   produced_samples=samples["produced"], received_samples=samples["received"],
                   gap_event_samples=gap_samples)
    print(f"notification -> frame on queue, 16 ch x 2 kHz, virtual link, {seconds:.0f} s: "
          f"p50 {p50:.2f} ms, p99 {p99:.2f} ms over {lat.size} frames; "
          f"{samples['received']} of {samples['produced']} samples received, {samples['lost']} lost "
          f"({gap_samples} announced by GAP events)")
    if json_path:
        with open(json_path, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=1)
    return 0


run = run_sensors_bench  # the `medius bench` dispatch table calls ``run(quick=, json_path=)``
