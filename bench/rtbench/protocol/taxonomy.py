"""How bad an error is: ``fatal`` (retrying cannot help), ``retryable`` or ``benign``.

Follows protocol reference §5.2: invalid keys, quota, expired sessions and the retired beta
shape are fatal; transient server errors, capacity, rate limits, dropped connections and
timeouts are retryable; the client-side races are benign.
"""

from __future__ import annotations

FATAL = "fatal"
RETRYABLE = "retryable"
BENIGN = "benign"

FATAL_CODES = frozenset(
    {
        "session_expired",
        "invalid_api_key",
        "insufficient_quota",
        "beta_api_shape_disabled",
        "account_deactivated",
        "billing_hard_limit_reached",
        "inference_not_authorized_error",
        "DeploymentNotFound",
        "OpperationNotSupported",
        "unknown_parameter",
        "missing_required_parameter",
        "invalid_value",
    }
)
BENIGN_CODES = frozenset(
    {
        "conversation_already_has_active_response",
        "response_cancel_not_active",
        "input_audio_buffer_commit_empty",
    }
)
FATAL_HTTP = frozenset({"400", "401", "403", "404"})


def classify(kind: str, code: str | None) -> str:
    """Severity of an error row from its kind and code."""
    if code in BENIGN_CODES:
        return BENIGN
    if code in FATAL_CODES:
        return FATAL
    if kind == "http_status" and code in FATAL_HTTP:
        return FATAL  # Azure bodies carry the HTTP status as the code
    if kind == "close" and code == "1001":
        return FATAL  # going away: session max duration
    # every other close is retryable, as in the SDK's recoverable set (§10.5): 1012 service
    # restart, 1013 try again later, 1005/1006/1011/1015 lost or broken transports
    return RETRYABLE
