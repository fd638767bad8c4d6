"""A thin bleak backend on Bumble: one in-process "air" (a Bumble `LocalLink`) with a central adapter on it.

`VirtualRadio` owns the link and a Bumble central `Device`; `radio.scanner_backend` and `radio.client_backend`
are `BaseBleakScanner`/`BaseBleakClient` subclasses bound to that radio, passed to ``BleakScanner(backend=...)``
and ``BleakClient(..., backend=...)`` exactly where production code passes ``None``. Every byte goes through a
real host stack (HCI, L2CAP, ATT, GATT discovery, CCCD writes, MTU exchange) on both sides, so what the tests
exercise is bleak's public API against a real GATT server, minus the radio.

All objects live on the asyncio loop that created the radio (bleak's own rule: one long-lived loop).
"""

from __future__ import annotations

import asyncio
import itertools
import uuid as uuid_mod
from typing import TYPE_CHECKING, Any, Callable, Optional

from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient, NotifyCallback
from bleak.backends.descriptor import BleakGATTDescriptor
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData, AdvertisementDataCallback, BaseBleakScanner
from bleak.backends.service import BleakGATTService, BleakGATTServiceCollection
from bleak.exc import BleakError
from bumble import hci
from bumble.controller import Controller
from bumble.core import UUID as BumbleUUID
from bumble.device import Advertisement, Connection, Device, Peer
from bumble.host import Host
from bumble.link import LocalLink
from bumble.transport.common import AsyncPipeSink

if TYPE_CHECKING:
    from sensors.virtual.peripheral import VirtualPeripheral

#: ATT MTU the central asks for on connect (what desktop stacks ask for); the peripheral may grant less.
DEFAULT_CENTRAL_MTU = 247

_CENTRAL_ADDRESS = "F0:00:00:00:00:00"

# Bleak names for GATT characteristic property bits (Core Spec Vol 3 Part G §3.3.1.1).
_PROPERTY_NAMES = (
    (0x01, "broadcast"),
    (0x02, "read"),
    (0x04, "write-without-response"),
    (0x08, "write"),
    (0x10, "notify"),
    (0x20, "indicate"),
    (0x40, "authenticated-signed-writes"),
    (0x80, "extended-properties"),
)


def uuid_str(u: BumbleUUID) -> str:
    """Bumble UUID -> bleak's normalised form (lower-case 128-bit string)."""
    return str(uuid_mod.UUID(bytes=bytes(reversed(u.to_bytes(force_128=True)))))


def parse_advertising_data(
    data: bytes,
) -> tuple[Optional[str], list[str], dict[int, bytes], dict[str, bytes], Optional[int]]:
    """Split raw AD structures (Core Spec Supplement Part A §1) into bleak's advertisement fields.

    Returns ``(local_name, service_uuids, manufacturer_data, service_data, tx_power)``. Malformed trailing
    bytes are ignored, as a real scanner would.
    """
    name: Optional[str] = None
    uuids: list[str] = []
    manufacturer: dict[int, bytes] = {}
    service_data: dict[str, bytes] = {}
    tx_power: Optional[int] = None
    i = 0
    while i + 1 < len(data):
        length = data[i]
        if length == 0 or i + 1 + length > len(data):
            break
        ad_type, value = data[i + 1], bytes(data[i + 2 : i + 1 + length])
        i += 1 + length
        if ad_type in (0x08, 0x09):  # shortened / complete local name
            if ad_type == 0x09 or name is None:
                name = value.decode("utf-8", errors="replace")
        elif ad_type in (0x02, 0x03, 0x04, 0x05, 0x06, 0x07):  # 16/32/128-bit service UUID lists
            width = {0x02: 2, 0x03: 2, 0x04: 4, 0x05: 4, 0x06: 16, 0x07: 16}[ad_type]
            for k in range(0, len(value) - width + 1, width):
                uuids.append(uuid_str(BumbleUUID.from_bytes(value[k : k + width])))
        elif ad_type == 0xFF and len(value) >= 2:
            manufacturer[int.from_bytes(value[:2], "little")] = value[2:]
        elif ad_type in (0x16, 0x20, 0x21):  # service data with 16/32/128-bit UUID
            width = {0x16: 2, 0x20: 4, 0x21: 16}[ad_type]
            if len(value) >= width:
                service_data[uuid_str(BumbleUUID.from_bytes(value[:width]))] = value[width:]
        elif ad_type == 0x0A and len(value) == 1:
            tx_power = int.from_bytes(value, "little", signed=True)
    return name, uuids, manufacturer, service_data, tx_power


