"""The one exception the recording package raises."""


class RecordingError(Exception):
    """A session file cannot be read or written; the message says which file and why."""
