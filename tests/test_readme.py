"""Every command block of README.md, run as written against the built-in simulator.

The README's promise is that each command block works when pasted. This module extracts the
```bash / ```sh / ```console blocks (and the GitHub Actions workflows in ```yaml blocks) and
runs each as its own test, in a scratch directory that holds a copy of ``workloads/`` (what the
repository root offers a command), with this virtual environment first on ``PATH`` (so
``rtbench`` is the package under test) and ``TMPDIR`` inside the scratch directory. With no
``--url`` or targets, every run goes to the embedded simulator.

A block is checked against what the README says it does (:data:`CHECKS`, keyed by a text only
that block contains); a block without a check of its own must exit 0 and leave every run it
made ``complete``, so blocks added later are run too. A block is left out, or run in part, only
by a marker on the line before it, visible in the README's source and listed in its
Development section: ``<!-- readme-test: skip (REASON) -->``, ``run-from "TEXT" (REASON)`` or
``workflow (REASON)``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from conftest import REPO

README = REPO / "README.md"
SHELL_LANGS = ("bash", "sh", "shell", "console")
MARKER_RE = re.compile(r"^<!--\s*readme-test:\s*(?P<kind>[a-z-]+)\s*(?P<arg>.*?)\s*-->\s*$")
FENCE_RE = re.compile(r"^(?P<indent>\s*)```(?P<lang>[A-Za-z0-9_-]*)\s*$")
#: Bound on one block: the capacity sweep runs five levels of ~15 s; a loaded machine is slower.
BLOCK_TIMEOUT_S = 540
VENV_BIN = Path(sys.executable).parent


@dataclass(frozen=True, slots=True)
class Block:
    """One fenced block of the README and the marker on the line before it, if any."""

    line: int                    # 1-based line of the opening fence
    lang: str
    text: str
    marker: str | None = None    # skip, run-from, workflow
    marker_arg: str = ""

    @property
    def kind(self) -> str | None:
        """``shell``, ``workflow`` or None (not a command: TOML, options, output)."""
        if self.lang in SHELL_LANGS:
            return "shell"
        if self.lang in ("yaml", "yml"):
            doc = yaml.safe_load(self.text)
            if isinstance(doc, dict) and "jobs" in doc:
                return "workflow"
        return None

    @property
    def id(self) -> str:
        first = next((ln for ln in self.text.splitlines()
                      if ln.strip() and not ln.lstrip().startswith("#")), "")
        first = first.lstrip("$ ").strip()
        return f"L{self.line}-" + re.sub(r"[^A-Za-z0-9]+", "-", first)[:40].strip("-")


def readme_blocks(text: str) -> list[Block]:
    """The fenced blocks of ``text``, each with the ``readme-test`` marker just above it."""
    lines = text.splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        m = FENCE_RE.match(lines[i])
        if m is None:
            i += 1
            continue
        start, body = i, []
        i += 1
        while i < len(lines) and lines[i].strip() != "```":
            body.append(lines[i][len(m.group("indent")):])
            i += 1
        marker = MARKER_RE.match(lines[start - 1]) if start > 0 else None
        blocks.append(Block(start + 1, m.group("lang"), "\n".join(body) + "\n",
                            marker.group("kind") if marker else None,
                            marker.group("arg") if marker else ""))
        i += 1
    return blocks


BLOCKS = [b for b in readme_blocks(README.read_text(encoding="utf-8")) if b.kind is not None]


# -- running a block -------------------------------------------------------------------------


@dataclass(slots=True)
class Ran:
    """What a block did: its exit code and output, and the directories it ran in."""

    code: int
    stdout: str
    stderr: str
    cwd: Path                    # the scratch checkout the block started in
    tmp: Path                    # its TMPDIR (where ``mktemp -d`` lands)
    steps: list[tuple[str, int]] = field(default_factory=list)   # a workflow's run: steps

    def explain(self) -> str:
        return f"exit {self.code}\n--- stdout\n{self.stdout[-4000:]}\n--- stderr\n{self.stderr[-4000:]}"

    def manifests(self) -> list[dict[str, Any]]:
        """Every run directory the block made, anywhere under its scratch directory."""
        return [json.loads(p.read_text()) | {"_dir": p.parent}
                for p in sorted(self.cwd.parent.rglob("manifest.json"))]


def scratch_checkout(tmp_path: Path) -> tuple[Path, Path, dict[str, str]]:
    """A directory standing in for the repository root, its TMPDIR, and the environment."""
    cwd, tmp = tmp_path / "checkout", tmp_path / "tmp"
    cwd.mkdir()
    tmp.mkdir()
    shutil.copytree(REPO / "workloads", cwd / "workloads")
    env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
           "TMPDIR": str(tmp)}
    return cwd, tmp, env


def shell_commands(block: Block) -> str:
    """The text bash runs: a console block's ``$ `` lines, a run-from block from its TEXT."""
    text = block.text
    if block.lang == "console":
        text = "\n".join(ln[2:] for ln in text.splitlines() if ln.startswith("$ ")) + "\n"
    if block.marker == "run-from":
        m = re.match(r'"([^"]+)"', block.marker_arg)
        assert m is not None, f"line {block.line}: run-from needs a quoted TEXT"
        assert text.count(m.group(1)) == 1, f"line {block.line}: {m.group(1)!r} not once in the block"
        text = text[text.index(m.group(1)):]
    return text