def _new_device(link: LocalLink, name: str, address: str) -> tuple[Device, Controller]:
    """A Bumble host + virtual controller pair attached to ``link``."""
    controller = Controller(name, link=link, public_address=address)
    device = Device(name=name, address=hci.Address(address), host=Host(controller, AsyncPipeSink(controller)))
    return device, controller


class VirtualRadio:
    """One simulated BLE environment: a link, a central adapter, and the peripherals in range.

    Create it inside the loop that will run bleak: ``radio = await VirtualRadio.create()``.

    Parameters
    ----------
    central_mtu : int
        ATT MTU the central requests on every connection (the negotiated MTU is the smaller of this and the
        peripheral's maximum). 23 disables the exchange.
    rssi_dbm : int
        RSSI reported for every advertisement (the link has no radio physics).
    """

    def __init__(self, *, central_mtu: int = DEFAULT_CENTRAL_MTU, rssi_dbm: int = -60) -> None:
        if not 23 <= central_mtu <= 517:
            raise ValueError(f"central_mtu must be in 23..517 (ATT), got {central_mtu}")
        self.central_mtu = int(central_mtu)
        self.rssi_dbm = int(rssi_dbm)
        self.link: LocalLink | None = None
        self.central: Device | None = None
        self._central_controller: Controller | None = None
        self.peripherals: list[VirtualPeripheral] = []
        self._listeners: list[Callable[[Advertisement], None]] = []
        self._connect_lock: asyncio.Lock | None = None
        self._addresses = itertools.count(1)
        radio = self

        class _Scanner(VirtualBleakScanner):
            _radio = radio

        class _Client(VirtualBleakClient):
            _radio = radio

        _Scanner.__name__ = _Scanner.__qualname__ = "VirtualBleakScanner"
        _Client.__name__ = _Client.__qualname__ = "VirtualBleakClient"
        #: Pass as ``BleakScanner(backend=...)``.
        self.scanner_backend: type[BaseBleakScanner] = _Scanner
        #: Pass as ``BleakClient(..., backend=...)``.
        self.client_backend: type[BaseBleakClient] = _Client

    @classmethod
    async def create(cls, **kwargs: Any) -> "VirtualRadio":
        """Build the link and power on the central (must run inside the event loop that will use it)."""
        radio = cls(**kwargs)
        radio.link = LocalLink()
        radio._connect_lock = asyncio.Lock()
        radio.central, radio._central_controller = _new_device(radio.link, "medius-central", _CENTRAL_ADDRESS)
        radio.central.on(radio.central.EVENT_ADVERTISEMENT, radio._on_advertisement)
        await radio.central.power_on()
        return radio

    def next_address(self) -> str:
        """A fresh random static address (top two bits set) for a new peripheral."""
        n = next(self._addresses)
        return "C0:00:00:00:%02X:%02X" % (n >> 8 & 0xFF, n & 0xFF)

    async def add(self, peripheral: "VirtualPeripheral") -> "VirtualPeripheral":
        """Attach a peripheral to the link, power it on and start its advertising."""
        if self.link is None:
            raise RuntimeError("VirtualRadio.create() has not run")
        await peripheral.attach(self)
        self.peripherals.append(peripheral)
        return peripheral

    async def close(self) -> None:
        """Stop every peripheral and the central."""
        for p in self.peripherals:
            await p.detach()
        self.peripherals.clear()
        if self.central is not None:
            await self.central.power_off()

    async def _connect(self, address: str, timeout_s: float) -> Connection:
        """Connect the central to ``address``, failing with `BleakError` after ``timeout_s``.

        Bumble's virtual controller completes a connection only when it hears the target advertise and ignores
        LE Create Connection Cancel, so its own connect timeout would wait forever for an absent peripheral.
        Like a real controller, we first listen for the target's advertisement; if the connection still does
        not complete we clear the controller's pending request ourselves so later connects are not blocked.
        """
        assert self.central is not None
        heard = asyncio.Event()
        target = hci.Address(address)

        def listener(advertisement: Advertisement) -> None:
            if advertisement.address == target:
                heard.set()

        await self._add_listener(listener)
        try:
            await asyncio.wait_for(heard.wait(), timeout_s)
        except TimeoutError:
            raise BleakError(f"could not connect to {address}: not advertising (timeout {timeout_s} s)") from None
        finally:
            await self._remove_listener(listener)
        try:
            return await asyncio.wait_for(self.central.connect(target, timeout=None), timeout_s)
        except TimeoutError:
            assert self._central_controller is not None
            self._central_controller.pending_le_connection = None  # see docstring
            raise BleakError(f"could not connect to {address}: no connection within {timeout_s} s") from None
        except Exception as exc:  # a Bumble connection failure -> bleak's error type
            raise BleakError(f"could not connect to {address}: {exc!r}") from exc

    # -- scanning: the central scans while at least one scanner listens ---------------------------------------
    async def _add_listener(self, listener: Callable[[Advertisement], None]) -> None:
        assert self.central is not None, "VirtualRadio.create() has not run"
        self._listeners.append(listener)
        if len(self._listeners) == 1:
            await self.central.start_scanning(filter_duplicates=False)

    async def _remove_listener(self, listener: Callable[[Advertisement], None]) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)
            if not self._listeners and self.central is not None and self.central.is_scanning:
                await self.central.stop_scanning()

    def _on_advertisement(self, advertisement: Advertisement) -> None:
        for listener in list(self._listeners):
            listener(advertisement)


