"""Which part of a run one worker owns: a shard is ``index`` of ``count`` (pure, no I/O).

The split is a stride: shard *i* owns closed-model slot *s* (or open-model arrival *k*) when
``s % count == i``. Striding, unlike contiguous blocks, keeps every slot's target
(``RunPlan.target_of(slot)``), ramp-up offset and arrival time exactly what one process would
use, divides slots as evenly as possible (shares differ by at most one), and gives each shard
every N-th arrival so the total schedule is unchanged. Session indices follow the same stride
(``local * count + index``), so they are unique across shards without coordination, even when
a shard's number of sessions is not known in advance (soak, open model, retries), and
``session_idx % count`` names the worker of any row.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Shard:
    index: int = 0
    count: int = 1

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.index < self.count:
            raise ValueError(f"shard {self.index} of {self.count} does not exist")

    def owns(self, n: int) -> bool:
        """Does this shard run closed-model slot / open-model arrival ``n``?"""
        return n % self.count == self.index

    def session_idx(self, local: int) -> int:
        """Run-wide session index of this shard's ``local``-th session attempt."""
        return local * self.count + self.index

    def share(self, total: int) -> int:
        """This shard's part of ``total`` (the first ``total % count`` shards get one more);
        for the closed model it equals the number of slots :meth:`owns` picks."""
        return total // self.count + (1 if self.index < total % self.count else 0)


def shards(count: int) -> list[Shard]:
    return [Shard(i, count) for i in range(count)]