def bash(script: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """As GitHub Actions runs a step (``bash --noprofile --norc -eo pipefail``): a failing line
    fails the block, as it would stop a reader."""
    return subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
                          cwd=cwd, env=env, text=True, capture_output=True,
                          timeout=BLOCK_TIMEOUT_S)


def run_shell(block: Block, tmp_path: Path) -> Ran:
    cwd, tmp, env = scratch_checkout(tmp_path)
    proc = bash(shell_commands(block), cwd, env)
    return Ran(proc.returncode, proc.stdout, proc.stderr, cwd, tmp)


#: What the GitHub actions a workflow example uses do, as far as the test can stand in for
#: them: a function of (step, what ran so far) that returns what is wrong with the step's
#: inputs (None: nothing), e.g. a path to upload that the run did not write.
def _checkout(step: dict[str, Any], ran: Ran) -> str | None:
    return None   # the scratch checkout is the checked-out repository


def _setup_python(step: dict[str, Any], ran: Ran) -> str | None:
    """This test's interpreter; the workflow asks for at least the README's minimum."""
    wanted = str(step.get("with", {}).get("python-version", "3.11"))
    return None if tuple(map(int, wanted.split(".")[:2])) >= (3, 11) else f"python {wanted}"


def _download_artifact(step: dict[str, Any], ran: Ran) -> str | None:
    """The first run of the workflow: no baseline yet, which the step must tolerate."""
    return None if step.get("continue-on-error") is True else "fails when there is no artifact"


def _upload_artifact(step: dict[str, Any], ran: Ran) -> str | None:
    path = ran.cwd / step["with"]["path"]
    return None if path.is_dir() and any(path.iterdir()) else f"nothing to upload at {path}"


def _junit_report(step: dict[str, Any], ran: Ran) -> str | None:
    path = ran.cwd / step["with"]["report_paths"]
    if not path.is_file():
        return f"no JUnit file at {path}"
    return None if any(ET.parse(path).getroot().iter("testcase")) else f"no test case in {path}"


ACTIONS: dict[str, Callable[[dict[str, Any], Ran], str | None]] = {
    "actions/checkout": _checkout,
    "actions/setup-python": _setup_python,
    "actions/download-artifact": _download_artifact,
    "actions/upload-artifact": _upload_artifact,
    "mikepenz/action-junit-report": _junit_report,
}
#: The install step, done by .ci/run before the tests (the marker says so in the README).
INSTALLED = ("pip install .", "pip install -e .")


