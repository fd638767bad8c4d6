"""Kinds and payloads of the session events the app records (besides the sources' own events).

- ``trial_start``: payload ``{"trial": int, "type": str, "repetitions": int}`` (planned repetitions), plus
  whatever the source said about the trial (the simulator adds ``kind, duration_s, muscle, side, movement, reps``).
- ``trial_stop``:  payload ``{"trial": int}`` (plus the same source details).
- ``rep``:         one repetition; ``index`` is its first sample, payload ``{"trial": int, "rep": int,
  "end_index": int}`` (one past its last sample, same stream).
- ``marker``:      payload ``{"text": str}``.

Events carry a stream sample ``index`` (preferred: exact) or ``time_s`` from session start.

Live sources announce trials and markers as ``TRIAL`` / ``MARKER`` events (`sensors.stream.EventKind`);
`session_event` turns those into the stored form and `live_event` turns a stored one back, so a replay emits what
the live source did.
"""

from sensors.stream import Event, EventKind

TRIAL_START = "trial_start"
TRIAL_STOP = "trial_stop"
REPETITION = "rep"
MARKER = "marker"


#: Keys of a live TRIAL/MARKER payload that become columns of the stored event rather than payload.
_PLACE_KEYS = ("phase", "index", "stream_id")


def session_event(event: Event) -> tuple[str, str | None, int | None, dict]:
    """``(kind, stream_id, index, payload)`` to store for a live ``TRIAL`` or ``MARKER`` event."""
    p = event.payload
    payload = {k: v for k, v in p.items() if k not in _PLACE_KEYS}
    if event.kind is EventKind.TRIAL:
        kind = TRIAL_START if p.get("phase") == "start" else TRIAL_STOP
        payload.setdefault("type", p.get("movement") or p.get("kind") or event.message)
        payload.setdefault("repetitions", p.get("reps"))
    else:
        kind = MARKER
        payload.setdefault("text", event.message)
    return kind, p.get("stream_id"), p.get("index"), payload


def live_event(stored: dict, source: str) -> Event:
    """The event a live source would have sent for a stored session event (`SessionReader.events` item).

    Trials and markers come back as ``TRIAL`` / ``MARKER`` with the live payload layout (``phase``, ``index``,
    ``stream_id`` in the payload); anything else as ``ANNOTATION`` carrying the stored event.
    """
    kind, p = stored["kind"], stored["payload"]
    place = {"index": stored["index"], "stream_id": stored["stream_id"], "time_s": stored["time_s"]}
    if kind in (TRIAL_START, TRIAL_STOP):
        phase = "start" if kind == TRIAL_START else "stop"
        return Event(EventKind.TRIAL, source, f"{p.get('type', '')} {phase}".strip(), {**p, "phase": phase, **place})
    if kind == MARKER:
        return Event(EventKind.MARKER, source, str(p.get("text", "")), {**p, **place})
    return Event(EventKind.ANNOTATION, source, kind,
                 {"kind": kind, "stream_id": stored["stream_id"], "index": stored["index"],
                  "time_s": stored["time_s"], "payload": p})
