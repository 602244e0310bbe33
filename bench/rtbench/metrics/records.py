"""The rows rtbench writes: one per turn, one per error. Plain dataclasses, JSON-ready.

Every row carries target, region and model so any table can be grouped without joins.
Latencies are milliseconds; ``None`` means not measured (a timed-out turn is censored, never
entered as a latency).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(slots=True)
class TurnRecord:
    target: str
    region: str
    model: str
    session_idx: int
    session_id: str | None
    turn_idx: int
    utterance: str
    status: str = "pending"          # ok | error | timeout
    t_start_s: float = 0.0           # turn start, seconds since run start
    chunk_ms: int = 0
    speech_end_ms: float = 0.0       # P_eos within the utterance
    connect_ms: float | None = None
    session_created_ms: float | None = None
    vad_ms: float | None = None
    ttfb_ms: float | None = None     # T_eos -> first audio byte (first delta) of the response
    ttfa_ms: float | None = None     # T_eos -> first audible output sample (played from ttfb)
    silence_pad_ms: float | None = None    # ttfa - ttfb: leading silence the listener waits
    ttfa_answer_ms: float | None = None    # T_eos -> first audible sample of the answer item
    output_items: int = 0            # output message items of the response (preamble + answer)
    preamble_audio_ms: float = 0.0   # audio of the items before the answer item
    premature: bool = False          # response.created or speech_stopped came before T_eos
    first_transcript_ms: float | None = None
    response_done_ms: float | None = None
    output_audio_ms: float = 0.0
    audio_end_ms: int | None = None  # speech_stopped.audio_end_ms as the server reported it
    response_id: str | None = None
    response_status: str | None = None
    status_reason: str | None = None
    error_code: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    total_tokens: int | None = None
    send_lateness_max_ms: float = 0.0
    turn_mode: str = "server_vad"    # server_vad | semantic_vad | manual: never pooled
    effort: str | None = None        # reasoning.effort the session asked for (None: not set)
    # Barge-in (the user speaks again while the response plays):
    barge_in: bool = False           # this turn's response was interrupted on purpose
    interrupt_ms: float | None = None      # speech start sent -> response.done (cancelled)
    audio_stop_ms: float | None = None     # speech start sent -> last audio delta received
    residual_audio_ms: float | None = None  # audio received after speech start was sent
    truncate_audio_end_ms: int | None = None  # played ms sent in conversation.item.truncate
    truncated: bool = False          # conversation.item.truncated came back

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class ErrorRecord:
    target: str
    region: str
    model: str
    session_idx: int
    session_id: str | None
    turn_idx: int | None
    phase: str            # connect | session | turn
    kind: str  # http_status | connect | error_event | response_failed | no_audio | close | timeout
    #            | protocol | idle_timeout (benign: the server answered an idle timeout)
    code: str | None
    message: str
    t_s: float            # seconds since run start
    severity: str = "retryable"  # fatal | retryable | benign (see taxonomy.py)
    attempt: int = 0      # 0 = first attempt of this session slot, 1.. = retries

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class SessionRecord:
    """One session attempt: when it was meant to start, when it did, how it ended."""

    target: str
    region: str
    model: str
    session_idx: int
    slot: int                        # closed model: the concurrency slot; open: arrival number
    attempt: int                     # 0 first try, 1.. explicit retries (--retry)
    session_id: str | None
    intended_start_s: float          # seconds since run start, from the load model
    start_s: float | None            # None: dropped (could not start)
    start_lag_ms: float | None
    connect_ms: float | None
    session_created_ms: float | None
    turns_ok: int = 0
    turns_failed: int = 0
    status: str = "ok"               # ok | failed | dropped | stopped (the run stopped first)
    end_code: str | None = None      # first non-benign error code, if any
    severity: str | None = None      # of that error
    retried: bool = False            # a retry attempt followed this one

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

