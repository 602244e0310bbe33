"""The shared pacer: absolute per-session schedules, catch-up of late ticks, lateness recorded."""

from __future__ import annotations

import time

import trio
import trio.testing

from rtbench.client.pacer import SLICE_S, Pacer, Tick, spread_phase
from rtbench.client.session import ClientSession
from rtbench.client.workload import load_utterance, plan_chunks
from rtbench.config.scenario import Scenario, Target
from rtbench.metrics.recorder import BUNCHED_CHUNKS, SEND_LATENESS, Recorder
from rtbench.ws.frame import OutFrame


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_each_stream_keeps_its_own_absolute_schedule() -> None:
    clock = Clock()
    pacer = Pacer(clock)
    seen: dict[str, list[float]] = {"a": [], "b": []}
    pacer.add(lambda d: seen["a"].append(d) is None, 0.020, t0=0.0)
    pacer.add(lambda d: seen["b"].append(d) is None, 0.100, t0=0.007)
    for step in range(1, 251):  # 1 ms steps for 250 ms
        clock.now = step / 1000
        pacer.serve_due()
    assert [round(d, 9) for d in seen["a"]] == [round(0.020 * (k + 1), 9) for k in range(12)]
    assert [round(d, 9) for d in seen["b"]] == [0.107, 0.207]


def test_a_phase_moves_the_schedule_to_its_own_instant_of_the_period() -> None:
    clock = Clock()
    clock.now = 1.003
    pacer = Pacer(clock)
    seen: list[float] = []
    paced = pacer.add(lambda d: seen.append(d) is None, 0.020, phase=0.5)
    assert 1.003 <= paced.t0 < 1.023 and round(paced.t0 % 0.020, 9) == 0.010
    clock.now = 1.1
    pacer.serve_due()
    assert [round(d, 9) for d in seen] == [1.03, 1.05, 1.07, 1.09]


def test_spread_phases_cover_the_period_evenly() -> None:
    for n in (2, 10, 50, 333):
        phases = sorted(spread_phase(i) for i in range(n))
        gaps = [b - a for a, b in zip(phases, [*phases[1:], phases[0] + 1.0], strict=True)]
        assert max(gaps) < 3.0 / n  # no burst: the widest gap is within a small factor of 1/n
        assert min(gaps) > 0.3 / n


def test_nothing_is_sent_before_its_deadline() -> None:
    clock = Clock()
    pacer = Pacer(clock)
    seen: list[float] = []
    pacer.add(lambda d: seen.append(d) is None, 0.020, t0=0.0)
    clock.now = 0.0199999
    assert pacer.serve_due() == 0 and seen == []
    clock.now = 0.020
    assert pacer.serve_due() == 1 and seen == [0.020]


def test_a_late_tick_sends_every_missed_chunk_at_once_with_its_own_deadline() -> None:
    clock = Clock()
    pacer = Pacer(clock)
    seen: list[float] = []
    pacer.add(lambda d: seen.append(d) is None, 0.020, t0=0.0)
    clock.now = 0.071  # the loop woke 51 ms late: chunks due at 20, 40, 60 ms are all owed
    assert pacer.serve_due() == 3
    assert [round(d, 9) for d in seen] == [0.020, 0.040, 0.060]
    clock.now = 0.080  # and the schedule did not shift
    assert pacer.serve_due() == 1 and round(seen[-1], 9) == 0.080


def test_stop_and_false_end_the_ticks() -> None:
    clock = Clock()
    pacer = Pacer(clock)
    calls = {"a": 0, "b": 0}

    def a(d: float) -> bool:
        calls["a"] += 1
        return False

    def b(d: float) -> bool:
        calls["b"] += 1
        return True

    pacer.add(a, 0.010, t0=0.0)
    handle = pacer.add(b, 0.010, t0=0.0)
    clock.now = 0.010
    pacer.serve_due()
    handle.stop()
    clock.now = 0.100
    pacer.serve_due()
    assert calls == {"a": 1, "b": 1}