def run_workflow(block: Block, tmp_path: Path) -> Ran:
    """Each job's steps in order: ``run:`` steps in bash, ``uses:`` steps stood in for. A failed
    step fails the job and skips the steps after it but those marked ``if: always()``, as on
    GitHub."""
    cwd, tmp, env = scratch_checkout(tmp_path)
    ran = Ran(0, "", "", cwd, tmp)
    doc = yaml.safe_load(block.text)
    for job in doc["jobs"].values():
        for step in job["steps"]:
            if ran.code != 0 and step.get("if") != "always()":
                continue
            if "uses" in step:
                action = step["uses"].split("@")[0]
                assert action in ACTIONS, f"the README test does not know what {action} does"
                problem = ACTIONS[action](step, ran)
                if problem is not None:
                    ran.code = ran.code or 1
                    ran.stderr += f"\nstep {step.get('name', action)}: {problem}\n"
                continue
            if " ".join(step["run"].split()) in INSTALLED:
                continue
            proc = bash(step["run"], cwd, env)
            ran.stdout += proc.stdout
            ran.stderr += proc.stderr
            ran.steps.append((step.get("name", step["run"][:40]), proc.returncode))
            ran.code = ran.code or proc.returncode
    return ran


# -- what each block is documented to do -----------------------------------------------------


def _complete(ran: Ran, count: int | None = None) -> list[dict[str, Any]]:
    runs = ran.manifests()
    assert runs, "the block wrote no run directory\n" + ran.explain()
    assert all(m["status"] == "complete" for m in runs), [(m["_dir"], m["status"]) for m in runs]
    if count is not None:
        assert len(runs) == count, [m["_dir"] for m in runs]
    return runs


def check_main_job(ran: Ran) -> None:
    """Command 1: a table with one row, the simulator's 50 sessions; then the run directory."""
    assert ran.code == 0, ran.explain()
    (run,) = _complete(ran, 1)
    row = next(ln.split() for ln in ran.stdout.splitlines() if "sim-realtime" in ln)
    assert row[:3] == ["local", "sim-realtime", "50"], row
    results = re.search(r"^results: (results/\S+)$", ran.stdout, re.M)
    report = re.search(r"^report: (results/\S+/report\.html)$", ran.stdout, re.M)
    assert results is not None and report is not None, ran.explain()
    assert (ran.cwd / results.group(1)).resolve() == run["_dir"].resolve()
    assert (ran.cwd / report.group(1)).is_file()


def check_use_anywhere(ran: Ran) -> None:
    """Command 3: a run in an empty directory, an editable copy, a run on that copy."""
    assert ran.code == 0, ran.explain()
    (anywhere,) = [p.parent.parent for p in ran.tmp.rglob("mine/default.toml")]
    assert len(list((anywhere / "mine" / "audio").glob("*.wav"))) >= 1
    bundled, edited = sorted(_complete(ran, 2), key=lambda m: m["started_at"])
    assert bundled["_dir"].parent == edited["_dir"].parent == anywhere / "results"
    assert [t["sessions"] for t in bundled["targets"]] == [5]
    assert Path(bundled["scenario"]["source"]).parent.name == "workloads"   # the package's
    assert edited["scenario"]["source"] == "mine/default.toml"   # as given, from ``anywhere``


def check_capacity_search(ran: Ran) -> None:
    """Levels 10, 20, 40, 30, 25; the largest load keeping the budgets between 20 and 30 (a
    generator saturated by a busy machine stops the search earlier, and says so)."""
    assert ran.code == 0, ran.explain()
    lines = ran.stdout.splitlines()
    assert lines[0].startswith("sweep sessions=10: pass"), ran.explain()
    answer = re.fullmatch(r"largest load keeping the budgets: (\d+)(?: \(first failing level: "
                          r"(\d+)\))?(; stopped: .*)?", lines[-2])
    assert answer is not None, ran.explain()
    best, stopped = int(answer.group(1)), answer.group(3) or ""
    if "load generator saturated" not in stopped:
        assert 20 <= best <= 30 and answer.group(2) is not None, ran.explain()
    sweep_dir = ran.cwd / lines[-1].removeprefix("sweep: ")
    table = pd.read_csv(sweep_dir / "sweep.csv")
    assert list(table["level"][:3]) == [10, 20, 40] or stopped, table
    assert json.loads((sweep_dir / "sweep.json").read_text())["best"] == best


