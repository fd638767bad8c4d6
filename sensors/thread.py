"""The sensor thread: one long-lived asyncio loop (bleak lives only there) feeding one thread-safe queue.

Every running `Source` gets a pump task that copies its items onto `SensorThread.outbox`, a
`queue.SimpleQueue` whose ``put`` never blocks, so a device is never slowed by its consumer. The GUI (or a
test) drains the queue from its own thread; `backlog` and `max_backlog` show when it falls behind.

Commands run as coroutines on the loop and return `concurrent.futures.Future` objects
(``asyncio.run_coroutine_threadsafe``); the caller never awaits and never touches bleak objects directly.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import queue
import threading
import time
from typing import Any, Coroutine, Sequence, TypeVar

from sensors.stream import Event, EventKind, Item, Source

T = TypeVar("T")


class SensorThread:
    """Owns the sensor event loop and the outbox.

    Use as a context manager, or call `close` at exit::

        with SensorThread() as sensors:
            sensors.start(source).result(timeout=10)
            items = sensors.drain()
    """

    def __init__(self, name: str = "medius-sensors") -> None:
        self.outbox: queue.SimpleQueue[Item] = queue.SimpleQueue()
        self.max_backlog = 0  # largest outbox size seen by the producer since the last reset
        self._pumps: dict[int, tuple[Source, asyncio.Task]] = {}
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()
        self._ready.wait()

    # -- the loop thread -----------------------------------------------------------------------------------
    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        loop.call_soon(self._ready.set)
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        assert self._loop is not None
        return self._loop

    def _put(self, item: Item) -> None:
        self.outbox.put(item)
        size = self.outbox.qsize()
        if size > self.max_backlog:
            self.max_backlog = size

    # -- commands (any thread) -----------------------------------------------------------------------------
    def submit(self, coro: Coroutine[Any, Any, T]) -> "concurrent.futures.Future[T]":
        """Run ``coro`` on the sensor loop; returns a future for its result."""
        if self._closed:
            coro.close()
            raise RuntimeError("the sensor thread is closed")
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def scan(self, profiles: Sequence[Any], duration_s: float = 3.0, backend: Any = None) -> concurrent.futures.Future:
        """Scan for BLE devices; the future gives a list of `sensors.ble.device.ScanResult`."""
        from sensors.ble.device import scan

        return self.submit(scan(profiles, duration_s, backend=backend))

    def connect(self, device: Any, profile: Any, **source_kwargs: Any) -> concurrent.futures.Future:
        """Connect to a scanned BLE device and stream it; the future gives the running `BleSource`."""
        from sensors.ble.device import BleSource

        async def connect() -> BleSource:
            source = BleSource(device, profile, **source_kwargs)
            await self._start(source)
            return source

        return self.submit(connect())

    def disconnect(self, source: Source) -> concurrent.futures.Future:
        """Stop a source (a BLE source disconnects cleanly); resolves once its last item is queued."""
        return self.stop(source)

    def start(self, source: Source) -> concurrent.futures.Future:
        """Start any source and pump its items to the outbox; resolves when ``source.start()`` returned."""
        return self.submit(self._start(source))

    def stop(self, source: Source) -> concurrent.futures.Future:
        """Stop a source; resolves once its pump has queued everything, ``END`` included."""
        return self.submit(self._stop(source))

    def wait(self, source: Source) -> concurrent.futures.Future:
        """Resolves when a running source has ended on its own (its ``END`` is on the outbox)."""

        async def wait() -> None:
            entry = self._pumps.get(id(source))
            if entry is not None:
                await entry[1]

        return self.submit(wait())

    # -- consumer side (any thread) ------------------------------------------------------------------------
    @property
    def backlog(self) -> int:
        """Items waiting in the outbox now."""
        return self.outbox.qsize()

    def drain(self, max_items: int | None = None) -> list[Item]:
        """Take everything (or at most ``max_items``) waiting in the outbox, without blocking."""
        out: list[Item] = []
        while max_items is None or len(out) < max_items:
            try:
                out.append(self.outbox.get_nowait())
            except queue.Empty:
                break
        return out

    def close(self, timeout_s: float = 10.0) -> None:
        """Stop every source, stop the loop and join the thread."""
        if self._closed:
            return
        try:
            self.submit(self._stop_all()).result(timeout=timeout_s)
        finally:
            self._closed = True
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=timeout_s)

    def __enter__(self) -> "SensorThread":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    # -- on the loop ---------------------------------------------------------------------------------------
    async def _start(self, source: Source) -> None:
        if id(source) in self._pumps:
            raise RuntimeError(f"source {source.name!r} is already running")
        try:
            await source.start()
        except Exception as exc:
            self._put(Event(EventKind.ERROR, source=source.name, message=f"start failed: {exc!r}",
                            arrival_s=time.monotonic()))
            raise
        self._pumps[id(source)] = (source, asyncio.get_running_loop().create_task(self._pump(source)))

    async def _pump(self, source: Source) -> None:
        try:
            async for item in source.items():
                self._put(item)
        except Exception as exc:  # a source must not raise; if one does, say so and end it
            self._put(Event(EventKind.ERROR, source=source.name, message=f"source failed: {exc!r}",
                            arrival_s=time.monotonic()))
            self._put(Event(EventKind.END, source=source.name, arrival_s=time.monotonic()))

    async def _stop(self, source: Source) -> None:
        entry = self._pumps.pop(id(source), None)
        await source.stop()
        if entry is not None:
            await entry[1]

    async def _stop_all(self) -> None:
        for source, _ in list(self._pumps.values()):
            await self._stop(source)
