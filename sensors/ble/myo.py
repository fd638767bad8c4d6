"""Thalmic Myo armband (discontinued): raw 8-channel EMG and IMU, protocols.md §3.

**Ordering EMG without a counter.** Raw EMG arrives on four characteristics (EmgData0..3), each notification
carrying two consecutive 8-channel samples. Notifications of one connection reach the host in the order they
were sent, so the decoder lays samples out in arrival order, two per notification (as pyomyo does).

Loss is inferred from the characteristic the samples came on: the armband is taken to fill EmgData0..3 in
rotation 0, 1, 2, 3, 0, ..., so the characteristic number is unwrapped as a 2-bit counter and a break in the
rotation gives the number of missing notifications modulo 4, recorded as an exact-sized gap. That rotation
is an assumption -- ``myohw.h`` does not state it and no armband was available to check -- and losses of a
whole multiple of four notifications cannot be seen at all. The IMU characteristic has no counter, so IMU
loss is never inferred.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Sequence

import numpy as np

from sensors.ble.decoding import ErrorReporter, StreamCursor
from sensors.ble.gatt import best_effort, subscribe
from sensors.ble.profile import DecoderStats, NotifyHandler, SequenceUnwrapper
from sensors.stream import ChannelInfo, ChannelKind, Event, Frame, StreamInfo

if TYPE_CHECKING:
    from bleak import BleakClient

NAME = "myo"


def myo_uuid(short: int) -> str:
    """Full 128-bit UUID from a Myo 16-bit id, base ``d506XXXX-a904-deb9-4748-2c7f4a124842``."""
    return f"d506{short:04x}-a904-deb9-4748-2c7f4a124842"


CONTROL_SERVICE_UUID = myo_uuid(0x0001)
COMMAND_UUID = myo_uuid(0x0401)
IMU_UUID = myo_uuid(0x0402)
EMG_UUIDS = tuple(myo_uuid(s) for s in (0x0105, 0x0205, 0x0305, 0x0405))

EMG_RAW, IMU_DATA, CLASSIFIER_OFF = 3, 1, 0
NEVER_SLEEP = bytes([0x09, 0x01, 0x01])
EMG_RATE_HZ = 200.0
IMU_RATE_HZ = 50.0


def set_mode_command(emg: int, imu: int, classifier: int) -> bytes:
    """``[0x01, 0x03, emg, imu, classifier]``: command 1 (set mode), payload of 3 bytes."""
    return bytes([0x01, 0x03, emg, imu, classifier])


_SPECTRAL_NOTE = (
    "Myo EMG is 200 Hz int8: the 100 Hz Nyquist limit cuts the sEMG band (20-450 Hz), so MDF/MNF cannot be "
    "estimated; use for amplitude envelopes only."
)


class MyoDecoder:
    """Incremental decoder for the four EMG characteristics and the IMU characteristic."""

    def __init__(self) -> None:
        self.stats = DecoderStats()
        self._errors = ErrorReporter(NAME, self.stats)
        self._emg = StreamCursor(NAME, "emg", self.stats)
        self._imu = StreamCursor(NAME, "imu", self.stats)
        self._rotation = SequenceUnwrapper(4)
        self._emg_base: int | None = None
        self._emg_char = {u: i for i, u in enumerate(EMG_UUIDS)}

    def feed(self, char_uuid: str, data: bytes, arrival_s: float) -> list[Frame | Event]:
        self.stats.packets += 1
        uuid = char_uuid.lower()
        if uuid in self._emg_char:
            if len(data) != 16:
                return self._errors.bad(f"EMG notification of {len(data)} bytes, expected 16", arrival_s)
            number, lost = self._rotation.next(self._emg_char[uuid])
            self.stats.lost_packets += lost
            if self._emg_base is None:
                self._emg_base = number
            first = 2 * (number - self._emg_base)
            rows = np.frombuffer(bytes(data), dtype=np.int8).reshape(2, 8)
            return self._emg.emit_rows(np.array([first, first + 1]), rows, arrival_s, "lost EMG notifications")
        if uuid == IMU_UUID:
            if len(data) != 20:
                return self._errors.bad(f"IMU notification of {len(data)} bytes, expected 20", arrival_s)
            row = np.array(struct.unpack("<10h", data), dtype=np.int16).reshape(1, 10)
            return self._imu.emit_rows(np.array([self._imu.next_index]), row, arrival_s)
        return self._errors.bad(f"notification from unexpected characteristic {char_uuid}", arrival_s)


class MyoProfile:
    """Thalmic Myo: never sleep, raw EMG + IMU data mode, all four EMG characteristics and the IMU."""

    name = NAME

    def advertises(self, device_name: str | None, service_uuids: Sequence[str]) -> bool:
        if CONTROL_SERVICE_UUID in (u.lower() for u in service_uuids):
            return True
        return bool(device_name) and device_name.lower().startswith("myo")

    def streams(self) -> list[StreamInfo]:
        emg = tuple(ChannelInfo(f"emg{i}", ChannelKind.EMG, "count", count_min=-128, count_max=127)
                    for i in range(1, 9))
        full = {"count_min": -32768, "count_max": 32767}
        imu = (
            *(ChannelInfo(f"quat_{a}", ChannelKind.QUAT, "1", gain=1 / 16384, **full) for a in "wxyz"),
            *(ChannelInfo(f"acc_{a}", ChannelKind.ACC, "g", gain=1 / 2048, **full) for a in "xyz"),
            *(ChannelInfo(f"gyro_{a}", ChannelKind.GYRO, "deg/s", gain=1 / 16, **full) for a in "xyz"),
        )
        return [
            StreamInfo("emg", EMG_RATE_HZ, emg, "int8", False, _SPECTRAL_NOTE + " Raw counts (unscaled).", NAME),
            StreamInfo("imu", IMU_RATE_HZ, imu, "int16", False, "No packet counter: IMU loss is not detected.", NAME),
        ]

    async def start(self, client: "BleakClient", on_notify: NotifyHandler) -> list[StreamInfo]:
        for uuid in EMG_UUIDS:
            await subscribe(client, uuid, on_notify)
        await subscribe(client, IMU_UUID, on_notify)
        await client.write_gatt_char(COMMAND_UUID, NEVER_SLEEP, response=True)
        await client.write_gatt_char(COMMAND_UUID, set_mode_command(EMG_RAW, IMU_DATA, CLASSIFIER_OFF), response=True)
        return self.streams()

    def new_decoder(self, streams: Sequence[StreamInfo]) -> MyoDecoder:
        return MyoDecoder()

    async def stop(self, client: "BleakClient") -> None:
        if not client.is_connected:
            return
        await best_effort(client.write_gatt_char(COMMAND_UUID, set_mode_command(0, 0, 0), response=True), "mode off")
        for uuid in (*EMG_UUIDS, IMU_UUID):
            await best_effort(client.stop_notify(uuid), "unsubscribe")