def check_probe_simulator(ran: Ran) -> None:
    """A line per rung; transcription fails while server_vad passes; exit 4."""
    assert ran.code == 4, ran.explain()
    lines = ran.stdout.splitlines()
    assert lines[0].startswith("probe local/sim-realtime (ws://127.0.0.1:"), ran.explain()
    rungs = [ln.split()[:2] for ln in lines[1:-1]]
    assert rungs == [["connect", "pass"], ["text", "pass"], ["audio_out", "pass"],
                     ["server_vad", "pass"], ["transcription", "FAIL"]], ran.explain()
    assert re.search(r"response:server_error x1 \(sess_\w+\)$", lines[-2]), lines[-2]
    assert lines[-1].startswith("'transcription' (+ input audio transcription) fails while "
                                "'server_vad' passes: "), lines[-1]


def check_trace(ran: Ran) -> None:
    """results/traced/trace.json: one track per session, two turns on each."""
    assert ran.code == 0, ran.explain()
    (run,) = _complete(ran, 1)
    assert run["_dir"] == ran.cwd / "results" / "traced"
    trace = json.loads((run["_dir"] / "trace.json").read_text())
    tracks = {e["tid"] for e in trace["traceEvents"] if e["name"] == "thread_name" and e["tid"]}
    speech = [e["tid"] for e in trace["traceEvents"] if e["name"] == "speech"]
    assert len(tracks) == 4 and sorted(set(speech)) == sorted(tracks) and len(speech) == 8


def check_json_out(ran: Ran) -> None:
    """samples.json in k6's JSON lines: a Metric before each metric's first Point."""
    assert ran.code == 0, ran.explain()
    _complete(ran, 1)
    declared: set[str] = set()
    points: dict[str, int] = {}
    for line in (ran.cwd / "samples.json").read_text().splitlines():
        doc = json.loads(line)
        if doc["type"] == "Metric":
            declared.add(doc["metric"])
        else:
            assert doc["type"] == "Point" and doc["metric"] in declared, doc
            points[doc["metric"]] = points.get(doc["metric"], 0) + 1
    assert points["ttfa_ms"] == 4 and points["turns"] == 4 and points["sessions"] == 2, points


#: Budgets on the load generator itself: on a machine too busy for it to keep its schedule
#: they fail, correctly, whatever the target does.
GENERATOR_BUDGETS = ("send_lateness.", "loop_lag.")


def skip_if_only_the_generator_failed(ran: Ran, junit: Path) -> None:
    """The documented result (every check passes) holds on a machine that keeps the generator
    on schedule, as the README says; when the only failures are the generator's own budgets,
    rtbench did its job (exit 4: its figures were not to be trusted) and the example's claim
    cannot be checked here: skip, naming what the generator measured."""
    if ran.code != 4 or not junit.is_file():
        return
    failed: dict[str, str] = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        failure = case.find("failure")
        if failure is not None:
            failed[case.get("name", "")] = failure.get("message", "")
    if failed and all(name.startswith(GENERATOR_BUDGETS) for name in failed):
        pytest.skip("the machine was too busy for the load generator to keep its schedule: "
                    + "; ".join(f"{name}: {msg}" for name, msg in failed.items()))


def check_release_gate(ran: Ran) -> None:
    """Against the simulator every check passes, the eastus2 budget included; the artifact and
    report steps find their files."""
    (run,) = _complete(ran, 1)
    skip_if_only_the_generator_failed(ran, run["_dir"] / "junit.xml")
    assert ran.code == 0 and ran.steps == [("Benchmark and gate", 0)], ran.explain()
    assert "rtbench: aborting" not in ran.stderr
    assert run["_dir"] == ran.cwd / "results" / "ci"
    assert [t["region"] for t in run["targets"]] == ["eastus2"]
    cases = {c.get("name"): c for c in ET.parse(run["_dir"] / "junit.xml").getroot().iter("testcase")}
    assert "ttfa.p50{region=eastus2} < 1s" in cases and "run completed with turns measured" in cases
    assert all(c.find("failure") is None for c in cases.values()), ran.explain()
    assert "matched no data" not in ran.stdout
    assert (run["_dir"] / "report.html").is_file()


