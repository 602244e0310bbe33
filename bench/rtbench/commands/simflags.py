"""Simulator latency flags, shared by ``rtbench serve`` and the embedded simulator of ``run``."""

from __future__ import annotations

import argparse

from ..config import ConfigError
from ..sim import Dist, Profile


def add_profile_args(p: argparse.ArgumentParser, prefix: str = "") -> None:
    g = p.add_argument_group("simulated latency (ms; median and p99 of a lognormal)")
    g.add_argument(f"--{prefix}first-audio-ms", type=float, default=700.0,
                   help="first audio delta after the end of speech arrived (default 700)")
    g.add_argument(f"--{prefix}first-audio-p99-ms", type=float, default=None,
                   help="p99 of first audio (default: 2x the median; equal = constant)")
    g.add_argument(f"--{prefix}vad-delay-ms", type=float, default=0.0,
                   help="extra delay of speech_stopped after the silence window (default 0)")
    g.add_argument(f"--{prefix}handshake-ms", type=float, default=0.0,
                   help="delay before accepting the WebSocket upgrade (default 0)")
    g.add_argument(f"--{prefix}response-audio-ms", type=int, default=1500,
                   help="audio per response (default 1500)")
    g.add_argument(f"--{prefix}delta-ms", type=int, default=100, help="audio per delta (default 100)")
    g.add_argument(f"--{prefix}realtime-factor", type=float, default=2.0,
                   help="output audio is produced at this multiple of real time (default 2)")
    g.add_argument(f"--{prefix}session-max-s", type=float, default=3600.0,
                   help="session expiry (default 3600)")
    g.add_argument(f"--{prefix}knee-sessions", type=int, default=0,
                   help="capacity: above this many concurrent sessions first audio slows down "
                        "(default 0: no limit)")
    g.add_argument(f"--{prefix}over-knee-ms", type=float, default=0.0,
                   help="first-audio delay added per concurrent session above the knee")


PROFILE_FLAGS = ("first_audio_ms", "first_audio_p99_ms", "vad_delay_ms", "handshake_ms",
                  "response_audio_ms", "delta_ms", "realtime_factor", "session_max_s",
                  "knee_sessions", "over_knee_ms")


def profile_from(ns: argparse.Namespace, prefix: str = "") -> Profile:
    g = {k: getattr(ns, prefix + k) for k in PROFILE_FLAGS}
    p99 = g["first_audio_p99_ms"]
    try:
        return Profile(
            first_audio=Dist(g["first_audio_ms"],
                             2 * g["first_audio_ms"] if p99 is None else p99),
            vad_delay=Dist(g["vad_delay_ms"]),
            handshake=Dist(g["handshake_ms"]),
            response_audio_ms=g["response_audio_ms"],
            delta_ms=g["delta_ms"],
            realtime_factor=g["realtime_factor"],
            session_max_s=g["session_max_s"],
            knee_sessions=g["knee_sessions"],
            per_session_over_knee_ms=g["over_knee_ms"],
        )
    except ValueError as exc:
        raise ConfigError(f"simulator profile: {exc}") from None


def profile_argv(ns: argparse.Namespace) -> list[str]:
    """The embedded simulator's flags, rebuilt from ``--sim-*`` options."""
    out: list[str] = []
    for k in PROFILE_FLAGS:
        value = getattr(ns, "sim_" + k)
        if value is not None:
            out += ["--" + k.replace("_", "-"), str(value)]
    return out


