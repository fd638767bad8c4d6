"""A BLE device as a `Source`, over bleak's public API, driven by a `DeviceProfile`.

The notification callback only appends ``(uuid, bytes, arrival)`` to a list and wakes the reader;
`BleSource.items` decodes whatever has accumulated in one batch, merges contiguous frames, and yields. An
unsolicited disconnection starts a re-scan/reconnect loop with exponential backoff (bleak field notes:
BlueZ forgets the device, so a fresh `BLEDevice` from a new scan is needed).

Gaps across a reconnection: if the profile reports ``resumed = True`` after its ``start`` (the device kept its
packet counter running, e.g. the Medius profile), the decoder is kept and the counter jump yields an exact
``GAP``. Otherwise a new decoder starts and its indices are shifted past the old ones by the host-clock
estimate of the outage; that ``GAP`` carries ``payload["exact"] = False``.

``scanner_backend``/``client_backend`` are bleak's ``backend=`` seam: ``None`` in production, the virtual
radio's classes in tests and the demo.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import AsyncIterator, Sequence

import numpy as np
from bleak import BleakClient, BleakScanner
from bleak.backends.client import BaseBleakClient
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import BaseBleakScanner

from sensors.ble.profile import Decoder, DeviceProfile
from sensors.stream import Event, EventKind, Frame, Item, StreamInfo


@dataclass(frozen=True)
class ScanResult:
    """One device seen while scanning.

    Parameters
    ----------
    device : BLEDevice
        Pass this (not the address) to `BleSource`.
    name : str or None
        Advertised local name.
    rssi_dbm : int
        Last RSSI seen, dBm.
    profiles : tuple of str
        Names of the supported profiles whose ``advertises`` matched (empty: not a supported device).
    """

    device: BLEDevice
    name: str | None
    rssi_dbm: int
    profiles: tuple[str, ...]

    @property
    def address(self) -> str:
        return self.device.address


async def scan(
    profiles: Sequence[DeviceProfile],
    duration_s: float = 3.0,
    *,
    backend: type[BaseBleakScanner] | None = None,
) -> list[ScanResult]:
    """Scan for ``duration_s`` and return every device seen, supported ones first, then by RSSI."""
    seen: dict[str, ScanResult] = {}

    def on_advertisement(device: BLEDevice, adv) -> None:
        matching = tuple(p.name for p in profiles if p.advertises(adv.local_name, adv.service_uuids))
        seen[device.address] = ScanResult(device, adv.local_name or device.name, adv.rssi, matching)

    async with BleakScanner(on_advertisement, backend=backend):
        await asyncio.sleep(duration_s)
    return sorted(seen.values(), key=lambda r: (not r.profiles, -r.rssi_dbm))


async def find_device(
    address: str,
    timeout_s: float,
    *,
    backend: type[BaseBleakScanner] | None = None,
) -> BLEDevice | None:
    """Scan until the device with ``address`` advertises (a fresh `BLEDevice`), or None after ``timeout_s``."""
    found: asyncio.Future[BLEDevice] = asyncio.get_running_loop().create_future()

    def on_advertisement(device: BLEDevice, adv) -> None:
        if device.address == address and not found.done():
            found.set_result(device)

    async with BleakScanner(on_advertisement, backend=backend):
        try:
            return await asyncio.wait_for(found, timeout_s)
        except TimeoutError:
            return None


def coalesce(items: list[Item]) -> list[Item]:
    """Merge runs of adjacent frames of one stream whose indices are contiguous (fewer, larger frames)."""
    out: list[Item] = []
    run: list[Frame] = []

    def flush() -> None:
        if len(run) == 1:
            out.append(run[0])
        elif run:
            out.append(Frame(run[0].stream_id, run[0].first_index, np.concatenate([f.counts for f in run]),
                             run[-1].arrival_s))
        run.clear()

    for item in items:
        contiguous = bool(run) and isinstance(item, Frame) and item.stream_id == run[-1].stream_id \
            and item.first_index == run[-1].end_index
        if isinstance(item, Frame) and run and not contiguous:
            flush()
        if isinstance(item, Frame):
            run.append(item)
        else:
            flush()
            out.append(item)
    flush()
    return out


class BleSource:
    """A BLE sensor as a `Source`.

    Parameters
    ----------
    device : BLEDevice
        From `scan` (connect by device, not by address string).
    profile : DeviceProfile
        How to start and decode this device.
    scanner_backend, client_backend : type or None
        bleak ``backend=`` classes; None selects the platform backend.
    reconnect_attempts : int
        Attempts after an unsolicited disconnection before giving up (``DISCONNECTED`` then ``END``).
    backoff_s : float
        Delay before the first reconnection attempt; doubles per attempt up to ``max_backoff_s``.
    scan_timeout_s, connect_timeout_s : float
        Per attempt: how long to look for the device, and bleak's connect timeout.
    """

    def __init__(
        self,
        device: BLEDevice,
        profile: DeviceProfile,
        *,
        scanner_backend: type[BaseBleakScanner] | None = None,
        client_backend: type[BaseBleakClient] | None = None,
        reconnect_attempts: int = 5,
        backoff_s: float = 0.5,
        max_backoff_s: float = 8.0,
        scan_timeout_s: float = 5.0,
        connect_timeout_s: float = 10.0,
    ) -> None:
        if not isinstance(device, BLEDevice):
            raise TypeError(f"BleSource needs a BLEDevice from a scan, got {type(device).__name__}")
        self.device = device
        self.profile = profile
        self.name = f"{profile.name}:{device.name or device.address}"
        self.scanner_backend = scanner_backend
        self.client_backend = client_backend
        self.reconnect_attempts = int(reconnect_attempts)
        self.backoff_s = float(backoff_s)
        self.max_backoff_s = float(max_backoff_s)
        self.scan_timeout_s = float(scan_timeout_s)
        self.connect_timeout_s = float(connect_timeout_s)
        self.client: BleakClient | None = None
        self.decoder: Decoder | None = None
        self.reconnects = 0
        self._streams: list[StreamInfo] = []
        self._raw: list[tuple[str, bytes, float]] = []  # notifications not yet decoded
        self._ready: list[Item] = []  # events and decoded items waiting for items()
        self._paused = False  # while reconnecting: new-run packets wait until the decoder is settled
        self._wake = asyncio.Event()
        self._stopping = False
        self._ended = False
        self._reconnect_task: asyncio.Task | None = None
        self._index_offset: dict[str, int] = {}
        self._end_index: dict[str, int] = {}

    @property
    def streams(self) -> Sequence[StreamInfo]:
        return tuple(self._streams)

    # -- the notification callback: append and wake, nothing else ----------------------------------------------
    def _on_notify(self, char_uuid: str, data: bytearray) -> None:
        self._raw.append((char_uuid, bytes(data), time.monotonic()))
        self._wake.set()

    def _emit(self, kind: EventKind, message: str = "", **payload) -> None:
        self._ready.append(Event(kind, source=self.name, message=message, payload=payload,
                                 arrival_s=time.monotonic()))
        self._wake.set()

    # -- Source ----------------------------------------------------------------------------------------------
    async def start(self) -> None:
        """Connect, run the profile's start sequence, and begin streaming (raises if the first connect fails)."""
        self._stopping = False
        await self._connect(self.device)
        self.decoder = self.profile.new_decoder(self._streams)
        self._emit(EventKind.CONNECTED, f"connected to {self.device.name or self.device.address}",
                   address=self.device.address, mtu=self.client.mtu_size if self.client else None)
        self._emit(EventKind.STREAMS, "", streams=list(self._streams))

    async def _connect(self, device: BLEDevice) -> None:
        client = BleakClient(device, disconnected_callback=self._on_disconnected, timeout=self.connect_timeout_s,
                             backend=self.client_backend)
        await client.connect()
        try:
            streams = await self.profile.start(client, self._on_notify)
        except BaseException:  # also on cancellation: never leave a half-started connection behind
            try:
                await client.disconnect()
            except Exception:
                pass  # the link may already be gone; the start failure is what the caller needs
            raise
        self.client = client
        self._streams = list(streams)

    async def items(self) -> AsyncIterator[Item]:
        while True:
            if not self._paused:
                self._flush_raw()
            if self._ready:
                ready, self._ready = self._ready, []
                for item in ready:
                    yield item
                continue
            if self._ended:
                yield Event(EventKind.END, source=self.name, arrival_s=time.monotonic())
                return
            self._wake.clear()
            await self._wake.wait()

    def _flush_raw(self) -> None:
        """Decode every notification received so far, in one batch, onto the ready list."""
        if self._raw and self.decoder is not None:  # before start() has a decoder, notifications wait
            raw, self._raw = self._raw, []
            self._ready.extend(coalesce(self._decode(raw)))

    def _decode(self, raw: list[tuple[str, bytes, float]]) -> list[Item]:
        out: list[Item] = []
        decoder = self.decoder
        assert decoder is not None
        for uuid, data, arrival_s in raw:
            try:
                decoded = decoder.feed(uuid, data, arrival_s)
            except Exception as exc:  # a decoder bug must not kill the stream; report and drop the packet
                decoder.stats.bad_packets += 1
                out.append(Event(EventKind.ERROR, source=self.name, message=f"decoder failed: {exc!r}",
                                 payload={"uuid": uuid, "raw": data[:32].hex()}, arrival_s=arrival_s))
                continue
            for item in decoded:
                out.append(self._shift(item))
        return out

    def _shift(self, item: Item) -> Item:
        """Apply the index offset of a restarted (non-resumed) run and remember where each stream ends."""
        if isinstance(item, Frame):
            offset = self._index_offset.get(item.stream_id, 0)
            if offset:
                item = Frame(item.stream_id, item.first_index + offset, item.counts, item.arrival_s)
            self._end_index[item.stream_id] = item.end_index
        elif item.kind is EventKind.GAP and "start_index" in item.payload:
            offset = self._index_offset.get(item.payload.get("stream_id", ""), 0)
            if offset:
                payload = dict(item.payload, start_index=item.payload["start_index"] + offset)
                item = Event(item.kind, item.source, item.message, payload, item.arrival_s)
        return item

    async def stop(self) -> None:
        """Stop streaming and disconnect cleanly (also cancels a reconnection in progress)."""
        self._stopping = True
        if self._reconnect_task is not None:
            self._reconnect_task.cancel()
            try:
                await self._reconnect_task
            except (asyncio.CancelledError, Exception):
                pass
        client = self.client
        if client is not None:
            try:
                if client.is_connected:
                    await self.profile.stop(client)
            except Exception as exc:  # report, but still disconnect
                self._emit(EventKind.ERROR, f"stop sequence failed: {exc!r}")
            finally:
                if client.is_connected:
                    await client.disconnect()
            self._flush_raw()  # what arrived before the disconnection comes before its event
            self._emit(EventKind.DISCONNECTED, "disconnected", requested=True)
        self.client = None
        self._ended = True
        self._wake.set()

    # -- reconnection --------------------------------------------------------------------------------------
    def _on_disconnected(self, client: BleakClient) -> None:
        if self._stopping or client is not self.client:
            return
        self._reconnect_task = asyncio.get_running_loop().create_task(self._reconnect())

    async def _reconnect(self) -> None:
        # decode what the old link delivered with the old decoder, then hold new packets until we know
        # whether the device resumed its counter or restarted it
        self._flush_raw()
        self._paused = True
        try:
            await self._reconnect_attempts()
        finally:
            self._paused = False
            self._wake.set()

    async def _reconnect_attempts(self) -> None:
        lost_at_s = time.monotonic()
        delay_s = self.backoff_s
        for attempt in range(1, self.reconnect_attempts + 1):
            self._emit(EventKind.RECONNECTING, f"link lost; reconnect attempt {attempt}/{self.reconnect_attempts}",
                       attempt=attempt, of=self.reconnect_attempts)
            await asyncio.sleep(delay_s)
            delay_s = min(delay_s * 2, self.max_backoff_s)
            device = await find_device(self.device.address, self.scan_timeout_s, backend=self.scanner_backend)
            if device is None:
                continue
            try:
                await self._connect(device)
            except Exception as exc:
                self._emit(EventKind.ERROR, f"reconnect attempt {attempt} failed: {exc!r}", attempt=attempt)
                continue
            self.device = device
            self.reconnects += 1
            if not getattr(self.profile, "resumed", False):
                self._restart_run(time.monotonic() - lost_at_s)
            self._emit(EventKind.CONNECTED, f"reconnected after {attempt} attempt(s)", address=device.address,
                       attempt=attempt, mtu=self.client.mtu_size if self.client else None)
            return
        self._emit(EventKind.DISCONNECTED, f"gave up after {self.reconnect_attempts} reconnect attempts",
                   requested=False)
        self.client = None
        self._ended = True
        self._wake.set()

    def _restart_run(self, outage_s: float) -> None:
        """The device restarted its counter: new decoder, indices shifted past an estimated gap."""
        self.decoder = self.profile.new_decoder(self._streams)
        for stream in self._streams:
            end = self._end_index.get(stream.stream_id, 0)
            missing = int(round(outage_s * stream.rate_hz))
            self._index_offset[stream.stream_id] = end + missing
            self._ready.append(Event(EventKind.GAP, source=self.name, message=f"~{missing} samples lost (estimated)",
                                     payload={"stream_id": stream.stream_id, "start_index": end,
                                              "n_missing": missing, "exact": False},
                                     arrival_s=time.monotonic()))
