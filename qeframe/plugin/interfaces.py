"""The plugin interfaces of qeframe: StateFamily, Labeler, Symmetry, Backbone, Router, Baseline, Executor.

Every component is a class with three class attributes — ``name`` (how ``registry.toml`` refers to
it), ``description`` (one line, shown by ``qeframe plugins``) and ``Params`` (a pydantic model of
its parameters, ``extra="forbid"``) — and is constructed as ``Component(params)``. The registry
validates raw parameters against ``Params`` before constructing (:meth:`qeframe.plugin.registry.Registry.create`).

Shapes and conventions (identical everywhere):

* ``n`` qubits, ``d = 2**n``; a batch of density matrices is ``(N, d, d)`` ``complex128`` (numpy)
  or ``complex64``/``complex128`` (torch), big-endian: qubit 1 is the leftmost Kronecker factor.
* Cuts are ordered as :func:`qeframe.quantum.cuts.bipartitions` (``1|23``, ``2|13``, ``3|12``);
  ``n_cuts = 2**(n-1) - 1``.
* Labels are ``int8`` ``(N, n_cuts)``: 1 entangled, 0 separable, -1 unknown; provenance is
  ``uint8`` ``(N, n_cuts)`` indexing :data:`qeframe.plugin.labels.PROVENANCE`.
* Model input is a real tensor ``(B, 2, d, d)`` (channel 0 real part, channel 1 imaginary part),
  model output ``(B, n_cuts)`` logits.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import numpy as np
from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:  # torch is imported lazily so that `qeframe plugins` stays fast
    import torch


class Params(BaseModel):
    """Base of every plugin's parameter model: unknown keys are errors, values are validated."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class FamilyParams(Params):
    """Parameters every state family accepts.

    Attributes:
        local_randomize: apply an independent Haar-random single-qubit unitary to every qubit and
            then a uniformly random qubit permutation to every sample; the ground truth is
            re-indexed with the induced cut permutation. The paper's test sets are randomised so.
    """

    local_randomize: bool = False


class Component(abc.ABC):
    """Common base: ``name``, ``description``, ``Params`` and construction from validated params."""

    kind: ClassVar[str] = ""
    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    Params: ClassVar[type[Params]] = Params

    def __init__(self, params: Params | None = None):
        self.params = params if params is not None else self.Params()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.params!r})"


# --------------------------------------------------------------------------------------------------
# StateFamily

#: Per-sample metadata every family provides (key -> dtype); see :class:`StateBatch`.
STANDARD_META: dict[str, type] = {"pure": np.bool_, "fully_separable": np.int8, "pptes": np.bool_}


