"""What the third-party virtual sensors share: a log of command writes and one streaming task at a time."""

from __future__ import annotations

import asyncio
from typing import Awaitable, Sequence

from sensors.virtual.peripheral import VirtualPeripheral


class StreamingPeripheral(VirtualPeripheral):
    """A virtual sensor that streams a finite, deterministic run of notifications when told to start.

    Parameters
    ----------
    name : str
        Advertised name.
    service_uuids : sequence of str
        Advertised service UUIDs.
    n_packets : int
        Notifications (per data characteristic family) sent by one streaming run; then `done` is set.
    drop_every : int or None
        Skip every ``drop_every``-th packet (the one whose 0-based number ``% drop_every == drop_every // 2``)
        as if it were lost on the air, so loss accounting can be tested end to end.
    """

    def __init__(
        self, name: str, service_uuids: Sequence[str] = (), *, n_packets: int = 500, drop_every: int | None = None
    ) -> None:
        super().__init__(name, service_uuids)
        self.n_packets = int(n_packets)
        self.drop_every = drop_every
        self.writes: list[bytes] = []  # every command write, in order, as received
        self.sent = 0  # notifications actually sent in the current run
        self.done = asyncio.Event()
        self._task: asyncio.Task | None = None

    def dropped(self, packet_number: int) -> bool:
        """True if this packet is one the simulated air loses."""
        return self.drop_every is not None and packet_number % self.drop_every == self.drop_every // 2

    def start_streaming(self, run: Awaitable[None]) -> None:
        """Start one streaming run (cancelling any previous one)."""
        self.stop_streaming()
        self.done.clear()
        self.sent = 0
        self._task = asyncio.get_running_loop().create_task(self._run(run))

    def stop_streaming(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
        self._task = None

    async def _run(self, run: Awaitable[None]) -> None:
        try:
            await run
        finally:
            self.done.set()

    def on_disconnect(self, reason: int) -> None:
        self.stop_streaming()
