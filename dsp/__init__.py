"""Pure numerics for sEMG: filter design, numba kernels, envelopes, spectra, fatigue, onsets."""


def warmup() -> None:
    """Load (or, on a cold numba cache, compile) every kernel the live path runs, for float32 and float64.

    Call once at start-up, before the first chunk arrives, so no live tick ever compiles. Takes ~0.1 s with a warm
    cache (mostly importing scipy.signal for filter design), several seconds on a cold one.
    """
    import numpy as np

    from dsp.envelope import MovingRms
    from dsp.filters import SosFilter
    from dsp.pipeline import PipelineConfig, StreamPipeline
    from dsp.spectral import spectral_indices

    config = PipelineConfig(1000.0, mains_hz=50, fatigue_window_s=0.1, fatigue_hop_s=0.05)
    for dtype in (np.float32, np.float64):
        x = np.zeros((200, 2), dtype)
        pipeline = StreamPipeline(config, 2, dtype)
        pipeline.process(x)
        SosFilter(pipeline.design, 2, dtype).process(x)
        MovingRms(10, 2, dtype).process(x)
        spectral_indices(x, 1000.0, window_s=0.1, hop_s=0.05, nperseg=64)