@dataclass
class StateBatch:
    """A batch of density matrices with what their construction knows.

    Attributes:
        rho: ``(N, 2**n, 2**n)`` ``complex128`` density matrices (big-endian qubit order).
        ground_truth: ``(N, n_cuts)`` ``int8`` per-cut truth known by construction
            (1 entangled, 0 separable, -1 unknown), cuts in :func:`~qeframe.quantum.cuts.bipartitions` order.
        ground_truth_provenance: ``(N, n_cuts)`` ``uint8`` provenance codes of ``ground_truth``.
        meta: per-sample arrays, each with leading dimension ``N``. Every family provides the
            standard keys of :data:`STANDARD_META`: ``pure`` (bool), ``fully_separable`` (int8:
            1 yes, 0 no, -1 unknown) and ``pptes`` (bool: entangled in the paper's sense although
            PPT on some cut — Horodecki, UPB, Acín; the paper's convention calls every cut of such a
            state entangled). Dataset stores keep the standard keys.
    """

    rho: np.ndarray
    ground_truth: np.ndarray
    ground_truth_provenance: np.ndarray
    meta: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = self.rho.shape[0]
        if self.ground_truth.shape[0] != n or self.ground_truth_provenance.shape != self.ground_truth.shape:
            raise ValueError("StateBatch: rho, ground_truth and ground_truth_provenance disagree on N")
        for key, value in self.meta.items():
            if value.shape[0] != n:
                raise ValueError(f"StateBatch: meta[{key!r}] has {value.shape[0]} rows, expected {n}")

    def __len__(self) -> int:
        return int(self.rho.shape[0])

    @classmethod
    def build(
        cls,
        rho: np.ndarray,
        ground_truth: np.ndarray | int,
        provenance: np.ndarray | str,
        *,
        pure: np.ndarray | bool,
        fully_separable: np.ndarray | int = -1,
        pptes: np.ndarray | bool = False,
    ) -> StateBatch:
        """Convenience constructor: scalars broadcast to ``(N, n_cuts)`` / ``(N,)``; a provenance
        name is turned into its code."""
        from qeframe.plugin.labels import provenance_code
        from qeframe.quantum.cuts import n_cuts

        n = rho.shape[0]
        shape = (n, n_cuts(int(rho.shape[-1]).bit_length() - 1))
        if isinstance(provenance, str):
            provenance = np.full(shape, provenance_code(provenance), np.uint8)
        return cls(
            rho=np.ascontiguousarray(rho, dtype=np.complex128),
            ground_truth=np.broadcast_to(np.asarray(ground_truth, np.int8), shape).copy(),
            ground_truth_provenance=np.broadcast_to(np.asarray(provenance, np.uint8), shape).copy(),
            meta={
                "pure": np.broadcast_to(np.asarray(pure, bool), (n,)).copy(),
                "fully_separable": np.broadcast_to(np.asarray(fully_separable, np.int8), (n,)).copy(),
                "pptes": np.broadcast_to(np.asarray(pptes, bool), (n,)).copy(),
            },
        )

    @property
    def n_qubits(self) -> int:
        return int(self.rho.shape[-1]).bit_length() - 1

    def take(self, index: np.ndarray) -> StateBatch:
        """The sub-batch at ``index`` (a boolean mask or integer indices)."""
        return StateBatch(
            rho=self.rho[index],
            ground_truth=self.ground_truth[index],
            ground_truth_provenance=self.ground_truth_provenance[index],
            meta={k: v[index] for k, v in self.meta.items()},
        )

    @staticmethod
    def concatenate(batches: list[StateBatch]) -> StateBatch:
        """Concatenate batches along N; ``meta`` keys must agree."""
        keys = set(batches[0].meta)
        if any(set(b.meta) != keys for b in batches):
            raise ValueError("StateBatch.concatenate: batches carry different meta keys")
        return StateBatch(
            rho=np.concatenate([b.rho for b in batches]),
            ground_truth=np.concatenate([b.ground_truth for b in batches]),
            ground_truth_provenance=np.concatenate([b.ground_truth_provenance for b in batches]),
            meta={k: np.concatenate([b.meta[k] for b in batches]) for k in sorted(keys)},
        )


@dataclass(frozen=True)
class DropRule:
    """Which samples a labeler drops, stated so that a family can skip work on them (a *screen*).

    The labeler drops every sample that, on some cut whose ground truth is unknown (-1), is not NPT
    at its tolerance (``λ_min(ρ^{T_A}) >= -tol``) and that is not pure (``tr ρ² <= 1 - PURE_TOL``);
    the ``verified`` labeler with ``drop_unknown`` is such a labeler (:meth:`Labeler.drop_rule`).

    Contract for a family given the rule (:meth:`StateFamily.generate` with ``drop``): it consumes
    the same random numbers and returns every sample exactly (bit for bit) as without the rule,
    except samples it *proves* the labeler drops, whose rows it may replace by any state with the same
    ground truth that the labeler drops too (for example the maximally mixed state). The labeler's
    output — which samples it keeps and their rows and labels — is then the same with and without
    the rule. Families that cannot screen ignore it.
    """

    tol: float


