"""Model ids of the Realtime services: the current ones and the shutdown dates of the old.

Why here: defaults, the simulator's reported model and the warning a run on a retiring model
prints must agree (protocol reference §10.1: shutdown dates from the SDK's docstrings).
"""

from __future__ import annotations

#: The label the built-in simulator's targets carry (rows, tags, summary groups).
SIMULATOR_LABEL = "sim-realtime"
#: The current model the simulator reports for its default label, and the default elsewhere.
DEFAULT_MODEL = "gpt-realtime-2"
CURRENT_MODELS = ("gpt-realtime-1.5", "gpt-realtime-2", "gpt-realtime-2.1",
                  "gpt-realtime-2.1-mini", "gpt-audio-1.5")
#: A current input transcription model (the probe's transcription rung asks for it).
TRANSCRIPTION_MODEL = "gpt-transcribe"

_REALTIME_SHUTDOWN = "2027-01-20"
_TRANSCRIPTION_SHUTDOWN = "2027-02-26"
#: Deprecated model id -> the date the service stops serving it.
SHUTDOWN_DATES: dict[str, str] = {
    **dict.fromkeys(("gpt-realtime", "gpt-realtime-2025-08-28", "gpt-realtime-mini",
                     "gpt-realtime-mini-2025-12-15", "gpt-audio-mini",
                     "gpt-audio-mini-2025-12-15"), _REALTIME_SHUTDOWN),
    **dict.fromkeys(("whisper-1", "gpt-4o-transcribe", "gpt-4o-mini-transcribe",
                     "gpt-4o-mini-transcribe-2025-12-15", "gpt-4o-transcribe-diarize"),
                    _TRANSCRIPTION_SHUTDOWN),
}


def deprecation(model: str) -> str | None:
    """One line saying ``model`` shuts down and when, or None for a model not known to."""
    date = SHUTDOWN_DATES.get(model)
    if date is None:
        return None
    return (f"model {model} shuts down on {date}; current ids: {', '.join(CURRENT_MODELS)}")
