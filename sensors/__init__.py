"""The outside world's data: sources (BLE devices, simulator, replay), the recording format, importers."""
