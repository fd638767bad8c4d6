"""Unit spellings found in other systems' files, normalised to Medius's, and the channel kind a unit implies."""

from __future__ import annotations

from sensors.stream import ChannelKind

_SPELLINGS = {
    "v": "V",
    "mv": "mV",
    "uv": "uV",
    "µv": "uV",
    "μv": "uV",  # Greek mu, not the micro sign
    "g": "g",
    "°/s": "deg/s",
    "deg/s": "deg/s",
    "dps": "deg/s",
    "°": "deg",
    "deg": "deg",
    "degree": "deg",
    "degrees": "deg",
}

_KINDS = {
    "V": ChannelKind.EMG,
    "mV": ChannelKind.EMG,
    "uV": ChannelKind.EMG,
    "g": ChannelKind.ACC,
    "deg/s": ChannelKind.GYRO,
    "deg": ChannelKind.ANGLE,
}


def normalise_unit(unit: str) -> str:
    """``"mv"`` -> ``"mV"``, ``"°/s"`` -> ``"deg/s"``, ``"µV"`` -> ``"uV"``; unknown spellings pass through stripped."""
    u = unit.strip()
    return _SPELLINGS.get(u.lower(), u)


def kind_for_unit(unit: str, default: ChannelKind = ChannelKind.OTHER) -> ChannelKind:
    """The channel kind a (normalised) unit implies: voltages are EMG, g is ACC, deg/s GYRO, deg ANGLE."""
    return _KINDS.get(unit, default)