class VirtualBleakScanner(BaseBleakScanner):
    """bleak scanner backend on a `VirtualRadio` (use ``radio.scanner_backend``, which is bound to one)."""

    _radio: VirtualRadio

    def __init__(
        self,
        detection_callback: Optional[AdvertisementDataCallback],
        service_uuids: Optional[list[str]],
        scanning_mode: str = "active",
        **kwargs: Any,
    ) -> None:
        super().__init__(detection_callback, service_uuids)

    async def start(self) -> None:
        self.seen_devices = {}
        await self._radio._add_listener(self._on_advertisement)

    async def stop(self) -> None:
        await self._radio._remove_listener(self._on_advertisement)

    def _on_advertisement(self, advertisement: Advertisement) -> None:
        name, uuids, manufacturer, service_data, tx_power = parse_advertising_data(advertisement.data_bytes)
        if not self.is_allowed_uuid(uuids):
            return
        address = advertisement.address.to_string(with_type_qualifier=False)
        adv = AdvertisementData(
            local_name=name,
            manufacturer_data=manufacturer,
            service_data=service_data,
            service_uuids=uuids,
            tx_power=tx_power,
            rssi=self._radio.rssi_dbm,
            platform_data=(advertisement,),
        )
        device = self.create_or_update_device(address, address, name, advertisement.address, adv)
        self.call_detection_callbacks(device, adv)


