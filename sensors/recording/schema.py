"""The on-disk layout of a ``.medius`` session file (SQLite) and the checks that refuse anything else.

One SQLite database per session. ``PRAGMA application_id`` marks the file as a Medius session and
``PRAGMA user_version`` holds the schema version, so both are readable without touching any table. Raw samples
are stored as BLOBs of little-endian device counts in ``blocks``; per-channel scaling lives in ``channels`` so
``value = (count - offset) * gain`` reproduces the physical signal exactly as the device reported it.
"""

from __future__ import annotations

import os
import struct

#: "MEDS" — lets a reader tell a Medius session from any other SQLite database.
APPLICATION_ID = 0x4D454453
#: The schema this code writes and reads. Readers refuse any other version with a clear message: a newer file
#: needs a newer Medius; version 1 is the first published schema, so no older file exists to migrate. A future
#: version 2 adds its ``1 -> 2`` upgrade step here, applied on open.
SCHEMA_VERSION = 1

SCHEMA_SQL = """
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL               -- JSON
);
CREATE TABLE devices (
    device_id INTEGER PRIMARY KEY,
    name      TEXT NOT NULL UNIQUE    -- device/profile name (StreamInfo.device)
);
CREATE TABLE streams (
    stream_key  INTEGER PRIMARY KEY,
    stream_id   TEXT NOT NULL UNIQUE,
    device_id   INTEGER REFERENCES devices(device_id),
    rate_hz     REAL NOT NULL,
    dtype       TEXT NOT NULL,        -- numpy dtype of the counts, stored little-endian
    n_channels  INTEGER NOT NULL,
    spectral_ok INTEGER NOT NULL,
    note        TEXT NOT NULL
);
CREATE TABLE channels (
    stream_key INTEGER NOT NULL REFERENCES streams(stream_key),
    ch_index   INTEGER NOT NULL,
    label      TEXT NOT NULL,
    kind       TEXT NOT NULL,
    unit       TEXT NOT NULL,
    gain       REAL NOT NULL,         -- physical units per count
    "offset"   REAL NOT NULL,         -- count that maps to zero
    muscle     TEXT,
    side       TEXT,
    count_min  INTEGER,               -- ADC rails in counts (NULL: the dtype's limits). Files written before
    count_max  INTEGER,               -- these columns existed lack them and read as NULL
    PRIMARY KEY (stream_key, ch_index)
);
CREATE TABLE blocks (
    stream_key  INTEGER NOT NULL REFERENCES streams(stream_key),
    first_index INTEGER NOT NULL,
    n           INTEGER NOT NULL,
    data        BLOB NOT NULL,        -- (n, n_channels) counts, C order, little-endian
    PRIMARY KEY (stream_key, first_index)
);
CREATE TABLE gaps (
    stream_key  INTEGER NOT NULL REFERENCES streams(stream_key),
    start_index INTEGER NOT NULL,
    n_missing   INTEGER NOT NULL,
    PRIMARY KEY (stream_key, start_index)
);
CREATE TABLE events (
    event_id     INTEGER PRIMARY KEY,
    kind         TEXT NOT NULL,
    stream_id    TEXT,
    sample_index INTEGER,
    time_s       REAL,
    payload      TEXT NOT NULL        -- JSON
);
CREATE TABLE analysis_results (
    run_id           INTEGER PRIMARY KEY,
    name             TEXT NOT NULL,
    created_utc      TEXT NOT NULL,
    software_version TEXT NOT NULL,
    params           TEXT NOT NULL,   -- JSON
    result           TEXT NOT NULL    -- JSON
);
"""

REQUIRED_TABLES = frozenset({"meta", "devices", "streams", "channels", "blocks", "gaps", "events", "analysis_results"})

_SQLITE_MAGIC = b"SQLite format 3\x00"


def check_header(path: os.PathLike | str) -> str | None:
    """Return why ``path`` cannot be a complete SQLite database, or None if its header looks sound.

    Reads only the 100-byte header: the magic string, and the page count (valid when the change counter
    matches the version-valid-for number) against the file size, which catches a truncated copy before SQLite
    would report it as "malformed" halfway through a read.
    """
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(100)
    if len(head) < 100 or not head.startswith(_SQLITE_MAGIC):
        return "not an SQLite database (no SQLite header)"
    page_size = struct.unpack(">H", head[16:18])[0]
    page_size = 65536 if page_size == 1 else page_size
    change_counter, n_pages = struct.unpack(">II", head[24:32])
    valid_for = struct.unpack(">I", head[92:96])[0]
    if n_pages and change_counter == valid_for and size < n_pages * page_size:
        return f"truncated: the file is {size} bytes but its header describes {n_pages * page_size} bytes"
    return None
