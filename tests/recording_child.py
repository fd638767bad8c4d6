"""Subprocess side of the crash tests in test_recording.py.

``python recording_child.py kill PATH SEED`` records the simulator (``SimConfig(seed=SEED)``) in real time
through the live `Recorder` and prints the end index of every EMG frame handed to the recorder, until killed.
``python recording_child.py diskfull PATH LIMIT_BYTES`` records a deterministic ramp as fast as possible under
RLIMIT_FSIZE and prints the recorder's error event as JSON.
"""

import asyncio
import json
import resource
import signal
import sys
import time

import numpy as np

from sensors.recording import Recorder
from sensors.sim import SimConfig, Simulator, SimulatorSource
from sensors.stream import ChannelInfo, Frame, StreamInfo

RATE_HZ = 2000.0
FRAME_N = 20

STREAM = StreamInfo(
    "emg", RATE_HZ,
    (ChannelInfo("ramp", kind="other", unit="1"),
     ChannelInfo("A1", unit="mV", gain=0.001, muscle="gluteus_medius", side="right")),
    dtype="int32",
)


def ramp_frame(first_index: int) -> Frame:
    """Channel 0 is the sample index itself; channel 1 a deterministic pseudo-signal of it."""
    idx = np.arange(first_index, first_index + FRAME_N, dtype=np.int64)
    counts = np.stack([idx, (idx * 7919) % 4001 - 2000], axis=1).astype(np.int32)
    return Frame("emg", first_index, counts)


def record_simulator_until_killed(path: str, seed: int) -> None:
    sim = Simulator(SimConfig(seed=seed))
    rec = Recorder(path, {"patient_code": "KILL"})  # the source's STREAMS event declares the streams

    async def run() -> None:
        source = SimulatorSource(sim, speed=1.0)  # real time, as a live session
        await source.start()
        async for item in source.items():
            rec.put(item)
            if isinstance(item, Frame) and item.stream_id == "emg":
                print(item.first_index + item.counts.shape[0], flush=True)

    asyncio.run(run())


def record_until_disk_full(path: str, limit_bytes: int) -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # get EFBIG from write() instead of being killed
    rec = Recorder(path, {"patient_code": "FULL"}, [STREAM])
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))
    index = 0
    while rec.recording and index < 100_000_000:
        rec.put(ramp_frame(index))
        index += FRAME_N
        if index % 20000 == 0:
            time.sleep(0.001)  # let the writer thread keep up, as a paced source would
    rec.close()
    events = rec.poll_events()
    print(json.dumps([{"kind": e.kind.value, "message": e.message, "payload": e.payload} for e in events]))


if __name__ == "__main__":
    if sys.argv[1] == "kill":
        record_simulator_until_killed(sys.argv[2], int(sys.argv[3]))
    else:
        record_until_disk_full(sys.argv[2], int(sys.argv[3]))