#: A text only the block contains -> what the README says the block does.
CHECKS: dict[str, Callable[[Ran], None]] = {
    "rtbench --sessions 50\n": check_main_job,
    "rtbench init mine": check_use_anywhere,
    "rtbench sweep --budget": check_capacity_search,
    "--sim-fault server_error_on_transcription=1": check_probe_simulator,
    "--run-id traced --trace": check_trace,
    "--out json=samples.json": check_json_out,
    "name: realtime-latency-gate": check_release_gate,
}


def check_default(ran: Ran) -> None:
    """A block the README gives no specific result for: it runs, and its runs complete."""
    assert ran.code == 0, ran.explain()
    for m in ran.manifests():
        assert m["status"] == "complete", (m["_dir"], m["status"])


def checks_of(block: Block) -> Callable[[Ran], None]:
    found = [check for key, check in CHECKS.items() if key in block.text]
    assert len(found) <= 1, f"line {block.line}: more than one check matches"
    return found[0] if found else check_default


# -- the tests -------------------------------------------------------------------------------


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.timeout(BLOCK_TIMEOUT_S + 60)
@pytest.mark.parametrize("block", BLOCKS, ids=[b.id for b in BLOCKS])
def test_readme_block_runs_as_documented(block: Block, tmp_path: Path) -> None:
    if block.marker == "skip":
        pytest.skip(f"README line {block.line}: {block.marker_arg.strip('()')}")
    check = checks_of(block)
    ran = run_workflow(block, tmp_path) if block.kind == "workflow" else run_shell(block, tmp_path)
    check(ran)


def test_every_marker_is_known_and_sits_on_a_command_block() -> None:
    """A marker that names an unknown kind, gives no reason, or no longer stands above a
    command block (the block moved or changed language) must not silently excuse anything."""
    lines = README.read_text(encoding="utf-8").splitlines()
    blocks = {b.line: b for b in readme_blocks("\n".join(lines))}
    markers = [(i + 1, m) for i, ln in enumerate(lines) if (m := MARKER_RE.match(ln))]
    assert markers, "the README has no readme-test markers: the parser lost them"
    for line, m in markers:
        assert m.group("kind") in ("skip", "run-from", "workflow"), (line, m.group(0))
        assert re.search(r"\(.+\)$", m.group("arg")), f"line {line}: say why, in parentheses"
        block = blocks.get(line + 1)
        assert block is not None and block.kind is not None, f"line {line}: marker above no command"
        if m.group("kind") == "workflow":
            assert block.kind == "workflow", f"line {line}"
    for block in BLOCKS:
        if block.kind == "workflow":
            assert block.marker in ("workflow", "skip"), f"line {block.line}: unmarked workflow"


def test_every_check_has_its_block() -> None:
    """Each documented result belongs to exactly one block, run (not skipped)."""
    for key in CHECKS:
        holders = [b for b in BLOCKS if key in b.text]
        assert len(holders) == 1, (key, [b.line for b in holders])
        assert holders[0].marker != "skip", key


def test_blocks_run_the_package_under_test() -> None:
    """``rtbench`` on the blocks' PATH is this environment's, whose ``rtbench`` is this
    checkout's package."""
    found = shutil.which("rtbench", path=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    assert found is not None and Path(found).parent == VENV_BIN
    proc = subprocess.run([str(VENV_BIN / "python"), "-c", "import rtbench; print(rtbench.__file__)"],
                          cwd=tempfile.gettempdir(), capture_output=True, text=True, check=True)
    assert Path(proc.stdout.strip()).resolve().is_relative_to(REPO / "bench")


def test_the_block_parser() -> None:
    text = ("intro\n<!-- readme-test: skip (needs a key) -->\n```bash\nrtbench probe --x\n```\n"
            "```toml\n[a]\n```\n  ```console\n  $ rtbench --sessions 2\n  output\n  ```\n")
    skip, toml, console = readme_blocks(text)
    assert (skip.line, skip.lang, skip.marker, skip.marker_arg) == (3, "bash", "skip", "(needs a key)")
    assert skip.text == "rtbench probe --x\n" and skip.kind == "shell"
    assert toml.kind is None and toml.marker is None
    assert console.kind == "shell" and shell_commands(console) == "rtbench --sessions 2\n"
    assert console.id == "L9-rtbench-sessions-2"
