"""Recordings from other systems: read a file into memory (`read_any`), then write it as a session
(`write_session`), or both at once (`import_file`).

Each format has its own small reader module; `detect_format` picks one from the file's content.
"""

from .detect import FORMATS, detect_format, read_any
from .imported import ImportedEvent, ImportedRecording, ImportFormatError
from .session import apply_channel_map, import_file, parse_channel_map, write_session

__all__ = [
    "FORMATS", "ImportFormatError", "ImportedEvent", "ImportedRecording", "apply_channel_map", "detect_format",
    "import_file", "parse_channel_map", "read_any", "write_session",
]
