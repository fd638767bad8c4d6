"""The physiological simulator: seeded sEMG (GMed, TFL, optionally GMax, both sides) and thigh/pelvis IMU
driven by a protocol script, with a ground-truth record for scoring analyses. See `source.Simulator`."""

from sensors.sim.model import GroundTruth, LiftOff, SimConfig
from sensors.sim.protocol import MOVEMENTS, Trial, standard_protocol
from sensors.sim.source import Simulator, SimulatorSource

__all__ = ["GroundTruth", "LiftOff", "MOVEMENTS", "SimConfig", "Simulator", "SimulatorSource", "Trial",
           "standard_protocol"]
