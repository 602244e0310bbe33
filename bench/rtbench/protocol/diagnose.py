"""Plain-words hint for a set-up error that shows client and server speak different protocol
generations (the run-level diagnosis of unanimous failures is ``results.diagnosis``)."""

from __future__ import annotations

from . import Dialect, ErrorInfo

PREVIEW_HINT = ("the server speaks the preview (beta) protocol; set protocol = \"preview\" for this "
                "target")
GA_HINT = "the server speaks the GA protocol; set protocol = \"ga\" for this target"
RETIRED_HINT = ("OpenAI no longer accepts the beta protocol; set protocol = \"ga\" (the beta "
                "shape remains only on Azure's dated api-version path)")


def explain_session_error(info: ErrorInfo, dialect: Dialect) -> str | None:
    """A hint when a set-up ``error`` shows that client and server speak different generations.

    A GA ``session.update`` on the preview path is refused with ``unknown_parameter`` on
    ``session.type`` (protocol reference §1.2, §5.2); a beta one on a GA path with an unknown beta
    field or a missing ``session.type``.
    """
    if info.code == "beta_api_shape_disabled":
        return RETIRED_HINT
    param = info.param or ""
    if dialect is Dialect.GA and info.code == "unknown_parameter" and param == "session.type":
        return PREVIEW_HINT
    if dialect is Dialect.BETA and (
        (info.code == "unknown_parameter" and param.startswith("session."))
        or (info.code == "missing_required_parameter" and param == "session.type")
    ):
        return GA_HINT
    return None
