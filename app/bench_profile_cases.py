"""Decode-benchmark cases for the third-party BLE profiles, registered in `app.bench_sensors.DECODE_CASES`.

Each case returns ``(decoder, [(char_uuid, bytes), ...], sample values decoded per pass)``; the notifications
come from the same generators the virtual peripherals stream, at each device's realistic shape.
"""

from __future__ import annotations


def bitalino_case() -> tuple[object, list[tuple[str, bytes]], int]:
    """6 analog channels, 20 000 frames cut into 1-20-byte notifications (analog + 4 digital values per frame)."""
    import random

    from sensors.ble import bitalino
    from sensors.virtual.bitalino import notifications

    n_frames, n_channels = 20000, 6
    notes = [(bitalino.FRAMES_UUID, c) for c in notifications(n_frames, n_channels, random.Random(0))]
    return bitalino.BitalinoDecoder(n_channels), notes, n_frames * (n_channels + 4)


def myo_case() -> tuple[object, list[tuple[str, bytes]], int]:
    """10 000 EMG notifications (2 × 8 samples) and the 5 000 IMU records (10 values) between them."""
    from sensors.ble.myo import MyoDecoder
    from sensors.virtual.myo import notifications

    return MyoDecoder(), list(notifications(10000)), 10000 * 16 + 5000 * 10


def ganglion_case() -> tuple[object, list[tuple[str, bytes]], int]:
    """Firmware 3.x, accelerometer off: 10 000 packets of 2 × 4 samples (19-bit fields)."""
    from sensors.ble.ganglion import NOTIFY_UUID, GanglionDecoder
    from sensors.virtual.ganglion import packets_v3

    return GanglionDecoder(3), [(NOTIFY_UUID, p) for p in packets_v3(10000, accel=False)], 10000 * 8


def metamotion_case() -> tuple[object, list[tuple[str, bytes]], int]:
    """Packed accelerometer and gyroscope: 2 × 10 000 messages of 3 × xyz samples."""
    from sensors.ble import metamotion as mm
    from sensors.virtual.metamotion import messages

    registers = {mm.ACC: mm.PACKED_REGISTER[mm.ACC], mm.GYRO: mm.PACKED_REGISTER[mm.GYRO]}
    notes = [(mm.NOTIFY_UUID, m) for m in messages(10000, registers)]
    return mm.MetaMotionDecoder(), notes, 2 * 10000 * 9