class VirtualBleakClient(BaseBleakClient):
    """bleak client backend on a `VirtualRadio` (use ``radio.client_backend``, which is bound to one)."""

    _radio: VirtualRadio

    def __init__(
        self,
        address_or_ble_device: BLEDevice | str,
        *,
        disconnected_callback: Optional[Callable[[], None]] = None,
        timeout: float = 10.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(address_or_ble_device, disconnected_callback=disconnected_callback, timeout=timeout)
        self._name = address_or_ble_device.name if isinstance(address_or_ble_device, BLEDevice) else None
        self._connection: Connection | None = None
        self._peer: Peer | None = None
        self._mtu = 23
        self._closing = False
        self._subscriptions: dict[int, Callable[[bytes], None]] = {}
        self._disconnected = asyncio.Event()

    @property
    def name(self) -> str:
        return self._name or self.address

    @property
    def mtu_size(self) -> int:
        return self._mtu

    @property
    def is_connected(self) -> bool:
        return self._connection is not None and not self._disconnected.is_set()

    async def connect(self, pair: bool, **kwargs: Any) -> None:
        radio = self._radio
        if radio.central is None or radio._connect_lock is None:
            raise BleakError("VirtualRadio.create() has not run")
        if pair:
            raise BleakError("the virtual radio does not implement pairing")
        async with radio._connect_lock:  # Bumble allows one pending LE connection per central
            connection = await radio._connect(self.address, self._timeout)
        self._connection = connection
        self._disconnected.clear()
        self._closing = False
        connection.on(connection.EVENT_DISCONNECTION, self._on_disconnection)
        try:
            self._peer = Peer(connection)
            if radio.central_mtu > 23:
                self._mtu = await self._peer.request_mtu(radio.central_mtu)
            self.services = await self._discover()
        except Exception as exc:
            await self._drop()
            raise BleakError(f"GATT setup with {self.address} failed: {exc!r}") from exc

    async def _discover(self) -> BleakGATTServiceCollection:
        assert self._peer is not None
        await self._peer.discover_all()
        collection = BleakGATTServiceCollection()
        for sp in self._peer.services:
            service = BleakGATTService(sp, sp.handle, uuid_str(sp.uuid))
            collection.add_service(service)
            for cp in sp.characteristics:
                props = [name for bit, name in _PROPERTY_NAMES if int(cp.properties) & bit]
                char = BleakGATTCharacteristic(
                    cp, cp.handle, uuid_str(cp.uuid), props, lambda: self._mtu - 3, service
                )
                collection.add_characteristic(char)
                for dp in cp.descriptors:
                    collection.add_descriptor(BleakGATTDescriptor(dp, dp.handle, uuid_str(dp.type), char))
        return collection

    def _on_disconnection(self, reason: int) -> None:
        self._disconnected.set()
        self._subscriptions.clear()
        if not self._closing and self._disconnected_callback is not None:
            # bleak's contract: the callback is *scheduled*, never run inside the stack's own callback
            asyncio.get_running_loop().call_soon(self._disconnected_callback)

    async def _drop(self) -> None:
        self._closing = True
        if self._connection is not None and not self._disconnected.is_set():
            try:
                await self._connection.disconnect()
            except Exception:  # already gone: the disconnection event may have raced us
                pass
            await asyncio.wait_for(self._disconnected.wait(), timeout=5.0)

    async def disconnect(self) -> None:
        await self._drop()

    async def pair(self, *args: Any, **kwargs: Any) -> None:
        raise BleakError("the virtual radio does not implement pairing")

    async def unpair(self) -> None:
        raise BleakError("the virtual radio does not implement pairing")

    def _require_peer(self) -> Peer:
        if self._peer is None or not self.is_connected:
            raise BleakError("not connected")
        return self._peer

    async def read_gatt_char(
        self, characteristic: BleakGATTCharacteristic, *, use_cached: bool = False, **kwargs: Any
    ) -> bytearray:
        return bytearray(await self._require_peer().read_value(characteristic.handle))

    async def read_gatt_descriptor(
        self, descriptor: BleakGATTDescriptor, *, use_cached: bool = False, **kwargs: Any
    ) -> bytearray:
        return bytearray(await self._require_peer().read_value(descriptor.handle))

    async def write_gatt_char(self, characteristic: BleakGATTCharacteristic, data: Any, response: bool) -> None:
        await self._require_peer().write_value(characteristic.handle, bytes(data), with_response=response)

    async def write_gatt_descriptor(self, descriptor: BleakGATTDescriptor, data: Any) -> None:
        await self._require_peer().write_value(descriptor.handle, bytes(data), with_response=True)

    async def start_notify(
        self, characteristic: BleakGATTCharacteristic, callback: NotifyCallback, **kwargs: Any
    ) -> None:
        peer = self._require_peer()

        def on_value(value: bytes) -> None:
            callback(bytearray(value))

        self._subscriptions[characteristic.handle] = on_value
        # prefer_notify: bleak's documented rule when a characteristic offers both
        await peer.gatt_client.subscribe(characteristic.obj, on_value, prefer_notify=True)

    async def stop_notify(self, characteristic: BleakGATTCharacteristic) -> None:
        peer = self._require_peer()
        subscriber = self._subscriptions.pop(characteristic.handle, None)
        await peer.gatt_client.unsubscribe(characteristic.obj, subscriber)
