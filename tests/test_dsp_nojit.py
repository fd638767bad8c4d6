"""The kernels' Python source is what the naive-reference and invariance tests check, with numba switched off.

numba compiles the same source, but a subprocess with NUMBA_DISABLE_JIT=1 proves the kernels are plain, correct
Python too (and keeps them debuggable). A subset keeps it short.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SUBSET = "naive or chunk_invariance or tracker_equals or hysteresis or streaming_equals or sample_index"
FILES = ["test_dsp_filters.py", "test_dsp_envelope.py", "test_dsp_spectral.py", "test_dsp_onset_pipeline.py"]


def test_dsp_subset_passes_with_numba_disabled():
    env = dict(os.environ, NUMBA_DISABLE_JIT="1", PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    probe = subprocess.run(
        [sys.executable, "-c", "import dsp.filters as f, numba; print(type(f._sos_kernel).__name__)"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert probe.stdout.strip() == "function", probe.stdout + probe.stderr  # really not compiled
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", SUBSET,
         *[str(ROOT / "tests" / f) for f in FILES]],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=540,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert " passed" in result.stdout and "failed" not in result.stdout
