"""mbientlab MetaMotion (BMI160 accelerometer + gyroscope), driven by its raw command protocol: §5.

Commands and data are ``[module, register, payload...]`` messages. The accelerometer is module 0x03, the
gyroscope 0x13; each is configured (register 3), subscribed (data register, or the packed register that
carries three samples per notification), its data interrupt enabled (register 2) and powered (register 1).
Samples are int16 x, y, z, little-endian like the Bosch registers they come from.

Data messages carry no counter, so samples are indexed in arrival order and loss cannot be detected.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np

from sensors.ble.decoding import ErrorReporter, StreamCursor
from sensors.ble.gatt import best_effort, subscribe
from sensors.ble.profile import DecoderStats, NotifyHandler
from sensors.stream import ChannelInfo, ChannelKind, Event, Frame, StreamInfo

if TYPE_CHECKING:
    from bleak import BleakClient

NAME = "metamotion"
SERVICE_UUID = "326a9000-85cb-9195-d9dd-464cfbbae75a"
COMMAND_UUID = "326a9001-85cb-9195-d9dd-464cfbbae75a"
NOTIFY_UUID = "326a9006-85cb-9195-d9dd-464cfbbae75a"

ACC, GYRO = 0x03, 0x13
POWER, INTERRUPT, CONFIG = 0x01, 0x02, 0x03
DATA_REGISTER = {ACC: 0x04, GYRO: 0x05}
PACKED_REGISTER = {ACC: 0x1C, GYRO: 0x07}
STREAM_OF = {ACC: "acc", GYRO: "gyro"}

#: BMI160 range codes and sensitivities.
ACC_RANGES = {2: (0x3, 16384.0), 4: (0x5, 8192.0), 8: (0x8, 4096.0), 16: (0xC, 2048.0)}  # g: (code, LSB/g)
GYRO_RANGES = {2000: (0, 16.4), 1000: (1, 32.8), 500: (2, 65.6), 250: (3, 131.2), 125: (4, 262.4)}  # °/s
#: BMI160 output data rate codes (ACC_CONF/GYR_CONF bits 0-3): 25 Hz · 2^(code − 6).
ODR_CODES = {25: 6, 50: 7, 100: 8, 200: 9, 400: 10, 800: 11, 1600: 12}
NORMAL_BANDWIDTH = 2 << 4  # bwp = 2: normal filter mode, the SDK default


def start_commands(rate_hz: int, acc_range_g: int, gyro_range_dps: int, packed: bool) -> list[bytes]:
    """The start sequence, accelerometer then gyroscope: configure, subscribe, enable interrupt, power on."""
    data_reg = PACKED_REGISTER if packed else DATA_REGISTER
    conf = NORMAL_BANDWIDTH | ODR_CODES[rate_hz]
    config = {ACC: (conf, ACC_RANGES[acc_range_g][0]), GYRO: (conf, GYRO_RANGES[gyro_range_dps][0])}
    out = []
    for module in (ACC, GYRO):
        out += [
            bytes([module, CONFIG, *config[module]]),
            bytes([module, data_reg[module], 0x01]),
            bytes([module, INTERRUPT, 0x01, 0x00]),
            bytes([module, POWER, 0x01]),
        ]
    return out


def stop_commands() -> list[bytes]:
    """Power off, then disable the data interrupt, for both sensors."""
    return [bytes([m, POWER, 0x00]) for m in (ACC, GYRO)] + [bytes([m, INTERRUPT, 0x00, 0x01]) for m in (ACC, GYRO)]


class MetaMotionDecoder:
    """Incremental decoder for accelerometer and gyroscope data messages (plain and packed)."""

    def __init__(self) -> None:
        self.stats = DecoderStats()
        self._errors = ErrorReporter(NAME, self.stats)
        self._cursors = {m: StreamCursor(NAME, STREAM_OF[m], self.stats) for m in (ACC, GYRO)}

    def feed(self, char_uuid: str, data: bytes, arrival_s: float) -> list[Frame | Event]:
        self.stats.packets += 1
        if len(data) < 2:
            return self._errors.bad(f"message of {len(data)} bytes", arrival_s)
        module, register = data[0], data[1]
        if module not in STREAM_OF:
            return self._errors.bad(f"unexpected message from module 0x{module:02x}", arrival_s)
        if register == DATA_REGISTER[module]:
            n_samples = 1
        elif register == PACKED_REGISTER[module]:
            n_samples = 3
        else:
            return self._errors.bad(f"unexpected register 0x{register:02x} of module 0x{module:02x}", arrival_s)
        if len(data) != 2 + 6 * n_samples:
            return self._errors.bad(f"data message of {len(data)} bytes, expected {2 + 6 * n_samples}", arrival_s)
        rows = np.frombuffer(bytes(data[2:]), dtype="<i2").astype(np.int16).reshape(n_samples, 3)
        cursor = self._cursors[module]
        return cursor.emit_rows(cursor.next_index + np.arange(n_samples), rows, arrival_s)


class MetaMotionProfile:
    """MetaMotion accelerometer + gyroscope.

    Parameters
    ----------
    rate_hz : int
        Output data rate of both sensors (25..1600 Hz, BMI160 steps).
    acc_range_g : int
        ±2, 4, 8 or 16 g.
    gyro_range_dps : int
        ±125, 250, 500, 1000 or 2000 °/s.
    packed : bool
        Subscribe to the packed registers (three samples per notification), which the SDK uses for high rates.
    """

    name = NAME

    def __init__(self, rate_hz: int = 100, acc_range_g: int = 16, gyro_range_dps: int = 2000, packed: bool = False):
        if rate_hz not in ODR_CODES:
            raise ValueError(f"MetaMotion rate must be one of {sorted(ODR_CODES)} Hz, got {rate_hz!r}")
        if acc_range_g not in ACC_RANGES:
            raise ValueError(f"accelerometer range must be one of {sorted(ACC_RANGES)} g, got {acc_range_g!r}")
        if gyro_range_dps not in GYRO_RANGES:
            raise ValueError(f"gyro range must be one of {sorted(GYRO_RANGES)} deg/s, got {gyro_range_dps!r}")
        self.rate_hz, self.acc_range_g, self.gyro_range_dps, self.packed = rate_hz, acc_range_g, gyro_range_dps, packed

    def advertises(self, device_name: str | None, service_uuids: Sequence[str]) -> bool:
        if SERVICE_UUID in (u.lower() for u in service_uuids):
            return True
        return bool(device_name) and device_name.lower().startswith(("metawear", "metamotion"))

    def streams(self) -> list[StreamInfo]:
        acc_lsb = ACC_RANGES[self.acc_range_g][1]
        gyro_lsb = GYRO_RANGES[self.gyro_range_dps][1]
        note = "No packet counter: loss cannot be detected."
        full = {"count_min": -32768, "count_max": 32767}  # 16-bit sensors at the configured range
        acc = tuple(ChannelInfo(f"acc_{a}", ChannelKind.ACC, "g", gain=1 / acc_lsb, **full) for a in "xyz")
        gyro = tuple(ChannelInfo(f"gyro_{a}", ChannelKind.GYRO, "deg/s", gain=1 / gyro_lsb, **full) for a in "xyz")
        rate = float(self.rate_hz)
        return [
            StreamInfo("acc", rate, acc, "int16", False, note, NAME),
            StreamInfo("gyro", rate, gyro, "int16", False, note, NAME),
        ]

    async def start(self, client: "BleakClient", on_notify: NotifyHandler) -> list[StreamInfo]:
        await subscribe(client, NOTIFY_UUID, on_notify)
        for command in start_commands(self.rate_hz, self.acc_range_g, self.gyro_range_dps, self.packed):
            await client.write_gatt_char(COMMAND_UUID, command, response=False)  # as the MetaWear SDK writes
        return self.streams()

    def new_decoder(self, streams: Sequence[StreamInfo]) -> MetaMotionDecoder:
        return MetaMotionDecoder()

    async def stop(self, client: "BleakClient") -> None:
        if not client.is_connected:
            return
        for command in stop_commands():
            await best_effort(client.write_gatt_char(COMMAND_UUID, command, response=False), f"stop {command.hex()}")
        await best_effort(client.stop_notify(NOTIFY_UUID), "unsubscribe")
