"""Virtual BLE for tests and the demo: a bleak backend on Bumble's in-process link, and virtual peripherals.

Product code never imports this package; it receives the backend classes through bleak's ``backend=`` seam.

Typical use (inside a running asyncio loop)::

    radio = await VirtualRadio.create()
    await radio.add(MyPeripheral(name="Medius-01"))
    async with BleakScanner(backend=radio.scanner_backend) as scanner: ...
    client = BleakClient(ble_device, backend=radio.client_backend)
"""

from sensors.virtual.peripheral import VirtualPeripheral
from sensors.virtual.radio import VirtualRadio

__all__ = ["VirtualPeripheral", "VirtualRadio"]
