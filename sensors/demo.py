"""The demo session in ``recordings/demo.medius``: a short simulated session the app opens without hardware.

`generate_demo` records the seeded simulator through the same `Recorder` a live session uses, so the file is
a genuine recording (trials at exact sample indices, a few lost packets as gaps). It is deterministic: the same
code gives the same decoded contents (only the creation time and software version in the metadata differ).
"""

from __future__ import annotations

import os

from sensors.sim import SimConfig, Simulator, Trial
from sensors.sim.record import record_simulation

#: Simulator settings of the demo: right GMed under-active with TFL compensating, fatigue in the holds,
#: mains hum, 0.2 % packet loss.
DEMO_CONFIG = SimConfig(seed=7, affected_side="right", gmed_deficit=0.4, tfl_compensation=0.3, hum_uv=15.0,
                        hum_hz=50.0, packet_loss=0.002, fatigue_mdf_pct_per_s=-0.4, fatigue_amp_pct_per_s=0.6)


def demo_protocol() -> list[Trial]:
    """About 80 s: GMed and TFL MVICs on both sides, three side-lying abductions and a 12 s hold per side."""
    trials = [Trial.rest(2.0)]
    for side in ("left", "right"):
        for muscle in ("gluteus_medius", "tfl"):
            trials += [Trial.mvic(muscle, side, 3.0), Trial.rest(1.5)]
    for side in ("left", "right"):
        trials += [Trial.exercise("side_lying_abduction", side, 3), Trial.rest(1.5)]
    for side in ("left", "right"):
        trials += [Trial.hold(side, 12.0), Trial.rest(1.5)]
    return trials


def generate_demo(path: os.PathLike | str) -> None:
    """Record the demo session to ``path`` (a new file)."""
    sim = Simulator(DEMO_CONFIG, demo_protocol())
    placements = [{"muscle": c.muscle, "side": c.side, "stream_id": sim.emg_stream.stream_id, "channel": i,
                   "site": "simulated", "inter_electrode_mm": 20.0}
                  for i, c in enumerate(sim.emg_stream.channels)]
    meta = {
        "patient_code": "DEMO-0001",
        "patient": {"code": "DEMO-0001", "affected_side": DEMO_CONFIG.affected_side,
                    "notes": "simulated patient, not a person"},
        "devices": ["Medius physiological simulator"],
        "placements": placements,
        "session": {"note": "simulated demo session (no patient)", "simulator_seed": DEMO_CONFIG.seed,
                    "affected_side": DEMO_CONFIG.affected_side},
        "filters": {"band_hz": [20.0, 450.0], "mains_hz": 50, "rms_window_s": 0.1},
    }
    record_simulation(path, sim, meta)
