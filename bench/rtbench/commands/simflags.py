"""Simulator flags, shared by ``rtbench serve`` and the embedded simulator of ``run``.

``serve`` takes them bare (``--first-audio-ms``), ``run`` with a ``sim-`` prefix and forwards
the ones given to its child ``rtbench serve`` (:func:`sim_argv`). Precedence: built-in defaults,
then the profile file (``--profile``, or a ``[profile]`` table in the fault-plan file), then
explicit flags.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..config.scenario import ConfigError
from ..sim import Dist, FaultPlan, FaultPlanError, Profile
from ..sim.faults import load_document, merge, plan_from_document, rule_from_flag
from ..sim.profile import ProfileError, profile_from_document
from .argtypes import MILLISECONDS, SECONDS

#: Latency/shape flags: dest -> (type, help). Defaults are None so that "not given" is visible.
PROFILE_FLAGS: dict[str, tuple[Callable[[str], Any], str]] = {
    "first_audio_ms": (MILLISECONDS, "first audio delta after the end of speech arrived (default 700)"),
    "first_audio_p99_ms": (MILLISECONDS, "p99 of first audio (default: 2x the median; equal = constant)"),
    "vad_delay_ms": (MILLISECONDS, "extra delay of speech_stopped after the silence window (default 0)"),
    "handshake_ms": (MILLISECONDS, "delay before accepting the WebSocket upgrade (default 0)"),
    "response_audio_ms": (int, "audio per response (default 1500)"),
    "delta_ms": (int, "audio per delta (default 100)"),
    "realtime_factor": (float, "output audio is produced at this multiple of real time "
                               "(default 2)"),
    "session_max_s": (SECONDS, "session expiry (default 3600)"),
    "knee_sessions": (int, "capacity knee: concurrent sessions before first audio slows "
                           "(default 0 = none)"),
    "per_session_over_knee_ms": (MILLISECONDS, "first-audio delay added per session above the knee "
                                        "(default 0)"),
    "silence_pad_ms": (int, "leading silence in each response's audio (default 0)"),
    "preamble_ms": (int, "audio of a preamble message item before the answer item, as reasoning "
                         "models speak (default 0 = none)"),
    "preamble_probability": (float, "share of responses with a preamble (default 1)"),
    "answer_delay_ms": (MILLISECONDS, "the answer's first audio after the preamble has played "
                                      "(default 0)"),
}
#: Files and fault flags, forwarded the same way.
FILE_FLAGS: dict[str, tuple[type, str]] = {
    "profile": (Path, "TOML latency profile: [profile] or [profiles.<name>] tables"),
    "profile_name": (str, "which [profiles.<name>] of --profile to use"),
    "faults": (Path, "TOML fault plan ([[fault]] tables, optional seed and [profile])"),
    "stats_file": (Path, "write the simulator's counts (JSON) here, every second and at exit"),
}


def add_profile_args(p: argparse.ArgumentParser, prefix: str = "") -> None:
    g = p.add_argument_group("simulated latency (ms; median and p99 of a lognormal)")
    for dest, (typ, text) in PROFILE_FLAGS.items():
        g.add_argument(f"--{prefix}{dest.replace('_', '-')}", dest=prefix.replace("-", "_") + dest,
                       type=typ, default=None, help=text)
    f = p.add_argument_group("simulator profile file, faults and stats")
    for dest, (typ, text) in FILE_FLAGS.items():
        f.add_argument(f"--{prefix}{dest.replace('_', '-')}", dest=prefix.replace("-", "_") + dest,
                       type=typ, default=None, help=text)
    f.add_argument(f"--{prefix}fault", dest=prefix.replace("-", "_") + "fault", action="append",
                   default=None, metavar="KIND=SEL",
                   help="inject a fault: KIND=PROBABILITY, KIND=every:N or KIND=sessions:A+B, "
                        "then optional ,param=value (repeatable)")
    if prefix:  # the embedded simulator; ``serve`` has its own TLS flags (certificate files)
        f.add_argument(f"--{prefix}tls", dest=prefix.replace("-", "_") + "tls",
                       action="store_true",
                       help="the embedded simulator serves wss:// with a self-signed "
                            "certificate, which the client trusts: measures the TLS path")


def _value(ns: argparse.Namespace, prefix: str, dest: str) -> Any:
    return getattr(ns, prefix + dest)


def _file_profile(ns: argparse.Namespace, prefix: str, fault_doc: dict[str, Any] | None
                  ) -> Profile:
    path = _value(ns, prefix, "profile")
    name = _value(ns, prefix, "profile_name")
    try:
        if path is not None:
            return profile_from_document(load_document(path), str(path), name)
        if name is not None:
            raise ConfigError("--profile-name needs --profile FILE")
        if fault_doc is not None and "profile" in fault_doc:
            return profile_from_document({"profile": fault_doc["profile"]},
                                         str(_value(ns, prefix, "faults")))
    except (ProfileError, FaultPlanError) as exc:
        raise ConfigError(str(exc)) from None
    return Profile()


def simulator_from(ns: argparse.Namespace, prefix: str = "") -> tuple[Profile, FaultPlan]:
    """The profile and fault plan the flags describe (files first, flags over them)."""
    faults_path = _value(ns, prefix, "faults")
    try:
        doc = load_document(faults_path) if faults_path is not None else None
        plan = plan_from_document(doc, str(faults_path)) if doc is not None else FaultPlan()
        plan = merge(plan, [rule_from_flag(t) for t in _value(ns, prefix, "fault") or ()])
    except FaultPlanError as exc:
        raise ConfigError(str(exc)) from None
    base = _file_profile(ns, prefix, doc)
    g = {k: _value(ns, prefix, k) for k in PROFILE_FLAGS}
    changes: dict[str, Any] = {}
    if g["first_audio_ms"] is not None or g["first_audio_p99_ms"] is not None:
        median = g["first_audio_ms"] if g["first_audio_ms"] is not None else \
            base.first_audio.median_ms
        p99 = g["first_audio_p99_ms"] if g["first_audio_p99_ms"] is not None else 2 * median
        changes["first_audio"] = (median, p99)
    for key, attr in (("vad_delay_ms", "vad_delay"), ("handshake_ms", "handshake"),
                      ("answer_delay_ms", "answer_delay")):
        if g[key] is not None:
            changes[attr] = (g[key], None)
    for key in ("response_audio_ms", "delta_ms", "realtime_factor", "session_max_s",
                "knee_sessions", "per_session_over_knee_ms", "silence_pad_ms", "preamble_ms",
                "preamble_probability"):
        if g[key] is not None:
            changes[key] = g[key]
    try:
        for attr in ("first_audio", "vad_delay", "handshake", "answer_delay"):
            if attr in changes:
                changes[attr] = Dist(*changes[attr])
        return replace(base, **changes), plan
    except ValueError as exc:
        raise ConfigError(f"simulator profile: {exc}") from None


def describe_latency(profile: Profile) -> tuple[tuple[str, str], ...]:
    """The profile's timing as (name, text) pairs, e.g. ``("first_audio_ms", "700 (p99 1400)")``:
    what a report shows of the simulator a run measured."""
    def dist(d: Dist) -> str:
        same = d.p99_ms is None or d.p99_ms == d.median_ms
        return f"{d.median_ms:g}" if same else f"{d.median_ms:g} (p99 {d.p99_ms:g})"

    out = [("handshake_ms", dist(profile.handshake)), ("vad_delay_ms", dist(profile.vad_delay)),
           ("first_audio_ms", dist(profile.first_audio)),
           ("transcription_ms", dist(profile.transcription_delay)),
           ("response_audio_ms", str(profile.response_audio_ms)),
           ("delta_ms", str(profile.delta_ms)), ("realtime_factor", f"{profile.realtime_factor:g}")]
    if profile.knee_sessions:
        out += [("knee_sessions", str(profile.knee_sessions)),
                ("per_session_over_knee_ms", f"{profile.per_session_over_knee_ms:g}")]
    if profile.silence_pad_ms or profile.preamble_ms:
        out += [("silence_pad_ms", str(profile.silence_pad_ms)),
                ("preamble_ms", f"{profile.preamble_ms} (p {profile.preamble_probability:g})"),
                ("answer_delay_ms", dist(profile.answer_delay))]
    out.append(("effort_delay_ms", ", ".join(f"{effort} {ms:g}"
                                             for effort, ms in profile.effort_delay_ms.items())))
    return tuple(out)


def sim_argv(ns: argparse.Namespace, prefix: str = "sim_") -> list[str]:
    """The embedded simulator's flags, rebuilt from the ``--sim-*`` options that were given."""
    out: list[str] = []
    for k in (*PROFILE_FLAGS, *FILE_FLAGS):
        value = getattr(ns, prefix + k)
        if isinstance(value, Path):
            value = value.resolve()
        if value is not None:
            out += ["--" + k.replace("_", "-"), str(value)]
    for text in getattr(ns, prefix + "fault") or ():
        out += ["--fault", text]
    return out