async def test_run_wakes_at_each_deadline_and_for_newcomers(
        autojump_clock: trio.testing.MockClock) -> None:
    pacer = Pacer()
    stamps: list[tuple[float, float]] = []

    def tick(deadline: float) -> bool:
        stamps.append((deadline, trio.current_time()))
        return len(stamps) < 6

    async with trio.open_nursery() as nursery:
        nursery.start_soon(pacer.run)
        await trio.sleep(1.0)  # the pacer sleeps with nothing to do
        t0 = trio.current_time()
        pacer.add(tick, 0.020)
        await trio.sleep(1.0)
        nursery.cancel_scope.cancel()
    assert [round(d - t0, 9) for d, _ in stamps] == [0.02, 0.04, 0.06, 0.08, 0.1, 0.12]
    assert all(now == deadline for deadline, now in stamps)


class FakeWs:
    """Completes every send at the time the test says."""

    def __init__(self) -> None:
        self.t_complete = 0.0
        self.sent: list[OutFrame] = []

    def send_frame(self, frame: OutFrame, on_sent: object = None) -> None:
        self.sent.append(frame)
        if callable(on_sent):
            on_sent(self.t_complete)


class Sink:
    def __init__(self) -> None:
        self.recorder = Recorder()

    def turn(self, record: object) -> None: ...

    def error(self, record: object) -> None: ...

    def session(self, record: object) -> None: ...


def test_session_records_lateness_and_counts_bunched_chunks(scenario: Scenario) -> None:
    plan = plan_chunks(load_utterance(scenario.audio_dir / "en_timer.wav"), 20)
    sink = Sink()
    session = ClientSession(0, Target("t", "ws://127.0.0.1:1/v1/realtime?model=m"), scenario,
                            [plan], "", sink, 0.0, clock=time.monotonic)  # type: ignore[arg-type]
    turn = session.begin_turn(0)
    ws = FakeWs()
    late = {0: 0.0005, 1: 0.003, 2: 0.025, 3: 0.070}  # seconds after each deadline
    for k, extra in late.items():
        deadline = 1.0 + 0.020 * k
        ws.t_complete = deadline + extra
        assert session._send_due(ws, deadline)  # type: ignore[arg-type]
    series = sink.recorder.series("t", SEND_LATENESS)
    assert series.histogram.get_total_count() == 4
    assert abs(series.histogram.get_max_value() / 1000 - 70.0) < 0.1
    assert sink.recorder.counters[BUNCHED_CHUNKS] == 2   # 25 ms and 70 ms > one 20 ms chunk
    assert abs(turn.lateness_ms - 70.0) < 1e-6
    assert [f.text for f in ws.sent] == list(plan.frames[:4])


def test_the_eos_mark_gets_the_send_completion_time(scenario: Scenario) -> None:
    plan = plan_chunks(load_utterance(scenario.audio_dir / "en_timer.wav"), 20)
    session = ClientSession(0, Target("t", "ws://127.0.0.1:1/v1/realtime?model=m"), scenario,
                            [plan], "", Sink(), 0.0, clock=time.monotonic)  # type: ignore[arg-type]
    turn = session.begin_turn(0)
    ws = FakeWs()
    for k in range(plan.eos_chunk + 1):
        ws.t_complete = 2.0 + 0.020 * k + 0.001
        session._send_due(ws, 2.0 + 0.020 * k)  # type: ignore[arg-type]
    assert turn.tracker.t_eos == 2.0 + 0.020 * plan.eos_chunk + 0.001


def test_one_serve_stops_after_its_time_slice_and_says_more_are_due() -> None:
    """A step of the pacer holds the loop for every reader: slow ticks (a slow CPU) end a
    slice early, and the next serve goes on where it stopped, nothing skipped."""
    clock = Clock()
    pacer = Pacer(clock)
    seen: list[int] = []

    def slow(i: int) -> Tick:
        def tick(deadline: float) -> bool:
            time.sleep(SLICE_S / 4)   # at most four of these fill a slice
            seen.append(i)
            return False
        return tick

    for i in range(40):
        pacer.add(slow(i), 0.020, t0=0.0)
    clock.now = 0.020
    first = pacer.serve_due()
    assert pacer.more_due and 1 <= first < 40     # stopped at the first chunk past its slice
    while pacer.more_due:
        pacer.serve_due()
    assert sorted(seen) == list(range(40)) and len(seen) == 40
