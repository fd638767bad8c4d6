"""Spectral indices against clinical.md section 10 known answers, a naive DFT, scipy.signal.welch and real EMG."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal as ss
import scipy.stats
from hypothesis import given, settings
from hypothesis import strategies as st

from dsp.spectral import (
    FatigueTracker,
    SpectralSeries,
    dimitrov_fi_nsm5,
    mean_frequency,
    median_frequency,
    normalised_slope,
    power_spectrum,
    spectral_indices,
)
from dsp_data import physionet, uci
from naive_dsp import naive_indices, naive_psd

RATES = [500.0, 1000.0, 1024.0, 2000.0, 2048.0]


def brick_wall_noise(rate_hz, seconds, f1, f2, seed):
    n = int(seconds * rate_hz)
    spec = np.fft.rfft(np.random.default_rng(seed).standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / rate_hz)
    spec[(f < f1) | (f > f2)] = 0
    return np.fft.irfft(spec, n)


def flat_band_fi(f1, f2):
    return np.log(f2 / f1) / ((f2**6 - f1**6) / 6)


def welch_indices(x, rate_hz, nperseg, band):
    """The clinical.md definitions on top of scipy.signal.welch (the independent reference)."""
    f, p = ss.welch(x, rate_hz, window="hann", nperseg=nperseg, axis=0)
    sel = (f >= band[0]) & (f <= band[1])
    f, p = f[sel], p[sel]
    cs = np.cumsum(p, axis=0)
    mdf = f[np.argmax(cs >= cs[-1] / 2, axis=0)]
    mnf = (f[:, None] * p.reshape(len(f), -1)).sum(0) / p.reshape(len(f), -1).sum(0)
    return mdf, mnf


@pytest.mark.parametrize("rate_hz", RATES)
def test_sine_fixture(rate_hz):
    t = np.arange(int(10 * rate_hz)) / rate_hz
    x = np.sin(2 * np.pi * 100.0 * t)
    s = spectral_indices(x, rate_hz, window_s=10.0, hop_s=10.0, nperseg=1024)
    bin_hz = rate_hz / 1024
    assert len(s) == 1 and s.time_s[0] == pytest.approx(5.0, abs=1 / rate_hz)
    assert abs(s.mdf_hz[0, 0] - 100.0) <= bin_hz
    assert abs(s.mnf_hz[0, 0] - 100.0) <= bin_hz
    assert s.rms[0, 0] == pytest.approx(1 / np.sqrt(2), rel=1e-6)
    assert s.band_power[0, 0] == pytest.approx(0.5, rel=0.02)  # a sine's power A^2/2, all inside the band


@pytest.mark.parametrize("rate_hz", RATES)
@pytest.mark.parametrize("band", [(20.0, 450.0), (50.0, 150.0)])
def test_brick_wall_noise_fixture(rate_hz, band):
    f1, f2 = band[0], min(band[1], 0.45 * rate_hz)  # at 500 Hz the flat band ends at 225 Hz
    x = brick_wall_noise(rate_hz, 60.0, f1, f2, seed=int(rate_hz))
    s = spectral_indices(x, rate_hz, window_s=60.0, hop_s=60.0, band_hz=(f1, f2), nperseg=2048)
    centre = (f1 + f2) / 2
    assert s.mdf_hz[0, 0] == pytest.approx(centre, rel=0.01)
    assert s.mnf_hz[0, 0] == pytest.approx(centre, rel=0.01)
    assert s.fi_nsm5[0, 0] == pytest.approx(flat_band_fi(f1, f2), rel=0.02)
    assert s.band_power[0, 0] == pytest.approx(np.var(x), rel=0.02)


def test_brick_wall_fixture_values_from_clinical_table():
    # One 60 s realisation scatters by ~1.5 Hz (SD) in MDF; the table's +-1 Hz holds for the mean of 5 seeds.
    x = np.column_stack([brick_wall_noise(2000.0, 60.0, 20.0, 450.0, seed=seed) for seed in range(5)])
    s = spectral_indices(x, 2000.0, window_s=60.0, hop_s=60.0, nperseg=2048)
    assert abs(s.mdf_hz[0].mean() - 235.0) <= 1.0 and abs(s.mnf_hz[0].mean() - 235.0) <= 1.0
    assert s.fi_nsm5[0].mean() == pytest.approx(2.250e-15, rel=0.02)


@pytest.mark.parametrize("rate_hz", RATES)
def test_stepping_frequency_sine_fixture(rate_hz):
    n = int(rate_hz)
    k = np.arange(60)
    f_k = 120.0 - 30.0 * k / 59.0
    t = np.arange(n) / rate_hz
    x = np.concatenate([np.sin(2 * np.pi * f * t) for f in f_k])
    s = spectral_indices(x, rate_hz, window_s=1.0, hop_s=1.0)
    assert len(s) == 60
    fit = normalised_slope(s.time_s - s.time_s[0], s.mdf_hz[:, 0])
    assert fit.slope_per_s == pytest.approx(-0.5085, abs=0.02)
    assert fit.slope_pct_per_s == pytest.approx(-0.4237, abs=0.02)
    assert fit.r < -0.99
    assert np.max(np.abs(s.mdf_hz[:, 0] - f_k)) <= 1.0 + 1e-9  # 1 Hz bins
    assert np.max(np.abs(s.mnf_hz[:, 0] - f_k) / f_k) < 0.01


@pytest.mark.parametrize("rate_hz", [1000.0, 2000.0])
def test_stochastic_fatigue_fixture(rate_hz):
    slopes = []
    for seed in range(4):
        rng = np.random.default_rng(seed)
        n = int(2 * rate_hz)
        f = np.fft.rfftfreq(n, 1 / rate_hz)
        parts = []
        for w in range(30):
            fc = 120.0 - 30.0 * w / 29.0
            spec = np.fft.rfft(rng.standard_normal(n)) * np.exp(-0.5 * ((f - fc) / 40.0) ** 2)
            parts.append(np.fft.irfft(spec, n))
        s = spectral_indices(np.concatenate(parts), rate_hz, window_s=2.0, hop_s=2.0, nperseg=1024)
        slopes.append(normalised_slope(s.time_s - s.time_s[0], s.mdf_hz[:, 0]).slope_pct_per_s)
    assert np.mean(slopes) == pytest.approx(-(30 / 58) / 120 * 100, abs=0.08)


def test_matches_naive_dft_reference():
    rate_hz = 500.0
    x = np.random.default_rng(11).standard_normal((200, 2)) * 3 + 1.5  # offset: the mean is removed per segment
    s = spectral_indices(x, rate_hz, window_s=0.128, hop_s=0.05, band_hz=(20.0, 200.0))
    win, hop = 64, 25
    assert len(s) == (200 - win) // hop + 1
    for k in range(len(s)):
        for c in range(2):
            freqs, psd = naive_psd(x[k * hop : k * hop + win, c], rate_hz)
            mdf, mnf, fi, bp = naive_indices(freqs, psd, (20.0, 200.0))
            assert s.mdf_hz[k, c] == mdf
            assert s.mnf_hz[k, c] == pytest.approx(mnf, rel=1e-9)
            assert s.fi_nsm5[k, c] == pytest.approx(fi, rel=1e-9)
            assert s.band_power[k, c] == pytest.approx(bp, rel=1e-9)
            assert s.rms[k, c] == pytest.approx(np.sqrt(np.mean(x[k * hop : k * hop + win, c] ** 2)), rel=1e-12)
        assert s.time_s[k] == pytest.approx((k * hop + win / 2) / rate_hz)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_power_spectrum_and_helpers_match_scipy_welch(dtype):
    rate_hz = 1024.0
    x = (np.random.default_rng(12).standard_normal((5000, 3)) + 0.3).astype(dtype)
    f, p = power_spectrum(x, rate_hz, nperseg=512, band_hz=(20.0, 450.0))
    f_ref, p_ref = ss.welch(x.astype(np.float64), rate_hz, window="hann", nperseg=512, axis=0)
    sel = (f_ref >= 20.0) & (f_ref <= 450.0)
    assert np.allclose(f, f_ref[sel])
    rtol = 1e-10 if dtype == np.float64 else 1e-4
    assert np.allclose(p, p_ref[sel], rtol=rtol, atol=0)
    mdf_ref, mnf_ref = welch_indices(x.astype(np.float64), rate_hz, 512, (20.0, 450.0))
    assert np.array_equal(median_frequency(f, p), mdf_ref)
    assert np.allclose(mean_frequency(f, p), mnf_ref, rtol=1e-6)
    fi_ref = (p_ref[sel] / f_ref[sel, None]).sum(0) / (p_ref[sel] * f_ref[sel, None] ** 5).sum(0)
    assert np.allclose(dimitrov_fi_nsm5(f, p), fi_ref, rtol=1e-4)
    # the windowed path with Welch segments inside each window agrees with welch on that window
    s = spectral_indices(x, rate_hz, window_s=2.0, hop_s=1.0, nperseg=512)
    mdf_w, mnf_w = welch_indices(x[1024 : 1024 + 2048].astype(np.float64), rate_hz, 512, (20.0, 450.0))
    assert np.array_equal(s.mdf_hz[1], mdf_w)
    assert np.allclose(s.mnf_hz[1], mnf_w, rtol=1e-5)


@settings(max_examples=30, deadline=None)
@given(cuts=st.lists(st.floats(0, 1), max_size=10), hop_s=st.sampled_from([0.05, 0.1, 0.25, 0.4]))
def test_tracker_equals_batch_for_any_chunking(cuts, hop_s):
    rate_hz = 500.0
    x = np.random.default_rng(13).standard_normal((1500, 2))
    batch = spectral_indices(x, rate_hz, window_s=0.25, hop_s=hop_s, band_hz=(20.0, 200.0), nperseg=64)
    tr = FatigueTracker(rate_hz, 2, window_s=0.25, hop_s=hop_s, band_hz=(20.0, 200.0), nperseg=64)
    pts = sorted({int(c * len(x)) for c in cuts} | {0, len(x)})
    got = SpectralSeries.concatenate([tr.process(x[a:b]) for a, b in zip(pts[:-1], pts[1:])], 2)
    assert np.array_equal(got.time_s, batch.time_s)
    for name in ("mdf_hz", "mnf_hz", "fi_nsm5", "band_power", "rms"):
        assert np.allclose(getattr(got, name), getattr(batch, name), rtol=1e-12, atol=0), name


def test_tracker_hop_longer_than_window_and_reset():
    x = np.random.default_rng(14).standard_normal((3000, 1))
    batch = spectral_indices(x, 1000.0, window_s=0.2, hop_s=0.5)
    tr = FatigueTracker(1000.0, 1, window_s=0.2, hop_s=0.5)
    got = SpectralSeries.concatenate([tr.process(x[i : i + 37]) for i in range(0, 3000, 37)], 1)
    assert np.array_equal(got.time_s, batch.time_s) and np.allclose(got.mdf_hz, batch.mdf_hz)
    tr.reset()
    again = tr.process(x)
    assert np.array_equal(again.time_s, batch.time_s)
    assert len(tr.process(x[:10])) == 0


def test_normalised_slope_matches_linregress():
    t = np.arange(0.5, 30.5, 1.0)
    v = np.column_stack([100 - 0.3 * t + np.sin(t), 80 + 0.1 * t])
    fit = normalised_slope(t, v)
    for c in range(2):
        ref = scipy.stats.linregress(t, v[:, c])
        assert fit.slope_per_s[c] == pytest.approx(ref.slope, rel=1e-12)
        assert fit.intercept[c] == pytest.approx(ref.intercept, rel=1e-12)
        assert fit.r[c] == pytest.approx(ref.rvalue, rel=1e-12)
        initial = ref.intercept + ref.slope * 0.5
        assert fit.initial[c] == pytest.approx(initial, rel=1e-12)
        assert fit.slope_pct_per_s[c] == pytest.approx(100 * ref.slope / initial, rel=1e-12)


@pytest.mark.parametrize("name", ["emg_healthy", "emg_myopathy", "emg_neuropathy"])
def test_physionet_mdf_mnf_agree_with_welch(name):
    x, rate_hz = physionet(name)
    assert rate_hz == 4000.0
    s = spectral_indices(x, rate_hz, window_s=1.0, hop_s=1.0)
    for k in range(len(s)):
        seg = x[k * 4000 : (k + 1) * 4000]
        mdf, mnf = welch_indices(seg, rate_hz, 4000, (20.0, 450.0))
        assert abs(s.mdf_hz[k, 0] - mdf) <= 0.5
        assert abs(s.mnf_hz[k, 0] - mnf) <= 0.5


@pytest.mark.parametrize("name", ["3Amar.txt", "5Nsen.txt", "5Nmar.txt"])
def test_uci_mdf_mnf_agree_with_welch(name):
    x, rate_hz = uci(name)
    assert x.shape[1] == 4 and len(x) > 4000
    s = spectral_indices(x.astype(np.float32), rate_hz, window_s=2.0, hop_s=1.0, nperseg=1024)
    for k in range(len(s)):
        mdf, mnf = welch_indices(x[k * 1000 : k * 1000 + 2000], rate_hz, 1024, (20.0, 450.0))
        assert np.all(np.abs(s.mdf_hz[k] - mdf) <= 0.5)
        assert np.all(np.abs(s.mnf_hz[k] - mnf) <= 0.5)


@pytest.mark.parametrize(
    "call",
    [
        lambda: spectral_indices(np.zeros(100), 0.0),
        lambda: spectral_indices(np.zeros(100), 1000.0, window_s=0.001),
        lambda: spectral_indices(np.zeros(1000), 1000.0, nperseg=5000),
        lambda: spectral_indices(np.zeros(1000), 1000.0, band_hz=(0.0, 100.0)),
        lambda: spectral_indices(np.zeros(1000), 1000.0, band_hz=(600.0, 700.0)),
        lambda: FatigueTracker(1000.0, 2).process(np.zeros((10, 3))),
        lambda: normalised_slope([1.0], [2.0]),
        lambda: normalised_slope([1.0, 1.0], [2.0, 3.0]),
        lambda: median_frequency(np.arange(5.0), np.ones(4)),
        lambda: dimitrov_fi_nsm5(np.arange(5.0), np.ones(5)),
    ],
)
def test_bad_input_raises_value_error(call):
    with pytest.raises(ValueError):
        call()
