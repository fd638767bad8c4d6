"""Storing analysis results in a finished session file (one JSON document per analysis run)."""

from __future__ import annotations

import datetime as _dt
import os
import sqlite3

from sensors.recording.errors import RecordingError
from sensors.recording.reader import SessionReader
from sensors.recording.writer import software_version, to_json


def store_analysis_result(path: os.PathLike | str, name: str, params: dict, result: dict) -> int:
    """Append one analysis run to a session file; returns its ``run_id``.

    The file is validated as a session first (same checks as `SessionReader`); the samples are never touched.
    """
    SessionReader(path).close()
    try:
        conn = sqlite3.connect(path, isolation_level=None)
        try:
            cur = conn.execute(
                "INSERT INTO analysis_results(name, created_utc, software_version, params, result)"
                " VALUES (?, ?, ?, ?, ?)",
                (name, _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), software_version(),
                 to_json(params), to_json(result)))
            return int(cur.lastrowid)
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise RecordingError(f"{path}: cannot store analysis result: {exc}") from exc
