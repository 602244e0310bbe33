"""Bodies of the server events the simulator sends, shaped per dialect as the services send
them (protocol reference §3.2, §4.4). Pure functions returning plain dicts.
"""

from __future__ import annotations

from typing import Any

from ..protocol import Dialect, ErrorInfo, SessionConfig, session_to_wire
from ..protocol.models import DEFAULT_MODEL, SIMULATOR_LABEL
from ..protocol.session_config import AUDIO_FORMATS_GA

#: What a reasoning model's preamble item says before its answer (§10.2).
PREAMBLE_TRANSCRIPT = "One moment, let me check."

#: ``session.model`` values the beta protocol knows (the beta SDK validates against this list).
BETA_MODELS = ("gpt-realtime", "gpt-realtime-2025-08-28", "gpt-4o-realtime-preview",
               "gpt-4o-realtime-preview-2024-10-01", "gpt-4o-realtime-preview-2024-12-17",
               "gpt-4o-realtime-preview-2025-06-03", "gpt-4o-mini-realtime-preview",
               "gpt-4o-mini-realtime-preview-2024-12-17")


def reported_model(requested: str, dialect: Dialect) -> str:
    """The model a session reports. Azure names *deployments* freely but reports the model
    behind them; a beta session therefore shows a beta model name whatever the deployment.
    The simulator's own label stands for a current GA model (§10.1)."""
    if dialect is Dialect.GA and requested == SIMULATOR_LABEL:
        return DEFAULT_MODEL
    if dialect is Dialect.GA or requested in BETA_MODELS:
        return requested
    return "gpt-4o-mini-realtime-preview-2024-12-17"


def session_object(
    cfg: SessionConfig, dialect: Dialect, session_id: str, expires_at: int
) -> dict[str, Any]:
    body = session_to_wire(cfg, dialect)
    body.update({"object": "realtime.session", "id": session_id, "expires_at": expires_at,
                 "tracing": None, "prompt": None, "include": None})
    if dialect is Dialect.GA:
        body["truncation"] = "auto"
        td = body["audio"]["input"]["turn_detection"]
        if isinstance(td, dict) and td["type"] == "server_vad":
            td.setdefault("idle_timeout_ms", None)  # the services show it, null when unset (§3.1)
    else:
        body["client_secret"] = None  # beta sessions never showed idle_timeout_ms (fixtures)
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
    conversation_id: str | None,
    cfg: SessionConfig,
    dialect: Dialect,
    *,
    status: str,
    metadata: dict[str, str] | None = None,
    status_details: dict[str, Any] | None = None,
    output: list[dict[str, Any]] | None = None,
    usage: dict[str, Any] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "object": "realtime.response", "id": response_id, "status": status,
        "status_details": status_details, "output": output or [],
        "conversation_id": conversation_id, "usage": usage, "metadata": metadata,
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


# -- injected failures (protocol reference §5.2, §5.4, §5.5) ---------------------------------

_AZURE_SUPPORT = ("Please contact us by filing an Azure support request in the portal. You can "
                  "find information on how to do that here: https://learn.microsoft.com/azure/"
                  "ai-services/cognitive-services-support-options")


def server_error_message(session_id: str, azure: bool) -> str:
    """The ``server_error`` text with the session id, as OpenAI / Azure word it."""
    if azure:  # verbatim shape of fixtures/azure-preview-server-error-after-session-created
        return (f"The server had an error while processing your request. Sorry about that! "
                f"{_AZURE_SUPPORT}  if the error persists. (include session ID in your message: "
                f"{session_id}). We recommend you retry your request. If the problem persists, "
                f"contact us by filing an Azure support request in the portal. You can find "
                f"information on how to do that here: https://learn.microsoft.com/azure/"
                f"ai-services/cognitive-services-support-options . (Please include the session "
                f"ID {session_id} in your message.)")
    return ("The server had an error while processing your request. Sorry about that! You can "
            "retry your request, or contact us through our help center at help.openai.com if "
            f"the error persists. (include session ID in your message: {session_id}). We "
            "recommend you retry your request.")


#: ``response.done`` failures by fault kind: status_details.error (type, code, message).
RESPONSE_FAILURES: dict[str, ErrorInfo] = {
    "response_failed_server_error": ErrorInfo(
        "server_error", None, "The server had an error while processing your request. Sorry "
        "about that!"),
    "response_failed_rate_limit": ErrorInfo(
        "tokens", "rate_limit_exceeded", "Rate limit reached for gpt-realtime-2 in organization "
        "org-sim on tokens per min (TPM): Limit 40000, Used 40000, Requested 812. Please try "
        "again in 6.42s."),
    "response_failed_insufficient_quota": ErrorInfo(
        "insufficient_quota", "insufficient_quota", "You exceeded your current quota, please "
        "check your plan and billing details. For more information on this error, read the "
        "docs: https://platform.openai.com/docs/guides/error-codes/api-errors."),
    "response_failed_unavailable": ErrorInfo(
        "service_unavailable_error", "inference_service_unavailable_error",
        "The server is overloaded or not ready yet. Please try again later."),
}


def handshake_refusal(kind: str, azure: bool, model: str) -> tuple[int, dict[str, Any]]:
    """HTTP status and JSON body of an injected handshake refusal (``handshake_<status>``)."""
    status = int(kind.removeprefix("handshake_"))
    if azure:
        code, message = {
            400: ("OpperationNotSupported", "The realtime operation does not work with the "
                  "specified model, " + model + ". Please choose different model and try again. "
                  "You can learn more about which models can be used with each operation here: "
                  "https://go.microsoft.com/fwlink/?linkid=2197993."),
            401: ("401", "Access denied due to invalid subscription key or wrong API endpoint. "
                  "Make sure to provide a valid key for an active subscription and use a correct "
                  "regional API endpoint for your resource."),
            403: ("PermissionDenied", "Principal does not have access to API/Operation."),
            404: ("DeploymentNotFound", "The API deployment for this resource does not exist. If "
                  "you created the deployment within the last 5 minutes, please wait a moment "
                  "and try again."),
            429: ("429", "Requests to the Realtime API under Azure OpenAI API version "
                  "2025-04-01-preview have exceeded call rate limit of your current OpenAI S0 "
                  "pricing tier. Please retry after 6 seconds."),
        }[status]
        return status, {"error": {"code": code, "message": message}}
    code, message = {
        400: ("invalid_value", f"Invalid value: '{model}'. The model is not a realtime model."),
        401: ("invalid_api_key", "Incorrect API key provided. You can find your API key at "
              "https://platform.openai.com/account/api-keys."),
        403: ("model_not_found", f"Project `proj_sim` does not have access to model `{model}`"),
        404: ("model_not_found", f"The model `{model}` does not exist or you do not have access "
              "to it."),
        429: ("rate_limit_exceeded", "Rate limit reached for requests. Please try again in 1s."),
    }[status]
    return status, {"error": {"message": message, "type": "invalid_request_error",
                              "code": code, "param": None}}


BETA_SHAPE_DISABLED = ErrorInfo(
    "invalid_request_error", "beta_api_shape_disabled",
    "The Realtime Beta API is no longer supported. Please use /v1/realtime for the GA API.")
