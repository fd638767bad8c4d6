"""Pure numerics for sEMG: filter design, numba kernels, envelopes, spectra, fatigue, onsets."""
