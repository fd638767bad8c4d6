"""The committed demo session is what `generate_demo` produces (decoded contents, not SQLite bytes)."""

from pathlib import Path

import numpy as np

from sensors.demo import generate_demo
from sensors.recording import TRIAL_START, SessionReader

DEMO = Path(__file__).resolve().parents[1] / "recordings" / "demo.medius"
#: Metadata that records when and by which build the file was written, not what it holds.
_PROVENANCE = ("created_utc", "software_version")


def _contents(path):
    with SessionReader(path) as r:
        meta = {k: v for k, v in r.meta.items() if k not in _PROVENANCE}
        return {
            "meta": meta, "schema": r.schema_version, "streams": r.streams, "events": r.events(),
            "gaps": {s.stream_id: r.gaps(s.stream_id) for s in r.streams},
            "counts": {s.stream_id: r.read_counts(s.stream_id) for s in r.streams},
        }


def test_committed_demo_matches_a_fresh_generation(tmp_path):
    fresh = tmp_path / "demo.medius"
    generate_demo(fresh)
    want, got = _contents(fresh), _contents(DEMO)
    for key in ("meta", "schema", "streams", "events", "gaps"):
        assert got[key] == want[key], key
    for sid, counts in want["counts"].items():
        assert np.array_equal(got["counts"][sid], counts), sid
        assert got["counts"][sid].dtype == counts.dtype
    assert DEMO.stat().st_size < 2_000_000


def test_demo_holds_a_usable_session():
    c = _contents(DEMO)
    assert c["meta"]["patient_code"] == "DEMO-0001"
    emg = next(s for s in c["streams"] if s.stream_id == "emg")
    assert {(ch.muscle, ch.side) for ch in emg.channels} >= {("gluteus_medius", "left"), ("tfl", "right")}
    n_emg = c["counts"]["emg"].shape[0]
    assert n_emg / emg.rate_hz > 40
    assert 0 < sum(n for _, n in c["gaps"]["emg"]) < 0.01 * n_emg  # a few lost packets, as a real link has
    starts = [e for e in c["events"] if e["kind"] == TRIAL_START]
    assert [e["payload"]["type"] for e in starts].count("side_lying_abduction") == 2
