"""Protocol scripts for the simulator: trials, movements and their per-muscle activation levels.

Activation levels are %MVIC of the *working* side, chosen inside the published ranges of clinical.md §4
(plausibility only, not norms): side-lying hip abduction GMed/GMax/TFL 36.6/24.6/31.0 (Phys Ther Korea);
clam and bridges gluteal-dominant (Selkowitz 2013: gluteal-to-TFL index clam 115, unilateral bridge 59);
lateral step-up GMed ≈ 61 % (MacAskill). The other side gets a small fraction (`CONTRALATERAL`), except in
bilateral movements (squat).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from sensors.stream import MUSCLES, SIDES

GMED, TFL, GMAX = "gluteus_medius", "tfl", "gluteus_maximus"

TRIAL_KINDS = ("rest", "mvic", "exercise", "hold")


@dataclass(frozen=True)
class Movement:
    """How one exercise loads the hip: peak %MVIC per muscle on the working side and its joint angles.

    Parameters
    ----------
    peak_pct_mvic : dict
        Muscle -> peak activation (%MVIC) of the working side during a repetition.
    angle : str
        IMU channel the repetition moves: ``"hip_abduction_deg"`` or ``"hip_flexion_deg"``.
    start_deg, peak_deg : float
        That angle at rest and at the top of a repetition.
    pelvic_drop_deg : float
        Contralateral pelvic drop while loaded (single-leg tasks); grows on an affected side (Trendelenburg).
    bilateral : bool
        Both sides work equally (squat).
    up_s, top_s, down_s, pause_s : float
        Repetition phases: raise, hold at the top, lower, rest before the next repetition.
    """

    peak_pct_mvic: dict
    angle: str
    start_deg: float
    peak_deg: float
    pelvic_drop_deg: float = 0.0
    bilateral: bool = False
    up_s: float = 1.0
    top_s: float = 1.0
    down_s: float = 1.0
    pause_s: float = 1.5

    @property
    def rep_s(self) -> float:
        return self.up_s + self.top_s + self.down_s

    @property
    def period_s(self) -> float:
        return self.rep_s + self.pause_s


MOVEMENTS: dict[str, Movement] = {
    "side_lying_abduction": Movement({GMED: 37.0, GMAX: 25.0, TFL: 31.0}, "hip_abduction_deg", 0.0, 35.0),
    "clamshell": Movement({GMED: 40.0, GMAX: 30.0, TFL: 12.0}, "hip_abduction_deg", 0.0, 30.0),
    "single_leg_bridge": Movement({GMED: 45.0, GMAX: 40.0, TFL: 25.0}, "hip_flexion_deg", 45.0, 0.0,
                                  pelvic_drop_deg=2.0),
    "single_leg_stance": Movement({GMED: 25.0, GMAX: 10.0, TFL: 15.0}, "hip_flexion_deg", 0.0, 5.0,
                                  pelvic_drop_deg=2.0, up_s=1.0, top_s=8.0, down_s=1.0, pause_s=2.0),
    "lateral_step_down": Movement({GMED: 55.0, GMAX: 35.0, TFL: 30.0}, "hip_flexion_deg", 0.0, 50.0,
                                  pelvic_drop_deg=3.0),
    "squat": Movement({GMED: 25.0, GMAX: 30.0, TFL: 15.0}, "hip_flexion_deg", 0.0, 90.0, bilateral=True),
    # the sustained hold: side-lying abduction held at 25° (what fatigue indices are measured on)
    "hold": Movement({GMED: 40.0, GMAX: 22.0, TFL: 30.0}, "hip_abduction_deg", 0.0, 25.0,
                     up_s=1.0, top_s=28.0, down_s=1.0, pause_s=0.0),
}

#: Contralateral activation as a fraction of the working side (stabilisers, not movers).
CONTRALATERAL = 0.15
#: Activation at rest, %MVIC (postural tone).
REST_PCT_MVIC = 2.0
#: Co-activation during an MVIC of the key muscle (same side), %MVIC.
MVIC_SYNERGY = {GMED: {TFL: 60.0, GMAX: 40.0}, TFL: {GMED: 60.0, GMAX: 20.0}, GMAX: {GMED: 40.0, TFL: 20.0}}


@dataclass(frozen=True)
class Trial:
    """One step of a protocol. Build with the class methods.

    Parameters
    ----------
    kind : str
        ``"rest"``, ``"mvic"``, ``"exercise"`` or ``"hold"``.
    duration_s : float
        Whole trial, including a 1 s quiet lead-in before the first repetition of exercises.
    muscle, side, movement : str or None
        What is contracted or moved, and on which side.
    reps : int
        Repetitions of an exercise.
    """

    kind: str
    duration_s: float
    muscle: str | None = None
    side: str | None = None
    movement: str | None = None
    reps: int = 0

    LEAD_IN_S = 1.0

    def __post_init__(self) -> None:
        if self.kind not in TRIAL_KINDS:
            raise ValueError(f"unknown trial kind {self.kind!r}; expected one of {TRIAL_KINDS}")
        if not self.duration_s > 0:
            raise ValueError(f"trial duration must be positive, got {self.duration_s}")
        if self.side is not None and self.side not in SIDES:
            raise ValueError(f"unknown side {self.side!r}")
        if self.muscle is not None and self.muscle not in MUSCLES:
            raise ValueError(f"unknown muscle {self.muscle!r}")
        if self.movement is not None and self.movement not in MOVEMENTS:
            raise ValueError(f"unknown movement {self.movement!r}; expected one of {tuple(MOVEMENTS)}")

    @classmethod
    def rest(cls, duration_s: float = 5.0) -> "Trial":
        return cls("rest", duration_s)

    @classmethod
    def mvic(cls, muscle: str, side: str, duration_s: float = 5.0) -> "Trial":
        """Ramp 1 s to maximal effort, hold, relax over the last second."""
        return cls("mvic", duration_s, muscle=muscle, side=side)

    @classmethod
    def exercise(cls, movement: str, side: str, reps: int = 5) -> "Trial":
        if movement not in MOVEMENTS:
            raise ValueError(f"unknown movement {movement!r}; expected one of {tuple(MOVEMENTS)}")
        m = MOVEMENTS[movement]
        return cls("exercise", cls.LEAD_IN_S + reps * m.period_s, side=side, movement=movement, reps=reps)

    @classmethod
    def hold(cls, side: str, duration_s: float = 30.0) -> "Trial":
        """Sustained side-lying abduction hold of ``duration_s`` (fatigue trial), one long 'repetition'."""
        return cls("hold", cls.LEAD_IN_S + duration_s, side=side, movement="hold", reps=1)

    def to_dict(self) -> dict:
        return asdict(self)


def standard_protocol(reps: int = 5, hold_s: float = 30.0) -> list[Trial]:
    """MVICs of GMed and TFL on both sides, then every exercise on both sides, then a hold per side."""
    trials: list[Trial] = [Trial.rest(3.0)]
    for side in SIDES:
        for muscle in (GMED, TFL):
            trials += [Trial.mvic(muscle, side), Trial.rest(3.0)]
    for movement in ("side_lying_abduction", "clamshell", "single_leg_bridge", "single_leg_stance",
                     "lateral_step_down", "squat"):
        for side in SIDES:
            trials += [Trial.exercise(movement, side, reps if movement != "single_leg_stance" else 2), Trial.rest(3.0)]
    for side in SIDES:
        trials += [Trial.hold(side, hold_s), Trial.rest(5.0)]
    return trials
