"""The demo session in ``recordings/demo.medius``: a short simulated session the app opens without hardware.

`generate_demo` records the seeded simulator through the same `Recorder` a live session uses, so the file is
a genuine recording (trials at exact sample indices, a few lost packets as gaps). It is deterministic: the same
code gives the same decoded contents (only the creation time and software version in the metadata differ).
"""

from __future__ import annotations

import asyncio
import os

from sensors.recording import Recorder, RecordingError
from sensors.sim import SimConfig, Simulator, SimulatorSource, Trial

#: Simulator settings of the demo: right GMed under-active with TFL compensating, mains hum, 0.2 % packet loss.
DEMO_CONFIG = SimConfig(seed=7, affected_side="right", gmed_deficit=0.4, tfl_compensation=0.3, hum_uv=15.0,
                        hum_hz=50.0, packet_loss=0.002)


def demo_protocol() -> list[Trial]:
    """About 45 s: GMed MVICs on both sides, then three side-lying abductions per side."""
    return [Trial.rest(2.0), Trial.mvic("gluteus_medius", "left", 4.0), Trial.rest(2.0),
            Trial.mvic("gluteus_medius", "right", 4.0), Trial.rest(2.0),
            Trial.exercise("side_lying_abduction", "left", 3), Trial.rest(2.0),
            Trial.exercise("side_lying_abduction", "right", 3), Trial.rest(2.0)]


def generate_demo(path: os.PathLike | str) -> None:
    """Record the demo session to ``path`` (a new file)."""
    sim = Simulator(DEMO_CONFIG, demo_protocol())
    meta = {
        "patient_code": "DEMO-0001",
        "session": {"note": "simulated demo session (no patient)", "simulator_seed": DEMO_CONFIG.seed,
                    "affected_side": DEMO_CONFIG.affected_side},
        "filters": {"band_hz": [20.0, 450.0], "mains_hz": 50, "rms_window_s": 0.1},
    }
    rec = Recorder(path, meta)  # the source's STREAMS event declares the streams

    async def run() -> None:
        source = SimulatorSource(sim, speed=None)
        await source.start()
        async for item in source.items():
            rec.put(item)

    asyncio.run(run())
    rec.close()
    errors = rec.poll_events()
    if errors:
        raise RecordingError("; ".join(e.message for e in errors))
