"""The streaming kernels allocate nothing per chunk once warm (issue 2: "allocates nothing per chunk").

tracemalloc sees numpy's array allocations, so a single chunk-sized temporary (200 x 8 float64 = 12.8 kB)
would show in the peak; the threshold leaves room only for small Python objects (the result tuple).
"""

import tracemalloc

import numpy as np

from dsp.envelope import MovingRms
from dsp.filters import SosFilter, cascade, design_emg_bandpass, design_notch
from dsp.pipeline import PipelineConfig, StreamPipeline

CHUNK = (200, 8)
CALLS = 500
SMALL_BYTES = 4096  # well under one chunk-sized array


def _peak_growth(step) -> int:
    step()  # warm: compile/load and any lazy buffers
    tracemalloc.start()
    try:
        base, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        for _ in range(CALLS):
            step()
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert current - base < SMALL_BYTES  # nothing kept per chunk either
    return peak - base


def test_sos_cascade_with_output_buffer_allocates_nothing_per_chunk():
    design = cascade(design_emg_bandpass(2000.0), design_notch(2000.0, 50.0, 2))
    f = SosFilter(design, CHUNK[1])
    x = np.random.default_rng(0).standard_normal(CHUNK)
    out = np.empty_like(x)
    assert _peak_growth(lambda: f.process(x, out)) < SMALL_BYTES


def test_moving_rms_with_output_buffer_allocates_nothing_per_chunk():
    r = MovingRms(200, CHUNK[1])
    x = np.random.default_rng(1).standard_normal(CHUNK)
    out = np.empty_like(x)
    assert _peak_growth(lambda: r.process(x, out)) < SMALL_BYTES


def test_pipeline_chunk_allocates_nothing_but_its_result_tuple():
    p = StreamPipeline(PipelineConfig(2000.0, mains_hz=50, fatigue_window_s=None), CHUNK[1])
    x = np.random.default_rng(2).standard_normal(CHUNK)
    filtered, envelope = np.empty_like(x), np.empty_like(x)
    assert _peak_growth(lambda: p.process(x, filtered, envelope)) < SMALL_BYTES


def test_the_check_would_see_one_chunk_sized_temporary():
    x = np.random.default_rng(3).standard_normal(CHUNK)
    assert _peak_growth(lambda: np.abs(x)) > SMALL_BYTES  # the measurement itself can fail
