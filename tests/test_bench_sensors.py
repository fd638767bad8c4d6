"""`medius bench sensors` writes the figures the issue is resolved with (no timing assertions)."""

import json

import numpy as np

from app.bench_sensors import DECODE_CASES, run_sensors_bench, sample_accounting
from sensors.virtual.medius_peripheral import ramp_generator


def test_quick_bench_writes_the_required_keys_and_loses_nothing(tmp_path, capsys):
    path = tmp_path / "sensors.json"
    assert run_sensors_bench(quick=True, json_path=str(path)) == 0
    figures = json.loads(path.read_text())
    assert {"latency_p50_ms", "latency_p99_ms", "lost_samples"} <= set(figures)
    assert {f"decode_msamples_per_s_{key}" for key in DECODE_CASES} <= set(figures)
    assert figures["lost_samples"] == 0
    assert figures["received_samples"] == figures["produced_samples"] > 0
    assert 0 < figures["latency_p50_ms"] <= figures["latency_p99_ms"]
    assert "p99" in capsys.readouterr().out


def _ramp_frames(first: int, n: int, packet: int) -> list[np.ndarray]:
    """The ramp column of a run cut into packets, as the board would send it."""
    ramp = ramp_generator(2)(first, n)[:, 0]
    return [ramp[i: i + packet] for i in range(0, n, packet)]


def test_sample_accounting_counts_a_silently_dropped_packet():
    # 6000 samples in 1-sample packets, one dropped with no GAP event: the auditor's "5999 of 6000, 0 lost"
    frames = _ramp_frames(100, 6000, 1)
    del frames[2500]
    assert sample_accounting(frames) == {"produced": 6000, "received": 5999, "lost": 1}
    # 7-sample packets across the int16 wrap of the ramp (index 65535 -> 65536), two packets dropped
    frames = _ramp_frames(65536 - 30, 700, 7)
    del frames[4], frames[50]
    assert sample_accounting(frames) == {"produced": 700, "received": 686, "lost": 14}
    # nothing lost, and losses before the first / after the last received sample are outside the span
    frames = _ramp_frames(0, 70, 7)
    assert sample_accounting(frames) == {"produced": 70, "received": 70, "lost": 0}
    assert sample_accounting(frames[1:-1]) == {"produced": 56, "received": 56, "lost": 0}
    assert sample_accounting([]) == {"produced": 0, "received": 0, "lost": 0}
