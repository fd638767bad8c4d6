"""PLUX OpenSignals HDF5 (``.h5``): one group per device (named by its MAC address), one stream per device
(``plux_<mac digits>``).

Group attributes give ``sampling rate``, ``resolution`` (bits per analogue channel, in ``channels`` order) and
``channels`` (port numbers); datasets ``raw/channel_N`` hold ADC counts, ``raw/nSeq`` a sequence counter. Each
device becomes one stream. EMG-sensor channels are scaled to mV with PLUX's EMG transfer function
``((ADC / 2**n) - 0.5) * VCC / G`` (VCC = 3 V, G = 1000), i.e. gain ``3000 / 2**n`` mV per count around an offset
of ``2**(n-1)`` counts; other sensors keep counts. Digital inputs and the zoom pyramid (``support/``) are not
signals and are not imported.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from sensors.stream import ChannelInfo, ChannelKind, StreamInfo

from .imported import MAX_CHANNELS, ImportedRecording, ImportFormatError, check_rate, check_size

#: PLUX EMG sensor: supply voltage (V) and amplifier gain, from the sensor datasheet's transfer function.
_EMG_VCC_V = 3.0
_EMG_GAIN = 1000.0


def read(path: Path) -> ImportedRecording:
    import h5py  # a heavy import, only needed for this format

    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise ImportFormatError(path, f"not a readable HDF5 file ({e})") from None
    with f:
        devices = [k for k in f if isinstance(f[k], h5py.Group) and "sampling rate" in f[k].attrs]
        if not devices:
            raise ImportFormatError(path, "no OpenSignals device group (a group with a 'sampling rate' attribute)")
        streams, counts, aliases, meta = [], {}, {}, {"devices": {}}
        declared_total = 0
        for mac in devices:
            g = f[mac]
            a = g.attrs
            what = f"device {mac}"
            rate = check_rate(path, _scalar(a["sampling rate"]), f"{what} sampling rate")
            ports = [int(p) for p in np.atleast_1d(a.get("channels", []))]
            res = [int(r) for r in np.atleast_1d(a.get("resolution", []))]
            if not ports:
                raise ImportFormatError(path, f"{what}: no analogue channels listed")
            if len(ports) > MAX_CHANNELS:
                raise ImportFormatError(path, f"{what}: {len(ports)} channels is beyond the importer's limit")
            if len(res) == 1:
                res = res * len(ports)
            if len(res) != len(ports) or any(not 1 <= r <= 24 for r in res):
                raise ImportFormatError(path, f"{what}: resolution {res} does not fit channels {ports}")
            raw = g.get("raw")
            if raw is None:
                raise ImportFormatError(path, f"{what}: no 'raw' group")
            n = None
            cols, chans, al = [], [], []
            for port, bits in zip(ports, res):
                name = f"channel_{port}"
                ds = raw.get(name)
                if ds is None or not isinstance(ds, h5py.Dataset):
                    raise ImportFormatError(path, f"{what}: dataset raw/{name} listed in 'channels' is missing")
                if ds.ndim not in (1, 2) or (ds.ndim == 2 and ds.shape[1] != 1) or ds.dtype.kind not in "iu":
                    raise ImportFormatError(path, f"{what}: raw/{name} is {ds.shape} {ds.dtype}, expected one integer column")
                declared_total += ds.shape[0]
                check_size(path, declared_total)
                if n is None:
                    n = ds.shape[0]
                elif ds.shape[0] != n:
                    raise ImportFormatError(path, f"{what}: channels have different lengths ({n} and {ds.shape[0]})")
                try:
                    x = np.asarray(ds[...]).reshape(-1)
                except OSError as e:
                    raise ImportFormatError(path, f"{what}: raw/{name} cannot be read ({e}); truncated file?") from None
                if x.size and (x.min() < 0 or x.max() >= 2**bits):
                    raise ImportFormatError(path, f"{what}: raw/{name} has values outside {bits}-bit ADC range")
                cols.append(x.astype(np.int32))
                sensor = _text(ds.attrs.get("sensor", ""))
                label = _text(ds.attrs.get("label", "")) or name
                if sensor.upper() == "EMG":
                    chans.append(
                        ChannelInfo(
                            label=name,
                            kind=ChannelKind.EMG,
                            unit="mV",
                            gain=_EMG_VCC_V / _EMG_GAIN * 1000.0 / 2**bits,
                            offset=float(2 ** (bits - 1)),
                            count_min=0,
                            count_max=2**bits - 1,  # the stated ADC resolution
                        )
                    )
                else:
                    chans.append(ChannelInfo(label=name, kind=ChannelKind.OTHER, unit="counts", count_min=0,
                                             count_max=2**bits - 1))
                al.append(tuple(dict.fromkeys(a_ for a_ in (label, f"A{port}", str(port)) if a_ != name)))
            if n == 0:
                raise ImportFormatError(path, f"{what}: no samples")
            sid = "plux_" + re.sub(r"[^0-9a-z]", "", mac.lower())  # no ':' so the id is safe in file names
            streams.append(
                StreamInfo(
                    stream_id=sid,
                    rate_hz=rate,
                    channels=tuple(chans),
                    dtype="int32",
                    device=f"PLUX {_text(a.get('device', ''))} {mac}".strip(),
                )
            )
            counts[sid] = np.column_stack(cols)
            aliases[sid] = tuple(al)
            meta["devices"][mac] = {
                k: _text(a[k]) for k in ("device", "date", "time", "firmware version", "comments") if k in a
            }
    info = _info_json(path)
    if info is not None:
        meta["info_json"] = info
    return ImportedRecording(path=path, format="opensignals", streams=streams, counts=counts, aliases=aliases, meta=meta)


def _scalar(v) -> float:
    return float(np.asarray(v).reshape(-1)[0])


def _text(v) -> str:
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if isinstance(v, np.ndarray):
        return json.dumps(v.tolist())
    return str(v.item() if isinstance(v, np.generic) else v)


def _info_json(path: Path) -> dict | None:
    """The ``<name>_info.json`` some PLUX exports put beside the file (acquisition notes), if present and valid."""
    side = path.with_name(path.stem + "_info.json")
    try:
        return json.loads(side.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
