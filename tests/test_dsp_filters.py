"""Filter design and the streaming SOS kernel against scipy, a naive reference, and real mains hum."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal as ss
from hypothesis import given, settings
from hypothesis import strategies as st

from dsp.filters import (
    FilterDesign,
    SosFilter,
    cascade,
    design_emg_bandpass,
    design_lowpass,
    design_notch,
    sosfilt,
)
from dsp_data import delsys_emg
from naive_dsp import naive_sosfilt

RATES = [500.0, 1000.0, 1024.0, 2000.0, 2048.0]


def emg_chain(rate_hz, mains_hz=50.0, harmonics=2):
    return cascade(design_emg_bandpass(rate_hz), design_notch(rate_hz, mains_hz, harmonics))


def gain_db(sos, f_hz, rate_hz):
    _, h = ss.sosfreqz(sos, worN=[f_hz], fs=rate_hz)
    return 20 * np.log10(abs(h[0]))


def split_points(n, cuts):
    return sorted({int(c * n) for c in cuts} | {0, n})


@pytest.mark.parametrize("rate_hz", RATES)
@pytest.mark.parametrize("n_channels", [1, 3, 8, 9])
def test_matches_scipy_sosfilt_with_zi(rate_hz, n_channels):
    design = emg_chain(rate_hz)
    x = np.random.default_rng(int(rate_hz) + n_channels).standard_normal((3000, n_channels)) * 100.0
    zi = np.zeros((design.sos.shape[0], 2, n_channels))
    expected = np.empty_like(x)
    for a, b in [(0, 1000), (1000, 1001), (1001, 3000)]:  # scipy streaming, its own zi carried
        expected[a:b], zi = ss.sosfilt(design.sos, x[a:b], axis=0, zi=zi)
    f = SosFilter(design, n_channels)
    got = np.vstack([f.process(x[:1000]), f.process(x[1000:1001]), f.process(x[1001:])])
    assert np.max(np.abs(got - expected)) <= 1e-12 * np.max(np.abs(expected))
    # the carried state is scipy's zi too
    assert np.max(np.abs(f.zi - zi)) <= 1e-12 * np.max(np.abs(zi))


def test_matches_naive_reference():
    design = emg_chain(1000.0, 50.0, 1)
    x = np.random.default_rng(1).standard_normal((400, 2))
    expected = naive_sosfilt(design.sos, x)
    got = sosfilt(design, x)
    assert np.max(np.abs(got - expected)) <= 1e-12 * np.max(np.abs(expected))


def test_float32_io_with_float64_state():
    design = emg_chain(2000.0)
    x = np.random.default_rng(2).standard_normal((5000, 4)).astype(np.float32)
    got = sosfilt(design, x)
    assert got.dtype == np.float32
    expected = ss.sosfilt(design.sos, x.astype(np.float64), axis=0)
    # only the output rounding to float32 differs
    assert np.max(np.abs(got - expected)) <= 1e-6 * np.max(np.abs(expected))


@settings(max_examples=40, deadline=None)
@given(
    cuts=st.lists(st.floats(0, 1), max_size=12),
    dtype=st.sampled_from([np.float32, np.float64]),
    n_channels=st.integers(1, 9),
)
def test_chunk_invariance_bit_for_bit(cuts, dtype, n_channels):
    design = emg_chain(1024.0, 60.0, 3)
    x = np.random.default_rng(n_channels).standard_normal((700, n_channels)).astype(dtype)
    whole = SosFilter(design, n_channels, dtype).process(x)
    f = SosFilter(design, n_channels, dtype)
    pts = split_points(len(x), cuts)
    out = np.empty_like(x)
    for a, b in zip(pts[:-1], pts[1:]):
        f.process(x[a:b], out[a:b])
    assert np.array_equal(out, whole)


def test_sample_index_integrity_identity_sections():
    # arange through an identity cascade in uneven chunks, in place: nothing lost, duplicated or reordered.
    sos = np.tile([1.0, 0.0, 0.0, 1.0, 0.0, 0.0], (3, 1))
    x = np.arange(2 * 10007, dtype=np.float64).reshape(-1, 2)
    f = SosFilter(sos, 2)
    rng = np.random.default_rng(3)
    pts = np.unique(np.concatenate([[0, len(x)], rng.integers(0, len(x), 50)]))
    buf = x.copy()
    for a, b in zip(pts[:-1], pts[1:]):
        f.process(buf[a:b], out=buf[a:b])
    assert np.array_equal(buf, x)


def test_reset_restarts_from_zero_state():
    design = emg_chain(1000.0)
    x = np.random.default_rng(4).standard_normal((300, 2))
    f = SosFilter(design, 2)
    first = f.process(x).copy()
    f.reset()
    assert np.array_equal(f.process(x), first)


@pytest.mark.parametrize("rate_hz", RATES)
def test_bandpass_edges_are_minus_3_db(rate_hz):
    d = design_emg_bandpass(rate_hz)
    high = min(450.0, 0.45 * rate_hz)
    assert gain_db(d.sos, 20.0, rate_hz) == pytest.approx(-3.01, abs=0.05)
    assert gain_db(d.sos, high, rate_hz) == pytest.approx(-3.01, abs=0.05)
    assert gain_db(d.sos, np.sqrt(20.0 * high), rate_hz) == pytest.approx(0.0, abs=0.05)
    assert d.sos.shape == (4, 6) and d.rate_hz == rate_hz
    assert bool(d.notes) == (high < 450.0)


def test_bandpass_upper_edge_adapts_for_a_200_hz_device():
    d = design_emg_bandpass(200.0)
    assert d.notes == ("upper edge lowered from 450 Hz to 90 Hz for a 200 Hz rate",)
    assert "20-90 Hz" in d.description
    assert gain_db(d.sos, 90.0, 200.0) == pytest.approx(-3.01, abs=0.05)


@pytest.mark.parametrize("mains_hz", [50.0, 60.0])
@pytest.mark.parametrize("rate_hz", RATES)
def test_notch_and_harmonics(mains_hz, rate_hz):
    d = design_notch(rate_hz, mains_hz, harmonics=4)
    kept = [mains_hz * k for k in range(1, 5) if mains_hz * k < rate_hz / 2]
    assert d.sos.shape == (len(kept), 6)
    for f in kept:
        assert gain_db(d.sos, f, rate_hz) < -60
    assert gain_db(d.sos, mains_hz * 1.5, rate_hz) > -0.1  # between notches the band is untouched
    assert bool(d.notes) == (len(kept) < 4)


def test_lowpass_and_cascade():
    lp = design_lowpass(1000.0, 6.0)
    assert gain_db(lp.sos, 6.0, 1000.0) == pytest.approx(-3.01, abs=0.05)
    b, a = ss.butter(2, 6.0, fs=1000.0)
    _, h_ref = ss.freqz(b, a, worN=[1.0, 6.0, 30.0], fs=1000.0)
    _, h = ss.sosfreqz(lp.sos, worN=[1.0, 6.0, 30.0], fs=1000.0)
    assert np.allclose(abs(h), abs(h_ref), rtol=1e-9)
    both = cascade(design_emg_bandpass(200.0), design_notch(200.0, 50.0))
    assert both.sos.shape == (5, 6) and len(both.notes) == 1 and "->" in both.description
    assert isinstance(both, FilterDesign)


@pytest.mark.parametrize(
    "call",
    [
        lambda: design_emg_bandpass(0.0),
        lambda: design_emg_bandpass(float("nan")),
        lambda: design_emg_bandpass(60.0, low_hz=30.0),  # 0.45 x 60 = 27 Hz < 30 Hz
        lambda: design_emg_bandpass(1000.0, order=0),
        lambda: design_notch(100.0, 50.0),
        lambda: design_notch(1000.0, harmonics=0),
        lambda: design_lowpass(100.0, 60.0),
        lambda: cascade(),
        lambda: cascade(design_notch(1000.0), design_notch(2000.0)),
        lambda: SosFilter(np.zeros((2, 5)), 1),
        lambda: SosFilter(design_notch(1000.0), 0),
        lambda: SosFilter(design_notch(1000.0), 2, dtype=np.int16),
        lambda: SosFilter(design_notch(1000.0), 2).process(np.zeros((5, 3))),
        lambda: SosFilter(design_notch(1000.0), 2).process(np.zeros((5, 2), np.float32)),
        lambda: SosFilter(design_notch(1000.0), 2).process(np.zeros((5, 2, 1))),
        lambda: SosFilter(design_notch(1000.0), 2).process(np.zeros((5, 2)), out=np.zeros((4, 2))),
        lambda: sosfilt(design_notch(1000.0), np.array(["a", "b"])),
    ],
)
def test_bad_input_raises_value_error(call):
    with pytest.raises(ValueError):
        call()


def test_60_hz_notch_removes_mains_from_delsys_recording():
    emg_v, rate_hz = delsys_emg(1)  # sensor 10: dominated by 60 Hz mains
    assert rate_hz == pytest.approx(1259.26, abs=0.1)
    notched = sosfilt(design_notch(rate_hz, 60.0, harmonics=3), emg_v)[:, 0]
    settle = int(0.5 * rate_hz)  # skip the notch's start-up transient (time constant ~Q / (pi f0) = 0.16 s)
    before = emg_v[settle:] - emg_v[settle:].mean()
    after = notched[settle:] - notched[settle:].mean()
    f, p_before = ss.periodogram(before, rate_hz, window="hann")
    _, p_after = ss.periodogram(after, rate_hz, window="hann")
    peak = np.argmax(p_before)
    assert 59.0 <= f[peak] <= 61.0
    removed_db = 10 * np.log10(p_before[peak] / p_after[peak])
    assert removed_db >= 30.0, removed_db
    # the rest of the band is left alone: 70-110 Hz power (between the notches) changes by < 0.5 dB
    band = (f > 70) & (f < 110)
    assert abs(10 * np.log10(p_before[band].sum() / p_after[band].sum())) < 0.5
