"""Bluetooth LE devices. With `sensors.virtual` (its test double), the only code in Medius that imports bleak."""
