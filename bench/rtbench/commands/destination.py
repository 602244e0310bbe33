"""Where sessions go: real targets (a targets file, a one-off target, a raw ``--url``) or the
embedded simulator, decided once from the flags as a :data:`Destination`."""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ..config.scenario import Target
from ..orchestrate.execute import embedded_simulator
from ..protocol import Dialect
from ..protocol.models import SIMULATOR_LABEL, deprecation
from .serve import check_writable
from .simflags import add_profile_args, describe_latency, sim_argv, simulator_from
from .targetflags import add_target_args, resolve_targets, url_proxy


@dataclass(frozen=True, slots=True)
class Embedded:
    """The simulator ``rtbench serve`` a run starts as its target when given none."""

    argv: tuple[str, ...] = ()    # the simulator's flags (latency profile, faults, stats file)
    dialect: Dialect = Dialect.GA
    model: str = SIMULATOR_LABEL
    name: str | None = None
    region: str | None = None
    tls: bool = False             # serve wss:// with a self-signed CA the client trusts
    proxy: str | None = None      # --proxy (None: the environment's, see config.proxies)
    #: The resolved latency profile (defaults, file, flags), as the manifest and report show it.
    latency: tuple[tuple[str, str], ...] = ()

    def target(self, base_url: str, ca_file: str | None = None) -> Target:
        path = ("/openai/realtime?api-version=2025-04-01-preview&deployment=" + self.model
                if self.dialect is Dialect.BETA else "/v1/realtime?model=" + self.model)
        region = self.region or "local"
        return Target(name=self.name or f"{region}/{self.model}", url=base_url + path,
                      dialect=self.dialect, region=region, model=self.model,
                      ca_file=ca_file, proxy=url_proxy(base_url, self.proxy))


#: Resolved real targets, or the embedded simulator to start.
Destination = tuple[Target, ...] | Embedded


def add_destination_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", default=None, help="target WebSocket URL; none = the built-in simulator")
    p.add_argument("--dialect", choices=[d.value for d in Dialect], default="ga",
                   help="event names --url (or the embedded simulator) speaks: ga (the GA "
                        "Realtime API, default) or beta (OpenAI beta / Azure preview)")
    p.add_argument("--name", default=None, help="target name (default: region/model)")
    p.add_argument("--region", default=None,
                   help="region label of --url or the embedded simulator (default 'local')")
    p.add_argument("--model", default=None, help="model/deployment label")
    add_target_args(p)
    add_profile_args(p, "sim-")


def destination_from(ns: argparse.Namespace) -> Destination:
    """The targets the flags name, resolved; or the embedded simulator, its flags checked."""
    targets = resolve_targets(ns)
    if targets is not None:
        for target in targets:
            retiring = deprecation(target.model)
            if retiring is not None:
                print(f"rtbench: warning: target {target.name}: {retiring}", file=sys.stderr)
        return tuple(targets)
    profile, _faults = simulator_from(ns, "sim_")  # fails here, in one line, on a bad file
    if ns.sim_stats_file is not None:
        check_writable(ns.sim_stats_file, "--sim-stats-file")
    return Embedded(tuple(sim_argv(ns)), Dialect(ns.dialect), ns.model or SIMULATOR_LABEL,
                    ns.name, ns.region, ns.sim_tls, ns.proxy, describe_latency(profile))


@contextmanager
def open_destination(dest: Destination) -> Iterator[list[Target]]:
    """The run's targets; an embedded simulator is started here (and stopped on exit)."""
    if not isinstance(dest, Embedded):
        yield list(dest)
        return
    with tempfile.TemporaryDirectory(prefix="rtbench-sim-") as folder:
        ca_file = str(Path(folder) / "ca.pem") if dest.tls else None
        with embedded_simulator(list(dest.argv), ca_out=ca_file) as base:
            yield [dest.target(base, ca_file)]
