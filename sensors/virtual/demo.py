"""The whole BLE path with no hardware: a simulated Medius board on the virtual radio, read through BleSource.

`VirtualBoardSource` is what ``medius run --source virtual-ble`` streams: bleak's public API, a real GATT
server on Bumble, the Medius decoder, counters and gap accounting, exactly as with a real board.
"""

from __future__ import annotations

from typing import AsyncIterator, Sequence

from sensors.ble.device import BleSource, scan
from sensors.ble.medius import MediusProfile
from sensors.stream import Item, StreamInfo
from sensors.virtual.radio import VirtualRadio


class VirtualBoardSource:
    """A `Source` that starts a virtual radio, adds the simulator's Medius board, scans, connects and streams.

    Parameters
    ----------
    simulator : sensors.sim.Simulator
        Whose EMG the board streams (the Medius profile carries EMG only: no IMU, no trial events).
    speed : float or None
        Board sample clock relative to wall time (1.0 real time).
    """

    def __init__(self, simulator, speed: float | None = 1.0) -> None:
        self.simulator = simulator
        self.speed = speed
        self.name = "virtual-medius"
        self.radio: VirtualRadio | None = None
        self.inner: BleSource | None = None

    @property
    def streams(self) -> Sequence[StreamInfo]:
        return self.inner.streams if self.inner is not None else ()

    async def start(self) -> None:
        self.radio = await VirtualRadio.create()
        await self.radio.add(self.simulator.medius_peripheral(speed=self.speed))
        profile = MediusProfile()
        found = [r for r in await scan([profile], 1.0, backend=self.radio.scanner_backend) if r.profiles]
        if not found:
            raise RuntimeError("the virtual Medius board did not advertise")
        self.inner = BleSource(found[0].device, profile, scanner_backend=self.radio.scanner_backend,
                               client_backend=self.radio.client_backend)
        self.name = self.inner.name
        await self.inner.start()

    def items(self) -> AsyncIterator[Item]:
        assert self.inner is not None, "start() first"
        return self.inner.items()

    async def stop(self) -> None:
        if self.inner is not None:
            await self.inner.stop()
        if self.radio is not None:
            await self.radio.close()
