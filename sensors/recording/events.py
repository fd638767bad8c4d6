"""Kinds and payloads of the session events the app records (besides the sources' own events).

- ``trial_start``: payload ``{"trial": int, "type": str, "repetitions": int}`` (planned repetitions).
- ``trial_stop``:  payload ``{"trial": int}``.
- ``rep``:         one repetition; ``index`` is its first sample, payload ``{"trial": int, "rep": int,
  "end_index": int}`` (one past its last sample, same stream).
- ``marker``:      payload ``{"text": str}``.

Events carry a stream sample ``index`` (preferred: exact) or ``time_s`` from session start.
"""

TRIAL_START = "trial_start"
TRIAL_STOP = "trial_stop"
REPETITION = "rep"
MARKER = "marker"
