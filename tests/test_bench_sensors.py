"""`medius bench sensors` writes the figures the issue is resolved with (no timing assertions)."""

import json

from app.bench_sensors import DECODE_CASES, run_sensors_bench


def test_quick_bench_writes_the_required_keys_and_loses_nothing(tmp_path, capsys):
    path = tmp_path / "sensors.json"
    assert run_sensors_bench(quick=True, json_path=str(path)) == 0
    figures = json.loads(path.read_text())
    assert {"latency_p50_ms", "latency_p99_ms", "lost_samples"} <= set(figures)
    assert {f"decode_msamples_per_s_{key}" for key in DECODE_CASES} <= set(figures)
    assert figures["lost_samples"] == 0
    assert 0 < figures["latency_p50_ms"] <= figures["latency_p99_ms"]
    assert "p99" in capsys.readouterr().out
