"""app.protocol: the session description round-trips through the session file's meta and events."""

import json

import pytest

from app.protocol import Marker, Patient, Placement, ProtocolError, SessionProtocol, Trial, TrialType, other_side


def _protocol():
    return SessionProtocol(
        patient=Patient("P-017", affected_side="left", notes="right-handed"),
        date="2026-11-25",
        devices=("sim-emg", "sim-imu"),
        placements=(
            Placement("gluteus_medius", "left", "emg", 0, site="50 % crest-trochanter"),
            Placement("tfl", "left", "emg", 1),
            Placement("gluteus_medius", "right", "emg", 2, inter_electrode_mm=20.0),
            Placement("tfl", "right", "emg", 3),
        ),
        trials=(
            Trial("t2", "mvic", 12.0, 17.0, side="left", muscle="gluteus_medius"),
            Trial("t1", TrialType.REST, 0.0, 10.0),
            Trial("t3", "exercise", 20.0, 60.0, side="left", movement="side_lying_abduction"),
            Trial("t4", "hold", 70.0, 130.0, side="right"),
        ),
        markers=(Marker(33.5, "patient reports pain 3/10"),),
        mvic_protocol="3 x 5 s side-lying",
    )


def test_round_trip_through_json():
    p = _protocol()
    meta = json.loads(json.dumps(p.to_meta()))
    events = json.loads(json.dumps(p.to_events()))
    assert meta["patient_code"] == "P-017"
    assert [e["kind"] for e in events].count("trial_start") == 4
    back = SessionProtocol.from_file(meta, events)
    assert back == p
    assert [t.trial_id for t in back.trials] == ["t1", "t2", "t3", "t4"]  # sorted by time
    assert back.placement("tfl", "right").channel == 3
    assert [t.trial_id for t in back.trials_of("mvic")] == ["t2"]


def test_events_timed_by_sample_index():
    p = _protocol()
    events = p.to_events()
    for e in events:  # as a live recorder would write them: index on the emg stream at 1 kHz
        e["index"], e["stream_id"], e["time_s"] = int(round(e["time_s"] * 1000)), "emg", None
    back = SessionProtocol.from_file(p.to_meta(), events, {"emg": 1000.0})
    assert back.trials == p.trials


def test_unfinished_trial_ends_at_last_event():
    p = _protocol()
    events = [e for e in p.to_events() if not (e["kind"] == "trial_stop" and e["payload"]["trial_id"] == "t4")]
    events.append(dict(kind="marker", stream_id=None, index=None, time_s=100.0, payload={"text": "battery low"}))
    back = SessionProtocol.from_file(p.to_meta(), events)
    assert back.trials[-1].trial_id == "t4" and back.trials[-1].stop_s == 100.0


@pytest.mark.parametrize("bad, match", [
    (lambda: Patient(""), "non-empty"),
    (lambda: Patient("x", affected_side="middle"), "side"),
    (lambda: Placement("biceps", "left", "emg", 0), "muscle"),
    (lambda: Trial("a", "mvic", 0, 5, side="left"), "muscle"),
    (lambda: Trial("a", "exercise", 0, 5, side="left"), "movement"),
    (lambda: Trial("a", "hold", 5, 5, side="left"), "start_s < stop_s"),
    (lambda: Trial("a", "nap", 0, 5), "nap"),
])
def test_bad_descriptions_fail_clearly(bad, match):
    with pytest.raises(ValueError, match=match):
        bad()


def test_bad_file_contents_fail_clearly():
    p = _protocol()
    with pytest.raises(ProtocolError, match="newer"):
        SessionProtocol.from_file({**p.to_meta(), "protocol_version": 99}, [])
    with pytest.raises(ProtocolError, match="without a trial_start"):
        SessionProtocol.from_file(p.to_meta(), [dict(kind="trial_stop", time_s=1.0, payload={"trial_id": "x"})])
    with pytest.raises(ProtocolError, match="placed once"):
        SessionProtocol(Patient("a"), "2026-01-01", (Placement("tfl", "left", "e", 0), Placement("tfl", "left", "e", 1)))
    assert other_side("left") == "right"


def test_reads_recorder_numbered_trials():
    # sensors.recording.events: trial_start payload {"trial": int, "type": str, ...}, trial_stop {"trial": int}
    meta = {"patient_code": "P-1"}
    events = [dict(kind="trial_start", stream_id="emg", index=1000, time_s=None, payload={"trial": 1, "type": "rest"}),
              dict(kind="trial_stop", stream_id="emg", index=6000, time_s=None, payload={"trial": 1})]
    back = SessionProtocol.from_file(meta, events, {"emg": 1000.0})
    assert back.patient.code == "P-1"
    assert back.trials == (Trial("1", "rest", 1.0, 6.0),)


def test_reads_recorder_converted_source_trials():
    # sensors.recording.events.session_event: "type" = the source's label (movement), "kind" = the trial kind
    events = [dict(kind="trial_start", stream_id="emg", index=4000, time_s=None,
                   payload={"kind": "exercise", "movement": "side_lying_abduction", "side": "left", "muscle": None,
                            "trial": 1, "type": "side_lying_abduction", "repetitions": 1}),
              dict(kind="trial_stop", stream_id="emg", index=15000, time_s=None,
                   payload={"kind": "exercise", "trial": 1, "type": "side_lying_abduction"})]
    (t,) = SessionProtocol.from_file({"patient_code": "P"}, events, {"emg": 2000.0}).trials
    assert t == Trial("1", "exercise", 2.0, 7.5, side="left", movement="side_lying_abduction")
    with pytest.raises(ProtocolError, match="no trial type"):
        SessionProtocol.from_file({"patient_code": "P"}, [dict(kind="trial_start", time_s=0.0, payload={"trial": 1}),
                                                          dict(kind="trial_stop", time_s=1.0, payload={"trial": 1})])


def test_meta_without_protocol_model():
    # the recorder's conventional keys (recordings/demo.medius): patient_code, session.affected_side, created_utc
    meta = {"patient_code": "DEMO", "session": {"affected_side": "right"}, "created_utc": "2026-11-25T12:53:56+00:00"}
    p = SessionProtocol.from_file(meta, [])
    assert (p.patient.code, p.patient.affected_side, p.date) == ("DEMO", "right", "2026-11-25")
