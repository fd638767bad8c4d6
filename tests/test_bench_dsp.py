"""`medius bench dsp --quick --json` runs end to end and writes the agreed JSON shape (no timing asserted)."""

from __future__ import annotations

import json

import pytest

from app.cli import main


@pytest.mark.slow
def test_quick_bench_writes_every_row(tmp_path, capsys):
    path = tmp_path / "bench.json"
    assert main(["bench", "dsp", "--quick", "--json", str(path)]) == 0
    rows = json.loads(path.read_text())
    prefixes = ("stream", "batch", "full", "peers", "startup")
    assert {name.split("_")[0] for name in rows} == set(prefixes)
    for name, row in rows.items():
        assert set(row) == {"ours", "baseline", "ratio", "unit"}, name
        assert row["ours"] > 0, name
        if row["baseline"] is not None:
            assert row["baseline"] > 0 and row["ratio"] > 0, name
    assert {"stream_chunk_10", "stream_chunk_50", "stream_chunk_200", "batch_filter", "full_analysis",
            "startup_warm", "startup_cold"} <= set(rows)
    printed = capsys.readouterr().out
    assert all(name in printed for name in rows)
