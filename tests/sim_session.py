"""Record a simulator run (sensors.sim, with its ground truth) into a .medius file through the real Recorder,
exactly as a live session would be stored (test helper)."""

from __future__ import annotations

from app.protocol import Patient, SessionProtocol
from sensors.sim import SimConfig, Simulator, Trial
from sensors.sim.record import record_simulation


def short_protocol(reps: int = 8, hold_s: float = 30.0, mvic_efforts: int = 3) -> list[Trial]:
    """Rest; MVIC efforts per muscle and side (3, as clinical.md section 3); side-lying abduction per side; a
    hold per side."""
    trials = [Trial.rest(6.0)]
    for side in ("left", "right"):
        for muscle in ("gluteus_medius", "tfl"):
            trials += [Trial.mvic(muscle, side), Trial.rest(3.0)] * mvic_efforts
    for side in ("left", "right"):
        trials += [Trial.exercise("side_lying_abduction", side, reps), Trial.rest(3.0)]
    for side in ("left", "right"):
        trials += [Trial.hold(side, hold_s), Trial.rest(3.0)]
    return trials


def record(path, config: SimConfig, trials=None, date: str = "2026-11-25", patient: str = "P-SIM") -> Simulator:
    """Write the whole simulated session to ``path``; returns the simulator (``.truth`` is the ground truth)."""
    sim = Simulator(config, trials or short_protocol())
    meta = SessionProtocol(Patient(patient, affected_side=config.affected_side), date, (),
                           devices=("medius-simulator",), mvic_protocol="simulator: 5 s per muscle").to_meta()
    record_simulation(path, sim, meta, block_s=1.0)
    return sim
