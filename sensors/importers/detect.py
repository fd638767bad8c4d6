"""Which reader a file needs: content first (magic bytes, header lines), the extension only to break ties."""

from __future__ import annotations

from pathlib import Path

from . import csv_text, delsys, edf, uci
from .imported import ImportedRecording, ImportFormatError

#: Reader name -> what it reads, for help texts and error messages.
FORMATS = {
    "edf": "EDF/EDF+/BDF/BDF+ (.edf, .bdf)",
    "csv": "generic delimited text (.csv, .tsv, .txt)",
    "uci": "UCI lower-limb EMG text (.txt)",
    "delsys": "Delsys Trigno EMGworks CSV (.csv)",
    "opensignals": "PLUX OpenSignals HDF5 (.h5)",
    "xdf": "Lab Streaming Layer XDF (.xdf)",
    "wfdb": "PhysioNet WFDB, format 16 (.hea + .dat)",
}
#: Formats whose files carry their own sampling rate: a given rate would contradict the file.
_RATE_IN_FILE = {"edf", "delsys", "opensignals", "xdf", "wfdb"}
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


def detect_format(path: str | Path) -> str:
    """Name of the reader for ``path`` (a key of `FORMATS`); raises `ImportFormatError` if none fits."""
    path = Path(path)
    if not path.is_file():
        raise ImportFormatError(path, "no such file")
    ext = path.suffix.lower()
    if ext in (".hea", ".dat") and path.with_suffix(".hea").is_file():
        return "wfdb"
    with open(path, "rb") as fh:
        head = fh.read(4096)
    if not head:
        raise ImportFormatError(path, "file is empty")
    if head.startswith(b"XDF:"):
        return "xdf"
    if head.startswith(_HDF5_MAGIC):
        return "opensignals"
    if edf.looks_like(head):
        return "edf"
    if ext in (".edf", ".bdf", ".rec", ".xdf", ".h5", ".hdf5", ".hea", ".dat"):
        raise ImportFormatError(path, f"content does not match its {ext} extension (wrong or damaged header)")
    if b"\x00" in head:
        raise ImportFormatError(path, f"unrecognised binary file; importable formats: {', '.join(FORMATS.values())}")
    text = head.decode("utf-8", "replace").lstrip("\ufeff")
    if delsys.looks_like(text):
        return "delsys"
    if uci.looks_like(text):
        return "uci"
    return "csv"


def read_any(path: str | Path, rate_hz: float | None = None) -> ImportedRecording:
    """Read any supported file into memory.

    Parameters
    ----------
    path : str or Path
        The file (for WFDB, the ``.hea`` or the ``.dat``).
    rate_hz : float, optional
        Sampling rate in Hz for formats that do not state one (generic CSV/TSV without a time column, where it
        is required; the UCI text format, where it replaces the dataset's 1000 Hz). Refused for formats that
        carry their own rate.

    Returns
    -------
    ImportedRecording

    Raises
    ------
    ImportFormatError
        For anything that cannot be imported, naming the file and the problem.
    """
    path = Path(path)
    fmt = detect_format(path)
    if rate_hz is not None and fmt in _RATE_IN_FILE:
        raise ImportFormatError(path, f"{FORMATS[fmt]} files state their own sampling rate; do not give one")
    from . import opensignals, wfdb, xdf  # noqa: F401  (h5py/pyxdf/pyedflib are imported inside the readers)

    if fmt == "csv":
        return csv_text.read(path, rate_hz)
    if fmt == "uci":
        return uci.read(path, rate_hz)
    if fmt == "delsys":
        return delsys.read(path)
    if fmt == "edf":
        return edf.read(path)
    if fmt == "opensignals":
        return opensignals.read(path)
    if fmt == "xdf":
        return xdf.read(path)
    return wfdb.read(path)
