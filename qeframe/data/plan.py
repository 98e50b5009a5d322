"""Sharded generation: the blocks of a dataset divided among ``N`` independent builds.

:class:`ShardPlan` is the rule that gives each generation block (:mod:`qeframe.data.build`) to one of
``N`` shards (also in ``docs/scaling.md``), :class:`ShardSchedule` the deterministic block sequence of
one shard, and :func:`iter_shard_blocks` computes it. :mod:`qeframe.data.shards` stores a shard's
blocks; :mod:`qeframe.data.merge` merges the shards into a store equal to a single build's.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from functools import cached_property

from qeframe.data.build import (
    MAX_OVERSAMPLING,
    Block,
    GenerationContext,
    block_rows,
    planned_block_count,
    worker_block,
)
from qeframe.errors import QeframeError


@dataclass(frozen=True)
class ShardPlan:
    """How the generation blocks of a dataset are divided among ``n_shards`` independent builds.

    ``counts`` are the entries' wanted states, ``block_size`` is ``B``; entry ``e`` has
    ``P_e`` *planned* blocks (:func:`planned_block_count`, :func:`block_rows`) and, when the labeler drops
    samples, *extra* blocks ``P_e, P_e + 1, ...``. The rule (shards are numbered ``0 .. N-1``):

    1. **Planned blocks, round robin over the whole dataset.** The planned blocks in dataset order,
       ``(0, 0), (0, 1), ..., (0, P_0 - 1), (1, 0), ...``, get global indices ``g = 0, 1, 2, ...``;
       planned block ``g`` belongs to shard ``g mod N``. An entry's planned block ``b`` therefore has
       global index ``off_e + b`` with ``off_e = P_0 + ... + P_{e-1}``.
    2. **Extra blocks go to the entry's owners.** The ``m_e = min(N, P_e)`` shards that hold planned
       blocks ``0 .. m_e - 1`` of entry ``e`` own it; extra block ``P_e + j`` belongs to the owner of
       planned block ``j mod m_e`` (so each owner has a stride ``m_e`` class of the extras, and only
       shards that have seen the entry's keep rate compute its extras).
    3. **How many extras a shard computes** (deterministic, from its own blocks only): in block order,
       a shard first computes all its planned blocks of entry ``e``. If none of them dropped a state,
       it computes no extras of ``e``. Otherwise it walks its extra blocks ``P_e + j`` in order and
       computes each while ``j < E_hi`` and its own states generated for ``e`` stay within
       ``(MAX_OVERSAMPLING * count_e + 4 B) / m_e + B``, where ``K`` and ``G`` are the states it kept
       and generated for ``e`` so far, ``r_lo = max(K - 3 sqrt(K), 1) / G`` a pessimistic keep
       rate, and ``E_hi = ceil(count_e (1 - r_lo) / (r_lo B))`` the extras the entry would need
       at that rate (:meth:`extras_wanted`).

    The union of the shards is thus every planned block plus a prefix-like set of extras; the merge
    (:func:`qeframe.data.merge.merge_shards`) consumes blocks ``0, 1, 2, ...`` of every entry exactly as
    a single build does and truncates at ``count_e``, computing itself only extra blocks that no
    shard holds (rare: when the shards' estimates fell short). Every block's content depends only on
    ``(seed, e, b, size)``, so the merged rows are bit-identical to a single build's.
    """

    counts: tuple[int, ...]
    block_size: int
    n_shards: int

    def __post_init__(self) -> None:
        if self.n_shards < 1:
            raise QeframeError(f"the number of shards must be at least 1, got {self.n_shards}")
        if self.block_size < 1 or any(c < 1 for c in self.counts):
            raise QeframeError("a shard plan needs a positive block size and positive counts")

    def planned(self, entry: int) -> int:
        """``P_e``: the number of planned blocks of ``entry`` (:func:`planned_block_count`)."""
        return planned_block_count(self.counts[entry], self.block_size)

    @cached_property
    def _offsets(self) -> list[int]:
        return [0, *itertools.accumulate(self.planned(e) for e in range(len(self.counts)))]

    def offset(self, entry: int) -> int:
        """Global index of planned block 0 of ``entry``: ``P_0 + ... + P_{entry-1}``."""
        return self._offsets[entry]

    def owners(self, entry: int) -> int:
        """``m_e = min(N, P_e)``: the number of shards that own ``entry``."""
        return min(self.n_shards, self.planned(entry))

    def position(self, shard: int, entry: int) -> int | None:
        """Which of ``entry``'s first ``m_e`` planned blocks ``shard`` holds (its extra class), or ``None``."""
        p = (shard - self.offset(entry)) % self.n_shards
        return p if p < self.owners(entry) else None

    def owner(self, entry: int, block: int) -> int:
        """The shard that computes block ``block`` (planned or extra) of ``entry``."""
        planned = self.planned(entry)
        b = block if block < planned else (block - planned) % self.owners(entry)
        return (self.offset(entry) + b) % self.n_shards

    def planned_blocks(self, shard: int, entry: int) -> range:
        """The planned blocks of ``entry`` that ``shard`` computes, in order."""
        first = (shard - self.offset(entry)) % self.n_shards
        return range(first, self.planned(entry), self.n_shards)

    def extra_block(self, shard: int, entry: int, t: int) -> int:
        """Block index of the ``t``-th extra block (``t = 0, 1, ...``) of ``entry`` owned by ``shard``."""
        p = self.position(shard, entry)
        assert p is not None, "not an owner"
        return self.planned(entry) + p + t * self.owners(entry)

    def extras_wanted(self, entry: int, kept: int, generated: int) -> int:
        """``E_hi``: extra blocks ``entry`` needs at the pessimistic keep rate of ``kept / generated``;
        0 when nothing was dropped (``kept >= generated``)."""
        if generated <= 0 or kept >= generated:
            return 0
        r_lo = max(kept - 3.0 * math.sqrt(kept), 1.0) / generated
        if r_lo >= 1.0:
            return 0
        return math.ceil(self.counts[entry] * (1.0 - r_lo) / (r_lo * self.block_size))

    def budget(self, entry: int) -> int:
        """Most states one owner generates for ``entry`` (the single build's give-up rule, split)."""
        total = MAX_OVERSAMPLING * self.counts[entry] + 4 * self.block_size
        return -(-total // self.owners(entry)) + self.block_size


@dataclass
class _ShardEntry:
    entry: int
    planned: list[int]
    kept: int = 0
    generated: int = 0
    next_planned: int = 0  # index into planned
    next_extra: int = 0  # t of the next extra block
    done: bool = False


class ShardSchedule:
    """The deterministic sequence of blocks that shard ``shard`` computes (:class:`ShardPlan`, rule 3).

    ``next()`` names the next block, ``observe()`` records what it kept; decisions depend only on the
    observations, in order, so a resumed build replays stored blocks through ``observe`` and goes on
    with the same sequence.
    """

    def __init__(self, plan: ShardPlan, shard: int):
        if not 0 <= shard < plan.n_shards:
            raise QeframeError(f"shard index {shard} is out of range for {plan.n_shards} shards")
        self.plan, self.shard = plan, shard
        self.entries = [
            _ShardEntry(e, list(plan.planned_blocks(shard, e)))
            for e in range(len(plan.counts))
            if plan.position(shard, e) is not None
        ]
        self.current = 0

    def planned_rows(self) -> int:
        """States in this shard's planned blocks (the extras come on top)."""
        return sum(
            block_rows(self.plan.counts[s.entry], b, self.plan.block_size)
            for s in self.entries
            for b in s.planned
        )

    def _extra_ok(self, s: _ShardEntry, t: int, kept: int, generated: int) -> bool:
        block = self.plan.extra_block(self.shard, s.entry, t)
        j = block - self.plan.planned(s.entry)
        return j < self.plan.extras_wanted(s.entry, kept, generated) and generated < self.plan.budget(s.entry)

    def _advance(self) -> None:
        while self.current < len(self.entries):
            s = self.entries[self.current]
            if s.next_planned < len(s.planned):
                return
            if self._extra_ok(s, s.next_extra, s.kept, s.generated):
                return
            s.done = True
            self.current += 1

    def next(self) -> tuple[int, int, int] | None:
        """``(entry, block, size)`` of the next block to compute, or ``None`` when the shard is done."""
        self._advance()
        if self.current >= len(self.entries):
            return None
        s = self.entries[self.current]
        if s.next_planned < len(s.planned):
            b = s.planned[s.next_planned]
        else:
            b = self.plan.extra_block(self.shard, s.entry, s.next_extra)
        return s.entry, b, block_rows(self.plan.counts[s.entry], b, self.plan.block_size)

    def observe(self, entry: int, block: int, generated: int, kept: int) -> None:
        """Record the block :meth:`next` named; raises ``ValueError`` for any other block."""
        expected = self.next()
        if expected is None or expected[:2] != (entry, block) or expected[2] != generated:
            raise ValueError(
                f"block ({entry}, {block}) of {generated} states is not next; expected {expected}"
            )
        s = self.entries[self.current]
        if s.next_planned < len(s.planned):
            s.next_planned += 1
        else:
            s.next_extra += 1
        s.kept += kept
        s.generated += generated

    def lookahead(self, limit: int) -> list[tuple[int, int, int]]:
        """Up to ``limit`` blocks from the next one on that the shard will probably compute (for
        submitting work ahead); extras are predicted with the keep rate observed so far."""
        out: list[tuple[int, int, int]] = []
        self._advance()
        for i in range(self.current, len(self.entries)):
            s = self.entries[i]
            for b in s.planned[s.next_planned :]:
                if len(out) >= limit:
                    return out
                out.append((s.entry, b, block_rows(self.plan.counts[s.entry], b, self.plan.block_size)))
            if i == self.current and s.kept < s.generated:
                rate = s.kept / s.generated
                kept, generated, t = s.kept, s.generated, s.next_extra
                while len(out) < limit and self._extra_ok(s, t, int(kept), generated):
                    out.append((s.entry, self.plan.extra_block(self.shard, s.entry, t), self.plan.block_size))
                    kept += rate * self.plan.block_size
                    generated += self.plan.block_size
                    t += 1
            if len(out) >= limit:
                break
        return out

    def finished_entries(self) -> set[int]:
        return {s.entry for s in self.entries if s.done}


def iter_shard_blocks(
    ctx: GenerationContext, schedule: ShardSchedule, executor: Executor, *, max_in_flight: int = 4
) -> Iterator[Block]:
    """Compute the blocks of ``schedule`` after those it has already observed, in order; each yielded
    block has been observed. Blocks are submitted ahead (at most ``max_in_flight``); speculative
    extras that the schedule ends up not wanting are dropped, so the output does not depend on timing.
    """
    pending: dict[tuple[int, int], Future] = {}
    try:
        while (task := schedule.next()) is not None:
            for e, b, size in schedule.lookahead(max_in_flight):
                if len(pending) >= max_in_flight:
                    break
                if (e, b) not in pending:
                    pending[(e, b)] = executor.submit(worker_block, e, b, size)
            entry, block, size = task
            if (entry, block) not in pending:
                pending[(entry, block)] = executor.submit(worker_block, entry, block, size)
            result: Block = pending.pop((entry, block)).result()
            schedule.observe(entry, block, result.generated, len(result))
            finished = schedule.finished_entries()
            for key in [k for k in pending if k[0] in finished or k[0] < entry]:
                pending.pop(key).cancel()
            yield result
    finally:
        for fut in pending.values():
            fut.cancel()