class StateFamily(Component):
    """A generator of density matrices, with per-cut ground truth where the construction knows it.

    Subclasses implement :meth:`sample`; callers use :meth:`generate`, which also applies
    ``local_randomize`` (common to all families) so that every family gets it the same way. A family
    that can skip the work on samples a labeler drops overrides :meth:`sample_screened`.
    """

    kind: ClassVar[str] = "family"
    Params: ClassVar[type[Params]] = FamilyParams
    #: Inclusive range of qubit numbers the family produces, ``(low, high)``; ``high = None``: no limit.
    qubit_range: ClassVar[tuple[int, int | None]] = (2, None)

    @classmethod
    def supports(cls, n_qubits: int) -> bool:
        """Whether the family can produce ``n_qubits``-qubit states (default: ``n`` in :attr:`qubit_range`)."""
        low, high = cls.qubit_range
        return n_qubits >= low and (high is None or n_qubits <= high)

    @classmethod
    def supported_qubits(cls) -> str:
        """:attr:`qubit_range` in words, for error messages: ``"n >= 3"``, ``"n = 3"``, ``"3 <= n <= 6"``."""
        low, high = cls.qubit_range
        if high is None:
            return f"n >= {low}"
        return f"n = {low}" if low == high else f"{low} <= n <= {high}"

    @classmethod
    def unsupported_message(cls, n_qubits: int) -> str:
        """One line naming the family, ``n`` and the supported range."""
        return f"family {cls.name!r} does not support n = {n_qubits} qubits (supported: {cls.supported_qubits()})"

    @abc.abstractmethod
    def sample(self, count: int, rng: np.random.Generator, n_qubits: int = 3) -> StateBatch:
        """Draw ``count`` states of ``n_qubits`` qubits using only ``rng`` for randomness.

        Returns a :class:`StateBatch` with ``rho`` of shape ``(count, 2**n_qubits, 2**n_qubits)``
        ``complex128``. Must be batched: no Python loop over samples.
        """

    def sample_screened(
        self, count: int, rng: np.random.Generator, n_qubits: int, drop: DropRule
    ) -> StateBatch:
        """:meth:`sample` for a labeler that drops samples by ``drop`` (see :class:`DropRule` for the
        contract). Default: :meth:`sample`, every sample computed."""
        return self.sample(count, rng, n_qubits)

    def generate(
        self, count: int, rng: np.random.Generator, n_qubits: int = 3, drop: DropRule | None = None
    ) -> StateBatch:
        """:meth:`sample` (:meth:`sample_screened` when the labeler's ``drop`` rule is given), then
        local randomisation when ``params.local_randomize`` is set."""
        if not self.supports(n_qubits):
            from qeframe.errors import QeframeError

            raise QeframeError(self.unsupported_message(n_qubits))
        if drop is None:
            batch = self.sample(count, rng, n_qubits)
        else:
            batch = self.sample_screened(count, rng, n_qubits, drop)
        if getattr(self.params, "local_randomize", False):
            from qeframe.quantum.random import locally_randomize

            rho, truth, prov = locally_randomize(
                batch.rho, batch.ground_truth, batch.ground_truth_provenance, rng
            )
            batch = StateBatch(
                rho=rho, ground_truth=truth, ground_truth_provenance=prov, meta=dict(batch.meta)
            )
        return batch


# --------------------------------------------------------------------------------------------------
# Labeler


@dataclass
class LabelBatch:
    """Per-cut labels for the kept samples of a :class:`StateBatch`.

    Attributes:
        keep: ``(N,)`` bool, which input samples are kept (a labeler may drop samples).
        labels: ``(K, n_cuts)`` ``int8`` for the ``K = keep.sum()`` kept samples.
        provenance: ``(K, n_cuts)`` ``uint8`` provenance codes.
        evidence: optional ``(K, n_cuts)`` ``float64`` value behind each label (e.g. the smallest
            eigenvalue of the partial transpose); NaN where there is none.
    """

    keep: np.ndarray
    labels: np.ndarray
    provenance: np.ndarray
    evidence: np.ndarray | None = None

    def __post_init__(self) -> None:
        k = int(np.count_nonzero(self.keep))
        if self.labels.shape[0] != k or self.provenance.shape != self.labels.shape:
            raise ValueError("LabelBatch: labels/provenance must have one row per kept sample")


class Labeler(Component):
    """Assigns per-cut labels (1 / 0 / -1) with provenance to a batch of states."""

    kind: ClassVar[str] = "labeler"

    @abc.abstractmethod
    def label(self, batch: StateBatch) -> LabelBatch:
        """Label ``batch`` (``rho`` ``(N, 2**n, 2**n)``); deterministic, no randomness."""

    def drop_rule(self) -> DropRule | None:
        """The :class:`DropRule` this labeler's drops follow, if any (default ``None``: no promise);
        dataset builds pass it to :meth:`StateFamily.generate`."""
        return None


# --------------------------------------------------------------------------------------------------
# Symmetry


