"""Base for virtual BLE peripherals: a GATT server on its own Bumble device attached to a `VirtualRadio`.

A subclass builds its services (`build_services`) and reacts to connections and writes; the base advertises
its name and service UUIDs (extended advertising, so long names and 128-bit UUIDs both fit), restarts
advertising after every disconnection like a real sensor, tracks which characteristics the connected central
has subscribed to, and lets a test cut the link from the peripheral side (`force_disconnect`) or go out of
range (`set_advertising(False)`).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Sequence

from bumble import gatt, hci
from bumble.core import UUID as BumbleUUID
from bumble.device import AdvertisingParameters, AdvertisingSet, Connection, Device

if TYPE_CHECKING:
    from sensors.virtual.radio import VirtualRadio

#: Fast advertising keeps scans in tests short (real sensors use 20 ms - 1 s).
ADVERTISING_INTERVAL_MS = 50.0

# re-exported so peripheral modules need no direct Bumble imports for the common cases
Characteristic = gatt.Characteristic
CharacteristicValue = gatt.CharacteristicValue
Service = gatt.Service


def advertising_data(name: str | None, service_uuids: Sequence[str], manufacturer_data: dict[int, bytes]) -> bytes:
    """Encode AD structures: flags, complete service UUID lists, manufacturer data, complete local name."""
    out = bytearray(b"\x02\x01\x06")  # LE General Discoverable, BR/EDR not supported
    by_width: dict[int, bytearray] = {2: bytearray(), 4: bytearray(), 16: bytearray()}
    for u in service_uuids:
        raw = BumbleUUID(u).to_bytes()
        by_width[len(raw)] += raw
    for width, ad_type in ((2, 0x03), (4, 0x05), (16, 0x07)):
        if by_width[width]:
            out += bytes([len(by_width[width]) + 1, ad_type]) + by_width[width]
    for company, payload in manufacturer_data.items():
        body = company.to_bytes(2, "little") + bytes(payload)
        out += bytes([len(body) + 1, 0xFF]) + body
    if name:
        raw_name = name.encode("utf-8")
        out += bytes([len(raw_name) + 1, 0x09]) + raw_name
    return bytes(out)


class VirtualPeripheral:
    """A virtual BLE sensor. Subclass it and implement `build_services`.

    Parameters
    ----------
    name : str
        Advertised complete local name (also the GAP device name).
    service_uuids : sequence of str
        Service UUIDs put in the advertisement (what a scanner filters on).
    max_mtu : int
        Largest ATT MTU this peripheral grants; 23 forces the default MTU whatever the central asks.
    manufacturer_data : dict, optional
        Company id -> bytes, advertised as manufacturer-specific data.
    """

    def __init__(
        self,
        name: str,
        service_uuids: Sequence[str] = (),
        *,
        max_mtu: int = 247,
        manufacturer_data: dict[int, bytes] | None = None,
    ) -> None:
        if not 23 <= max_mtu <= 517:
            raise ValueError(f"max_mtu must be in 23..517 (ATT), got {max_mtu}")
        self.name = name
        self.service_uuids = tuple(service_uuids)
        self.max_mtu = int(max_mtu)
        self.manufacturer_data = dict(manufacturer_data or {})
        self.address: str | None = None
        self.device: Device | None = None
        self.connection: Connection | None = None
        self.connected = asyncio.Event()  # set while a central is connected
        self.connections = 0  # how many times a central connected (tests count reconnects)
        self._advertising: AdvertisingSet | None = None
        self._subscribed: dict[int, tuple[bool, bool]] = {}  # value handle -> (notify, indicate)

    # -- for subclasses ----------------------------------------------------------------------------------------
    def build_services(self) -> list[gatt.Service]:
        """Return the GATT services (called once, when attached)."""
        raise NotImplementedError(f"{type(self).__name__} must build its GATT services")

    def on_connect(self, connection: Connection) -> None:
        """Called when a central connects."""

    def on_disconnect(self, reason: int) -> None:
        """Called when the link drops (either side)."""

    def _enabled(self, characteristic: gatt.Characteristic) -> tuple[bool, bool]:
        return self._subscribed.get(characteristic.handle, (False, False))

    def is_subscribed(self, characteristic: gatt.Characteristic) -> bool:
        """True if the connected central enabled notifications or indications on ``characteristic``."""
        notify, indicate = self._enabled(characteristic)
        return self.connection is not None and (notify or indicate)

    async def notify(self, characteristic: gatt.Characteristic, value: bytes) -> bool:
        """Notify the subscribed central; returns False (value dropped) if nobody is subscribed."""
        if self.device is None or self.connection is None or not self._enabled(characteristic)[0]:
            return False
        await self.device.notify_subscriber(self.connection, characteristic, value)
        return True

    async def indicate(self, characteristic: gatt.Characteristic, value: bytes) -> bool:
        """Indicate to the subscribed central and wait for its confirmation; False if nobody is subscribed."""
        if self.device is None or self.connection is None or not self._enabled(characteristic)[1]:
            return False
        await self.device.indicate_subscriber(self.connection, characteristic, value)
        return True

    # -- test controls -----------------------------------------------------------------------------------------
    async def force_disconnect(self) -> None:
        """Cut the link from the peripheral side (the central sees an unsolicited disconnection)."""
        if self.connection is not None:
            connection = self.connection
            gone = asyncio.Event()
            connection.once(connection.EVENT_DISCONNECTION, lambda *_: gone.set())
            await connection.disconnect(reason=hci.HCI_REMOTE_USER_TERMINATED_CONNECTION_ERROR)
            await asyncio.wait_for(gone.wait(), timeout=5.0)

    def tx_backlog(self) -> int:
        """Link fragments queued in this device's host stack and not yet taken by the controller."""
        if self.device is None or self.device.host.le_acl_packet_queue is None:
            return 0
        queue = self.device.host.le_acl_packet_queue
        return queue.queued - queue.completed

    async def drain(self, timeout_s: float = 5.0) -> None:
        """Wait until every packet queued towards the central has left this device's host stack."""
        if self.device is None:
            return
        queue = self.device.host.le_acl_packet_queue
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while queue is not None and queue.completed < queue.queued and self.connection is not None:
            if loop.time() > deadline:
                raise TimeoutError(f"{self.name}: {queue.queued - queue.completed} packets still queued")
            await asyncio.sleep(0.001)
        for _ in range(10):  # let the link's call_soon hand-offs reach the central's host
            await asyncio.sleep(0)

    async def set_advertising(self, enabled: bool) -> None:
        """Start or stop advertising (stopped = out of range for scanners and new connections)."""
        if self.device is None:
            raise RuntimeError("peripheral is not attached to a radio")
        if enabled and self._advertising is None:
            self._advertising = await self.device.create_advertising_set(
                advertising_parameters=AdvertisingParameters(
                    primary_advertising_interval_min=ADVERTISING_INTERVAL_MS,
                    primary_advertising_interval_max=ADVERTISING_INTERVAL_MS,
                ),
                advertising_data=advertising_data(self.name, self.service_uuids, self.manufacturer_data),
                auto_restart=True,  # a sensor advertises again after every disconnection
            )
        elif not enabled and self._advertising is not None:
            advertising, self._advertising = self._advertising, None
            await advertising.stop()
            await advertising.remove()

    # -- lifecycle (called by VirtualRadio) --------------------------------------------------------------------
    async def attach(self, radio: "VirtualRadio") -> None:
        from sensors.virtual.radio import _new_device

        assert radio.link is not None
        self.address = radio.next_address()
        self.device, _ = _new_device(radio.link, self.name, self.address)
        self.device.gatt_server.max_mtu = self.max_mtu
        self.device.add_services(self.build_services())
        self.device.on(self.device.EVENT_CONNECTION, self._on_connection)
        self.device.gatt_server.on(
            self.device.gatt_server.EVENT_CHARACTERISTIC_SUBSCRIPTION, self._on_subscription
        )
        await self.device.power_on()
        await self.set_advertising(True)

    async def detach(self) -> None:
        if self.device is not None:
            await self.force_disconnect()
            await self.device.power_off()

    def _on_connection(self, connection: Connection) -> None:
        self.connection = connection
        self.connections += 1
        self._subscribed.clear()
        connection.on(connection.EVENT_DISCONNECTION, self._on_disconnection)
        self.connected.set()
        self.on_connect(connection)

    def _on_disconnection(self, reason: int) -> None:
        self.connection = None
        self._subscribed.clear()
        self.connected.clear()
        self.on_disconnect(reason)

    def _on_subscription(self, bearer: Any, characteristic: gatt.Characteristic, notify: bool, indicate: bool) -> None:
        self._subscribed[characteristic.handle] = (bool(notify), bool(indicate))
