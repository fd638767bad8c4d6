"""Onsets on the square-burst fixture, %MVC, and the streaming pipeline against its batch form and scipy."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.signal as ss
from hypothesis import given, settings
from hypothesis import strategies as st

from dsp.filters import cascade, design_emg_bandpass, design_notch
from dsp.normalise import percent_mvc
from dsp.onset import _centred_moving_mean_abs, _hysteresis_segments, onsets_threshold, onsets_tkeo, teager_kaiser
from dsp.pipeline import PipelineConfig, StreamPipeline, run_batch
from dsp.spectral import SpectralSeries, spectral_indices
from naive_dsp import naive_hysteresis, naive_moving_rms

RATES = [500.0, 1000.0, 1024.0, 2000.0, 2048.0]


def square_bursts(rate_hz, seed=0):
    rng = np.random.default_rng(seed)
    n = int(8 * rate_hz)
    x = rng.standard_normal(n) * 0.02
    for a, b in [(2.0, 3.0), (5.0, 6.0)]:
        i, j = int(a * rate_hz), int(b * rate_hz)
        x[i:j] = rng.standard_normal(j - i)
    return x


@pytest.mark.parametrize("rate_hz", RATES)
@pytest.mark.parametrize("detector", [onsets_threshold, onsets_tkeo])
def test_square_burst_fixture(rate_hz, detector):
    x = square_bursts(rate_hz, seed=int(rate_hz))
    got = detector(x, rate_hz, rest=(0.0, 1.5))
    assert len(got) == 2
    for (on, off), (on_true, off_true) in zip(got, [(2.0, 3.0), (5.0, 6.0)]):
        assert abs(on - on_true) <= 0.05 and abs(off - off_true) <= 0.05


def test_hysteresis_and_min_duration_against_naive():
    rng = np.random.default_rng(1)
    for _ in range(50):
        tf = np.cumsum(rng.standard_normal(400))
        on, off = np.quantile(tf, 0.7), np.quantile(tf, 0.4)
        out = np.empty((201, 2), np.int64)
        for min_len, min_off_len in ((1, 1), (5, 2), (20, 7), (3, 12)):
            count = _hysteresis_segments(tf, on, off, min_len, min_off_len, out)
            assert [tuple(r) for r in out[:count]] == naive_hysteresis(tf, on, off, min_len, min_off_len)


@pytest.mark.parametrize("width", [1, 2, 7, 50, 399, 400, 1000])
def test_centred_moving_mean_against_naive(width):
    v = np.random.default_rng(width).standard_normal(400)
    half = width // 2
    expected = [np.mean(np.abs(v[max(0, i - half) : max(0, i - half + width)])) for i in range(len(v))]
    got = np.empty_like(v)
    _centred_moving_mean_abs(v, width, got)
    assert np.allclose(got, expected, rtol=1e-12, atol=1e-12)


def test_short_blips_are_ignored_and_open_burst_ends_at_signal_end():
    rate_hz = 1000.0
    x = np.random.default_rng(2).standard_normal(5000) * 0.02
    x[2000:2010] = 1.0  # 10 ms blip, shorter than the 50 ms minimum (5 ms test-function window)
    x[4000:] = np.random.default_rng(3).standard_normal(1000)
    got = onsets_threshold(x, rate_hz, rest=(0.0, 1.5), window_s=0.005, min_duration_s=0.05)
    assert len(got) == 1
    assert abs(got[0][0] - 4.0) <= 0.01 and got[0][1] == 5.0


def test_teager_kaiser_of_a_sine_is_constant():
    # psi of A sin(w n) is A^2 sin^2(w) exactly
    n = np.arange(1000)
    w = 2 * np.pi * 0.05
    psi = teager_kaiser(2.0 * np.sin(w * n))
    assert np.allclose(psi, 4.0 * np.sin(w) ** 2, rtol=1e-9)


@pytest.mark.parametrize(
    "call",
    [
        lambda: onsets_threshold(np.zeros(1000), 1000.0, rest=(0.0, 2.0)),
        lambda: onsets_threshold(np.zeros((1000, 2)), 1000.0, rest=(0.0, 0.5)),
        lambda: onsets_threshold(np.zeros(1000), 1000.0, rest=(0.0, 0.5), k_sd=1.0, k_sd_off=2.0),
        lambda: onsets_tkeo(np.zeros(1000), 1000.0, rest="start"),
        lambda: onsets_tkeo(np.zeros(1000), 100.0, rest=(0.0, 0.5), lowpass_hz=60.0),
        lambda: percent_mvc(np.ones((5, 2)), [1.0]),
        lambda: percent_mvc(np.ones((5, 2)), [1.0, 0.0]),
        lambda: PipelineConfig(1000.0, mains_hz=55),
        lambda: StreamPipeline(PipelineConfig(1000.0), 2).process(np.zeros((5, 3))),
        lambda: run_batch(np.zeros((5, 2, 2)), PipelineConfig(1000.0)),
        lambda: StreamPipeline(PipelineConfig(1000.0), 2).process(np.zeros((5, 2)), np.zeros((4, 2)), np.zeros((5, 2))),
    ],
)
def test_bad_input_raises_value_error(call):
    with pytest.raises(ValueError):
        call()


def test_percent_mvc_keeps_and_flags_values_above_100():
    x = np.array([[0.18, 0.31], [0.5, 0.62]])
    pct, above = percent_mvc(x, [0.5, 0.31])
    assert np.allclose(pct, [[36.0, 100.0], [100.0, 200.0]])
    assert above.tolist() == [[False, False], [False, True]]
    # GMed/TFL ratio fixture of clinical.md section 10: 0.36 / 0.31 = 1.16
    rng = np.random.default_rng(4)
    g, t = rng.standard_normal(60000), rng.standard_normal(60000)
    g, t = g / g.std() * 0.36 * 2.0, t / t.std() * 0.31 * 1.5
    rms = np.sqrt(np.mean(np.column_stack([g, t]) ** 2, axis=0))
    pct, _ = percent_mvc(rms[None, :], [2.0, 1.5])
    assert pct[0, 0] / pct[0, 1] == pytest.approx(0.36 / 0.31, rel=0.01)


CONFIG = PipelineConfig(1000.0, mains_hz=50, mains_harmonics=2, rms_window_s=0.05, fatigue_window_s=0.5,
                        fatigue_hop_s=0.25)


def test_batch_matches_scipy_chain():
    x = np.random.default_rng(5).standard_normal((4000, 3))
    res = run_batch(x, CONFIG)
    sos = cascade(design_emg_bandpass(1000.0), design_notch(1000.0, 50.0, 2)).sos
    filtered = ss.sosfilt(sos, x, axis=0)
    assert np.max(np.abs(res.filtered - filtered)) <= 1e-12 * np.max(np.abs(filtered))
    assert np.allclose(res.envelope, naive_moving_rms(filtered, 50), rtol=1e-9, atol=0)
    ref = spectral_indices(filtered, 1000.0, window_s=0.5, hop_s=0.25, band_hz=(20.0, 450.0))
    assert np.allclose(res.fatigue.mdf_hz, ref.mdf_hz) and np.allclose(res.fatigue.mnf_hz, ref.mnf_hz)


@settings(max_examples=25, deadline=None)
@given(cuts=st.lists(st.floats(0, 1), max_size=10), dtype=st.sampled_from([np.float32, np.float64]))
def test_streaming_equals_batch_for_any_chunking(cuts, dtype):
    x = np.random.default_rng(6).standard_normal((2500, 2)).astype(dtype)
    batch = run_batch(x, CONFIG)
    p = StreamPipeline(CONFIG, 2, dtype)
    pts = sorted({int(c * len(x)) for c in cuts} | {0, len(x)})
    parts = [p.process(x[a:b]) for a, b in zip(pts[:-1], pts[1:])]
    assert np.array_equal(np.concatenate([r.filtered for r in parts]), batch.filtered)
    assert np.array_equal(np.concatenate([r.envelope for r in parts]), batch.envelope)
    fatigue = SpectralSeries.concatenate([r.fatigue for r in parts], 2)
    assert np.array_equal(fatigue.time_s, batch.fatigue.time_s)
    assert np.allclose(fatigue.mdf_hz, batch.fatigue.mdf_hz, rtol=1e-12)


def test_sample_index_integrity_through_the_pipeline():
    # a ramp (arange) through the chain in uneven chunks, into caller buffers: equal to one batch call, so no
    # sample was lost, duplicated or reordered at any chunk boundary
    x = np.repeat(np.arange(6000, dtype=np.float64)[:, None], 2, axis=1) * 1e-3
    whole = run_batch(x, CONFIG)
    p = StreamPipeline(CONFIG, 2)
    filtered, envelope = np.full_like(x, np.nan), np.full_like(x, np.nan)
    rng = np.random.default_rng(7)
    pts = np.unique(np.concatenate([[0, len(x)], rng.integers(0, len(x), 80)]))
    n_windows = 0
    for a, b in zip(pts[:-1], pts[1:]):
        r = p.process(x[a:b], filtered[a:b], envelope[a:b])
        assert r.filtered.base is filtered and r.envelope.base is envelope  # written in place, not copied
        n_windows += len(r.fatigue)
    assert np.array_equal(filtered, whole.filtered) and np.array_equal(envelope, whole.envelope)
    assert n_windows == len(whole.fatigue) == (6000 - 500) // 250 + 1


def test_pipeline_upper_edge_adapts_and_notes_say_so():
    cfg = PipelineConfig(200.0, fatigue_window_s=1.0)
    assert cfg.design().notes == ("upper edge lowered from 450 Hz to 90 Hz for a 200 Hz rate",)
    x = np.random.default_rng(8).standard_normal((1000, 1))
    res = run_batch(x, cfg)
    assert np.all(res.fatigue.mdf_hz <= 90.0)


def test_reused_output_buffers_are_rechecked_when_the_chunk_size_changes():
    p = StreamPipeline(CONFIG, 2)
    fo, eo = np.empty((10, 2)), np.empty((10, 2))
    x = np.random.default_rng(9).standard_normal((10, 2))
    p.process(x, fo, eo)
    p.process(x, fo, eo)
    with pytest.raises(ValueError):
        p.process(x[:5], fo, eo)


WARMUP_PROBE = """
import dsp, dsp.envelope as e, dsp.filters as f, dsp.pipeline as p, dsp.spectral as s
dsp.warmup()
for k in (f._sos_kernel, e._rms_kernel, p._filter_envelope, s._prepare_segments, s._band_indices):
    sigs = [str(sig) for sig in k.signatures]
    single, double = ("complex64", "complex128") if k is s._band_indices else ("float32", "float64")
    print(k.__name__, any(single in t for t in sigs), any(double in t for t in sigs))
"""


def test_warmup_prepares_every_live_kernel_for_both_dtypes():
    # in a fresh interpreter, so kernels compiled by other tests cannot make it pass
    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]))
    out = subprocess.run([sys.executable, "-c", WARMUP_PROBE], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.split("\n")
    assert sorted(line for line in lines if line) == sorted(
        f"{name} True True" for name in ("_sos_kernel", "_rms_kernel", "_filter_envelope", "_prepare_segments",
                                         "_band_indices")
    )
