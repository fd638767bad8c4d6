"""The session file: one SQLite file per session holding raw counts, scaling, gaps, events and results.

See `SessionWriter`, `SessionReader` and, for live recording off the GUI thread, `Recorder`.
"""

from sensors.recording.errors import RecordingError
from sensors.recording.events import MARKER, REPETITION, TRIAL_START, TRIAL_STOP
from sensors.recording.reader import SessionReader
from sensors.recording.recorder import Recorder
from sensors.recording.results import store_analysis_result
from sensors.recording.schema import SCHEMA_VERSION
from sensors.recording.writer import COMMIT_INTERVAL_S, SessionWriter

__all__ = [
    "COMMIT_INTERVAL_S", "MARKER", "REPETITION", "Recorder", "RecordingError", "SCHEMA_VERSION", "SessionReader",
    "SessionWriter", "TRIAL_START", "TRIAL_STOP", "store_analysis_result",
]
