"""Input checks shared by the public dsp functions: one clear ValueError, never a numba typing error."""

from __future__ import annotations

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def positive(name: str, value: float) -> float:
    """Return ``value`` as float, or raise ValueError unless it is finite and > 0."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a positive number, got {value!r}") from None
    if not np.isfinite(v) or v <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return v


def float_dtype(dtype) -> np.dtype:
    """Return ``dtype`` as np.dtype, or raise ValueError unless it is float32 or float64."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise ValueError(f"dtype must be float32 or float64, got {dtype!r}") from None
    if dt not in FLOAT_DTYPES:
        raise ValueError(f"dtype must be float32 or float64, got {dt}")
    return dt


def samples_2d(name: str, x, n_channels: int | None = None, dtype: np.dtype | None = None) -> np.ndarray:
    """Return ``x`` as a C-contiguous float32/float64 array of shape (n_samples, n_channels).

    A 1-D array is taken as one channel. Integer input is converted to float64; anything else that is not
    float32/float64, not 1-D/2-D, or has the wrong channel count raises ValueError.
    """
    if not isinstance(x, np.ndarray):
        try:
            x = np.asarray(x)
        except Exception:
            raise ValueError(f"{name} must be an array of samples") from None
    if x.ndim == 1:
        x = x.reshape(-1, 1)
    elif x.ndim != 2:
        raise ValueError(f"{name} must have shape (n_samples, n_channels), got shape {x.shape}")
    if x.dtype not in FLOAT_DTYPES:
        if x.dtype.kind in "iub":
            x = x.astype(np.float64)
        else:
            raise ValueError(f"{name} must be float32 or float64, got {x.dtype}")
    if dtype is not None and x.dtype != dtype:
        raise ValueError(f"{name} must be {dtype}, got {x.dtype}")
    if n_channels is not None and x.shape[1] != n_channels:
        raise ValueError(f"{name} must have {n_channels} channel(s), got {x.shape[1]}")
    if not x.flags.c_contiguous or not x.flags.writeable:
        # numba compiles a separate specialisation for strided or read-only arrays; a copy avoids a compile on
        # the live path (e.g. frames decoded with np.frombuffer are read-only)
        x = np.array(x, order="C")
    return x


def out_buffer(out, shape: tuple[int, int], dtype: np.dtype) -> np.ndarray:
    """Return ``out`` if it is a C-contiguous array of ``shape`` and ``dtype``, a new one if None, else raise."""
    if out is None:
        return np.empty(shape, dtype)
    if not isinstance(out, np.ndarray) or out.shape != shape or out.dtype != dtype or not out.flags.c_contiguous:
        got = (getattr(out, "shape", None), getattr(out, "dtype", None))
        raise ValueError(f"out must be a C-contiguous {dtype} array of shape {shape}, got {got}")
    return out
