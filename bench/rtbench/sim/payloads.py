"""Bodies of the server events the simulator sends, shaped per dialect as the services send
them (protocol reference §3.2, §4.4). Pure functions returning plain dicts.
"""

from __future__ import annotations

from typing import Any

from ..protocol import Dialect, ErrorInfo, SessionConfig, session_to_wire
from ..protocol.session_config import AUDIO_FORMATS_GA


def session_object(
    cfg: SessionConfig, dialect: Dialect, session_id: str, expires_at: int
) -> dict[str, Any]:
    body = session_to_wire(cfg, dialect)
    body.update({"object": "realtime.session", "id": session_id, "expires_at": expires_at,
                 "tracing": None, "prompt": None, "include": None})
    if dialect is Dialect.GA:
        body["truncation"] = "auto"
    else:
        body["client_secret"] = None
    return body


def user_item(item_id: str, status: str = "completed", transcript: str | None = None) -> dict[str, Any]:
    return {"id": item_id, "object": "realtime.item", "type": "message", "status": status,
            "role": "user", "content": [{"type": "input_audio", "transcript": transcript}]}


def assistant_item(
    item_id: str, dialect: Dialect, status: str, transcript: str | None
) -> dict[str, Any]:
    content = []
    if transcript is not None:
        kind = "output_audio" if dialect is Dialect.GA else "audio"
        content.append({"type": kind, "transcript": transcript})
    return {"id": item_id, "object": "realtime.item", "type": "message", "status": status,
            "role": "assistant", "content": content}


def response_object(
    response_id: str,
    conversation_id: str,
    cfg: SessionConfig,
    dialect: Dialect,
    *,
    status: str,
    status_details: dict[str, Any] | None = None,
    output: list[dict[str, Any]] | None = None,
    usage: dict[str, Any] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "object": "realtime.response", "id": response_id, "status": status,
        "status_details": status_details, "output": output or [],
        "conversation_id": conversation_id, "usage": usage, "metadata": None,
    }
    if dialect is Dialect.GA:
        body["output_modalities"] = list(cfg.output_modalities)
        body["max_output_tokens"] = cfg.max_output_tokens
        body["audio"] = {"output": {"format": dict(AUDIO_FORMATS_GA[cfg.output_format]),
                                    "voice": cfg.voice}}
    else:
        body["modalities"] = ["text"] if cfg.output_modalities == ("text",) else ["audio", "text"]
        body["voice"] = cfg.voice
        body["output_audio_format"] = cfg.output_format
        body["temperature"] = cfg.temperature
        body["max_output_tokens"] = cfg.max_output_tokens
    return body


def usage(input_audio_ms: float, output_audio_ms: float, text_tokens: int) -> dict[str, Any]:
    """Token usage derived from durations (~10 tokens/s in, ~20 tokens/s out; ref §4.4)."""
    audio_in = round(input_audio_ms / 100)
    audio_out = round(output_audio_ms / 50)
    inp = audio_in + 20
    out = audio_out + text_tokens
    return {
        "total_tokens": inp + out, "input_tokens": inp, "output_tokens": out,
        "input_token_details": {"text_tokens": 20, "audio_tokens": audio_in, "image_tokens": 0,
                                "cached_tokens": 0,
                                "cached_tokens_details": {"text_tokens": 0, "audio_tokens": 0,
                                                          "image_tokens": 0}},
        "output_token_details": {"text_tokens": text_tokens, "audio_tokens": audio_out},
    }


def error_body(info: ErrorInfo, client_event_id: str | None = None) -> dict[str, Any]:
    return {"error": {**info.as_dict(), "event_id": client_event_id}}


def rate_limits(remaining_tokens: int) -> dict[str, Any]:
    return {"rate_limits": [{"name": "tokens", "limit": 40000, "remaining": remaining_tokens,
                             "reset_seconds": 0.5}]}
