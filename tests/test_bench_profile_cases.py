"""The third-party decode-benchmark cases decode cleanly and count exactly the values they decode."""

import pytest

from app import bench_profile_cases as cases
from sensors.stream import Event, Frame


@pytest.mark.parametrize("case", [cases.bitalino_case, cases.myo_case, cases.ganglion_case, cases.metamotion_case])
def test_case_declares_the_values_its_decoder_emits(case):
    decoder, notes, values = case()
    emitted, events = 0, []
    for uuid, data in notes:
        for item in decoder.feed(uuid, data, 0.0):
            if isinstance(item, Frame):
                emitted += item.counts.size
            elif isinstance(item, Event):
                events.append(item)
    assert emitted == values and events == []
