"""The one place that sets numba flags for every dsp kernel.

``cache=True`` so a warm start loads machine code instead of compiling; ``nogil=True`` so kernels can run beside
the GUI thread; no ``fastmath``, because reassociation would break bit-for-bit chunk invariance and agreement with
scipy.
"""

from __future__ import annotations

from numba import njit

KERNEL_FLAGS = {"cache": True, "nogil": True}

kernel = njit(**KERNEL_FLAGS)
