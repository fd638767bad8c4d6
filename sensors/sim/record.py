"""Record a whole simulated session to a session file as fast as possible (demo, tests, analysis scoring)."""

from __future__ import annotations

import asyncio
import os

from sensors.recording import Recorder, RecordingError
from sensors.sim.source import Simulator, SimulatorSource


def record_simulation(path: os.PathLike | str, simulator: Simulator, meta: dict, block_s: float = 0.05) -> None:
    """Stream ``simulator`` through the live `Recorder` into a new session file at ``path``.

    The file is a genuine recording (trials at exact sample indices, lost packets as gaps), made by the same
    code a live session uses. Raises `RecordingError` if the recorder reported a failure.
    """
    rec = Recorder(path, meta)  # the source's STREAMS event declares the streams

    async def run() -> None:
        source = SimulatorSource(simulator, speed=None, block_s=block_s)
        await source.start()
        async for item in source.items():
            rec.put(item)

    asyncio.run(run())
    rec.close()
    errors = rec.poll_events()
    if errors:
        raise RecordingError("; ".join(e.message for e in errors))