class Symmetry(Component):
    """A random transformation that maps entanglement structure to a known entanglement structure.

    ``apply(rho, generator)`` takes a torch tensor ``(B, d, d)`` complex on any device and returns
    ``(rho2, cut_map)``: ``rho2`` has the same shape, dtype and device; ``cut_map`` is a ``long``
    tensor ``(B, n_cuts)`` such that cut ``j`` of ``rho[b]`` is cut ``cut_map[b, j]`` of
    ``rho2[b]``. Hence a consistent model satisfies ``p(rho2)[b, cut_map[b, j]] == p(rho)[b, j]``.
    Local unitaries give the identity map; a qubit permutation pi gives ``k = pi(j)``.
    """

    kind: ClassVar[str] = "symmetry"

    @abc.abstractmethod
    def apply(
        self, rho: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Transform a batch; see the class docstring for the contract."""


# --------------------------------------------------------------------------------------------------
# Backbone


class Backbone(Component):
    """Builds a ``torch.nn.Module`` mapping ``(B, 2, 2**n, 2**n)`` float to ``(B, n_cuts)`` logits."""

    kind: ClassVar[str] = "backbone"

    @abc.abstractmethod
    def build(self, n_qubits: int) -> torch.nn.Module:
        """A freshly initialised model for ``n_qubits`` qubits (use ``torch.manual_seed`` to fix it)."""


# --------------------------------------------------------------------------------------------------
# Router


class Router(Component):
    """Assigns each state to one of ``n_domains`` domains (for ensembles of models).

    Lifecycle: ``fit(x, labels)`` on a training set, then ``route(x)``; ``state_dict()`` /
    ``load_state_dict()`` round-trip the fitted state as tensors plus a JSON-able config.
    ``x`` is the model input ``(N, 2, 2**n, 2**n)`` float tensor; ``route`` returns ``(N,)`` long.
    """

    kind: ClassVar[str] = "router"

    @property
    @abc.abstractmethod
    def n_domains(self) -> int:
        """Number of domains that :meth:`route` can return."""

    @abc.abstractmethod
    def fit(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> Router:
        """Fit on ``x`` ``(N, 2, d, d)`` (and optionally labels ``(N, n_cuts)``); returns ``self``."""

    @abc.abstractmethod
    def route(self, x: torch.Tensor) -> torch.Tensor:
        """Domain index ``(N,)`` long for each sample; raises if called before :meth:`fit`."""

    @abc.abstractmethod
    def state_dict(self) -> dict[str, Any]:
        """Fitted state: ``{"tensors": {name: Tensor}, "config": {...JSON...}}``."""

    @abc.abstractmethod
    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""


# --------------------------------------------------------------------------------------------------
# Baseline (classical criteria used as predictors next to the networks)


class Baseline(Component):
    """A classical entanglement criterion used as a predictor in evaluation tables (PPT, CCNR, ...).

    ``predict(rho)`` takes ``(N, 2**n, 2**n)`` complex128 and returns ``(N, n_cuts)`` ``int8``:
    1 entangled (the criterion detects entanglement), 0 not detected (the criterion's answer is
    "separable" for the purposes of a table), -1 no answer (e.g. a solver failure).
    """

    kind: ClassVar[str] = "baseline"

    @abc.abstractmethod
    def predict(self, rho: np.ndarray) -> np.ndarray:
        """Per-cut decisions ``(N, n_cuts)`` int8 for ``rho`` ``(N, 2**n, 2**n)``."""


# --------------------------------------------------------------------------------------------------
# Executor (where independent tasks run: local processes, a Ray cluster, ...)

_T = TypeVar("_T")
_R = TypeVar("_R")


class Executor(Component):
    """Runs independent tasks somewhere — local processes, a Ray cluster, a batch system — and
    returns their results in task order.

    qeframe hands it the shards of a dataset build (``qeframe data build NAME --executor NAME
    --shards N``, :func:`qeframe.data.merge.build_sharded`): each task is a small picklable
    :class:`qeframe.data.merge.ShardTask` and ``fn`` is the top-level function
    :func:`qeframe.data.merge.run_shard_task`, which writes one shard store under the task's data folder
    and returns a JSON-able summary. The contract of :meth:`map`:

    * call ``fn(task)`` exactly once per task, as concurrently as the backend allows; ``fn`` may run
      in another process or on another machine, which loads plugins from its own installed entry
      points — so ``fn`` and the tasks must be picklable and the data folder reachable from there;
    * yield the results in the order of ``tasks`` (not of completion);
    * re-raise an exception of ``fn`` unchanged where possible (a :class:`qeframe.errors.QeframeError`
      must stay one, so the command line prints its one line), after which it may cancel the rest.
    """

    kind: ClassVar[str] = "executor"

    @abc.abstractmethod
    def map(self, fn: Callable[[_T], _R], tasks: Sequence[_T]) -> Iterator[_R]:
        """``fn(task)`` for every task, possibly in parallel elsewhere; results in task order."""


KINDS: dict[str, type[Component]] = {
    "family": StateFamily,
    "labeler": Labeler,
    "symmetry": Symmetry,
    "backbone": Backbone,
    "router": Router,
    "baseline": Baseline,
    "executor": Executor,
}
