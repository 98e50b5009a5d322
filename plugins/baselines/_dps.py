"""The Doherty–Parrilo–Spedalieri k = 2 test as a visibility SDP, shared by ``dps2`` and ``certified``.

Mathematics
-----------
A state ``rho`` on ``A ⊗ B`` is *2-extendible with PPT* (DPS level 2) when there is an operator
``X`` on ``A ⊗ A' ⊗ B`` (``A'`` a copy of ``A``) with

* ``X = (Π_sym ⊗ I_B) X (Π_sym ⊗ I_B) ⪰ 0`` — supported on the symmetric subspace of ``A ⊗ A'``
  (a *Bose-symmetric* extension; ``Π_sym`` the projector onto ``Sym²(C^{d_A})``),
* ``tr_{A'} X = rho``,
* ``X^{T_B} ⪰ 0`` and ``X^{T_{A'}} ⪰ 0`` (the other partial transposes are equivalent to these
  by the ``A ↔ A'`` symmetry and by ``(X^{T_S})^T = X^{T_{S^c}}``).

Every separable state has such an extension (``Σ p_i a_i ⊗ a_i ⊗ b_i``), so a state without one is
entangled (Doherty, Parrilo and Spedalieri, PRL 88, 187904 (2002); PRA 69, 022308 (2004)).
The level-2 set is strictly smaller than the PPT set: it detects e.g. the Horodecki 2x4 PPT
entangled states.

Rather than a feasibility problem — where a solver's tolerance can silently turn "infeasible by
1e-7" into "feasible" — we solve the *visibility* problem

    p* = max p   subject to   p·rho + (1 - p)·I/d  has a PPT Bose-symmetric extension,   p <= 1,

which is always feasible (``p = 0``: ``I/d`` is separable) and bounded, so a healthy solver always
returns ``optimal``. ``p* = 1`` when ``rho`` is 2-extendible; ``p* < 1`` is a robustness
statement: ``rho`` must be mixed with ``1 - p*`` of white noise before it becomes extendible.
A cut is declared entangled only when ``p* < 1 - margin`` with a margin (default 1e-3) far above
the solver accuracy (SCS with ``eps = 1e-5``: observed errors of p* below 3e-6), and only when
the solver's status is exactly ``optimal`` — anything else (``optimal_inaccurate``, iteration
limit, exceptions) is "no answer". This is a numerical certificate: no exact rational dual
witness is extracted.

The extension copies the *smaller* side of the cut (side ``A`` of
:class:`qeframe.quantum.cuts.Cut`), so for 3 qubits the extension lives on ``C^2 ⊗ C^2 ⊗ C^4``
(dimension 16) and is parametrised by a Hermitian ``Y ⪰ 0`` of size ``3·4 = 12`` through
``X = V Y V^†`` with ``V`` the isometry ``Sym²(C^2) ⊗ C^4 -> C^2 ⊗ C^2 ⊗ C^4``.

Implementation
--------------
cvxpy (optional extra ``qeframe[certify]``) with SCS (default) or Clarabel. The problem is built
once per process and per ``(d_A, d_B, solver)`` with ``rho`` as a cvxpy ``Parameter`` (DPP), so each
further solve only refills data. Many SDPs run in a process pool over all cores with a rich
progress bar; every SDP starts cold, so results do not depend on the number of workers.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

import numpy as np

from qeframe.errors import QeframeError
from qeframe.plugin.workers import component_workers
from qeframe.quantum.cuts import Cut, bipartitions
from qeframe.quantum.ops import num_qubits, permute_qubits

#: How to get the optional dependencies; quoted in every "missing dependency" reason.
INSTALL_HINT = "pip install 'qeframe[certify]'"

SolverName = Literal["SCS", "CLARABEL"]

#: Solver options. SCS: ``eps = 1e-5`` and an initial step scale tuned on these problems (on 20
#: test problems — Horodecki states, separable rank-6 mixtures, noisy random PPT states — the
#: largest error of p* against a 1e-9 reference was 2.4e-6, 400 times below the default margin;
#: 100-1400 iterations). Clarabel (interior point, ~10 iterations but each costly here): its
#: default tolerances (1e-8) end in ``optimal_inaccurate`` on these problems, 1e-7 ends ``optimal``.
_SOLVER_OPTIONS: dict[str, dict[str, Any]] = {
    "SCS": {"eps_abs": 1e-5, "eps_rel": 1e-5, "scale": 30.0, "max_iters": 20_000},
    "CLARABEL": {"tol_gap_abs": 1e-7, "tol_gap_rel": 1e-7, "tol_feas": 1e-7, "tol_ktratio": 1e-5},
}


class MissingDependencyError(QeframeError):
    """cvxpy or the requested solver is not installed (install ``qeframe[certify]``)."""


@dataclass(frozen=True)
class DpsSettings:
    """How the DPS-2 SDP is solved and read.

    Attributes:
        solver: ``"SCS"`` (default, first-order, fast on these sizes) or ``"CLARABEL"``
            (interior point, more accurate, several times slower here).
        margin: a cut is entangled when ``p* < 1 - margin``.
        extension: first look for a verified PPT symmetric extension of
            ``(1 - margin) rho + margin I/d`` without an SDP
            (:mod:`qeframe_plugins.baselines._dps_extension`); where one is found ``p* >= 1 - margin``
            is proved, the SDP could only answer "inconclusive" and is not run.
    """

    solver: SolverName = "SCS"
    margin: float = 1e-3
    extension: bool = True


@dataclass(frozen=True)
class DpsOutcome:
    """The answers of a batch of DPS-2 SDPs, one entry per job.

    Attributes:
        p_star: ``(M,)`` float64 optimal visibility, NaN where the solver gave no answer.
        ok: ``(M,)`` bool, the solver returned ``optimal``.
        reasons: ``(M,)`` object array of ``str``: ``""`` when ``ok``, else why not.
        seconds: ``(M,)`` float64 wall time of each solve (in its worker; 0 where no SDP ran).
        extended: ``(M,)`` bool, no SDP ran because a verified extension proved ``p* >= 1 - margin``;
            there ``p_star`` holds that proved lower bound ``1 - margin`` and ``ok`` is true.
        extension_margin: ``(M,)`` float64, the verified eigenvalue margin of that extension
            (NaN where none was found or searched).
    """

    p_star: np.ndarray
    ok: np.ndarray
    reasons: np.ndarray
    seconds: np.ndarray
    extended: np.ndarray | None = None
    extension_margin: np.ndarray | None = None

    def __post_init__(self) -> None:
        m = len(self.p_star)
        if self.extended is None:
            object.__setattr__(self, "extended", np.zeros(m, dtype=bool))
        if self.extension_margin is None:
            object.__setattr__(self, "extension_margin", np.full(m, np.nan))

    def entangled(self, margin: float) -> np.ndarray:
        """``(M,)`` bool: the SDP certifies entanglement (``ok`` and ``p* < 1 - margin``)."""
        return self.ok & (np.nan_to_num(self.p_star, nan=1.0) < 1.0 - margin)

    def decisions(self, margin: float) -> np.ndarray:
        """``(M,)`` int8: 1 entangled, 0 extendible within the margin (not detected), -1 no answer."""
        out = np.where(self.entangled(margin), 1, 0).astype(np.int8)
        out[~self.ok] = -1
        return out


def missing_dependency(solver: str = "SCS") -> str | None:
    """``None`` when cvxpy and ``solver`` can be used, else a one-line reason with the install hint."""
    try:
        import cvxpy as cp
    except ImportError as exc:
        return f"cvxpy is not installed ({exc}); install it with {INSTALL_HINT}"
    if solver not in _SOLVER_OPTIONS:
        return f"unsupported solver {solver!r}; allowed: {', '.join(_SOLVER_OPTIONS)}"
    if solver not in cp.installed_solvers():
        return f"the SDP solver {solver} is not installed; install it with {INSTALL_HINT}"
    return None


def require_solver(solver: str = "SCS") -> None:
    """Raise :class:`MissingDependencyError` when :func:`missing_dependency` has a reason."""
    reason = missing_dependency(solver)
    if reason is not None:
        raise MissingDependencyError(reason)


@cache
def symmetric_isometry(d: int) -> np.ndarray:
    """Isometry ``V: Sym²(C^d) -> C^d ⊗ C^d``, ``(d*d, d(d+1)/2)`` float64.

    Columns: ``|ii>`` and ``(|ij> + |ji>)/sqrt(2)`` for ``i < j``; ``V V^T = Π_sym``.
    """
    cols = []
    for i in range(d):
        for j in range(i, d):
            v = np.zeros(d * d)
            if i == j:
                v[i * d + i] = 1.0
            else:
                v[i * d + j] = v[j * d + i] = np.sqrt(0.5)
            cols.append(v)
    return np.stack(cols, axis=1)


def cut_blocks(rho: np.ndarray, cut: Cut) -> np.ndarray:
    """``rho`` with the qubits of ``cut.side_a`` first: ``(N, d, d)`` -> ``(N, d, d)``.

    The result is an operator on ``A ⊗ B`` with ``d_A = 2**len(side_a)``, ``d_B = d / d_A``,
    the qubits of each side in ascending order.
    """
    return permute_qubits(rho, list(cut.side_a) + list(cut.side_b))


class _Problem:
    """A compiled-once cvxpy visibility problem for fixed ``(d_A, d_B, solver)``."""

    def __init__(self, d_a: int, d_b: int, solver: str):
        import cvxpy as cp

        d = d_a * d_b
        self.solver = solver
        self.rho = cp.Parameter((d, d), hermitian=True)
        self.p = cp.Variable()
        v = np.kron(symmetric_isometry(d_a), np.eye(d_b))  # (d_a^2 d_b, s d_b), real
        y = cp.Variable((v.shape[1], v.shape[1]), hermitian=True)
        x = v @ y @ v.T  # on A ⊗ A' ⊗ B, Bose-symmetric in A A' by construction
        dims = (d_a, d_a, d_b)
        x_tb = cp.partial_transpose(x, dims, axis=2)
        x_ta = cp.partial_transpose(x, dims, axis=1)
        constraints = [
            y >> 0,
            cp.partial_trace(x, dims, axis=1) == self.p * self.rho + (1 - self.p) * np.eye(d) / d,
            (x_tb + x_tb.H) / 2 >> 0,
            (x_ta + x_ta.H) / 2 >> 0,
            self.p <= 1,
        ]
        self.problem = cp.Problem(cp.Maximize(self.p), constraints)

    def solve(self, rho_ab: np.ndarray) -> tuple[float, bool, str]:
        import cvxpy as cp

        self.rho.value = 0.5 * (rho_ab + rho_ab.conj().T)
        try:
            self.problem.solve(solver=self.solver, warm_start=False, **_SOLVER_OPTIONS[self.solver])
        except cp.error.SolverError as exc:
            return float("nan"), False, f"solver {self.solver} failed: {exc}"
        status = self.problem.status
        value = self.p.value
        if status != cp.OPTIMAL or value is None or not np.isfinite(value):
            return float("nan"), False, f"solver {self.solver} returned status {status!r}"
        p_star = float(value)
        if not -1e-3 <= p_star <= 1.0 + 1e-3:  # the feasible set is [0, 1]; anything else is broken
            return float("nan"), False, f"solver {self.solver} returned p* = {p_star:.6g} outside [0, 1]"
        return p_star, True, ""


_PROBLEMS: dict[tuple[int, int, str], _Problem] = {}


def _problem(d_a: int, d_b: int, solver: str) -> _Problem:
    key = (d_a, d_b, solver)
    if key not in _PROBLEMS:
        _PROBLEMS[key] = _Problem(d_a, d_b, solver)
    return _PROBLEMS[key]


def dps2_visibility(rho_ab: np.ndarray, d_a: int, solver: str = "SCS") -> tuple[float, bool, str]:
    """Solve one visibility SDP in this process.

    Args:
        rho_ab: ``(d, d)`` density matrix on ``A ⊗ B`` (A leftmost), ``d = d_a * d_b``.
        d_a: dimension of the side that is copied (use the smaller side).
        solver: ``"SCS"`` or ``"CLARABEL"``.

    Returns:
        ``(p_star, ok, reason)``: ``p_star`` NaN and ``reason`` set when not ``ok``. A missing
        dependency or any solver exception is a ``reason``, never an exception.
    """
    if solver not in _SOLVER_OPTIONS:
        return float("nan"), False, f"unsupported solver {solver!r}; allowed: {', '.join(_SOLVER_OPTIONS)}"
    try:
        import cvxpy  # noqa: F401
    except ImportError as exc:
        return float("nan"), False, f"cvxpy is not installed ({exc}); install it with {INSTALL_HINT}"
    d = int(rho_ab.shape[-1])
    if d % d_a:
        raise ValueError(f"d_a = {d_a} does not divide the dimension {d}")
    try:
        return _problem(d_a, d // d_a, solver).solve(np.asarray(rho_ab, dtype=np.complex128))
    except Exception as exc:  # noqa: BLE001 - a solver crash is an unknown, never an "entangled"
        return float("nan"), False, f"solver {solver} raised {type(exc).__name__}: {exc}"


def _job(args: tuple[np.ndarray, int, str]) -> tuple[float, bool, str, float]:
    rho_ab, d_a, solver = args
    start = time.perf_counter()
    p_star, ok, reason = dps2_visibility(rho_ab, d_a, solver)
    return p_star, ok, reason, time.perf_counter() - start


def _pool_context() -> multiprocessing.context.BaseContext:
    # fork: workers inherit the imported cvxpy (importing it costs seconds); spawn elsewhere.
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else "spawn")


def dps2_batch(
    rho: np.ndarray,
    jobs: np.ndarray | Sequence[tuple[int, int]],
    settings: DpsSettings = DpsSettings(),
    *,
    workers: int | None = None,
    progress: bool = True,
    description: str = "DPS-2 SDPs",
) -> DpsOutcome:
    """Solve the visibility SDP for the given ``(sample, cut)`` jobs of ``rho`` ``(N, 2**n, 2**n)``.

    With ``settings.extension`` (default) every job is first given to
    :func:`~qeframe_plugins.baselines._dps_extension.extension_certificates` (batched numpy, no
    cvxpy needed); a job with a verified extension of ``(1 - margin) rho + margin I/d`` is answered
    ``p* >= 1 - margin`` (``extended``, ``p_star = 1 - margin``, ``ok``) and no SDP is solved for it.

    ``jobs`` is ``(M, 2)`` int: row ``m`` asks for sample ``jobs[m, 0]`` across cut
    ``bipartitions(n)[jobs[m, 1]]``. Jobs run in a process pool of ``workers`` processes (default:
    all cores, one inside a build worker: :func:`qeframe.plugin.workers.component_workers`; 1 runs
    in this process) with a rich progress bar on stderr when ``progress``. Each
    result depends only on its own matrix, not on the pool. A missing dependency makes every job
    "no answer" with the reason (nothing is raised).
    """
    from qeframe_plugins.baselines._dps_extension import extension_certificates  # imports this module

    rho = np.asarray(rho)
    jobs = np.asarray(jobs, dtype=np.int64).reshape(-1, 2)
    m = len(jobs)
    p_star = np.full(m, np.nan)
    ok = np.zeros(m, dtype=bool)
    reasons = np.full(m, "", dtype=object)
    seconds = np.zeros(m)
    extended = np.zeros(m, dtype=bool)
    ext_margin = np.full(m, np.nan)
    if m == 0:
        return DpsOutcome(p_star, ok, reasons, seconds, extended, ext_margin)

    n = num_qubits(rho.shape[-1])
    cuts = bipartitions(n)
    blocks: list[np.ndarray] = [np.empty(0)] * m
    for c in np.unique(jobs[:, 1]):  # loop over cuts; the reordering is batched over samples
        rows = np.flatnonzero(jobs[:, 1] == c)
        reordered = cut_blocks(rho[jobs[rows, 0]], cuts[int(c)])
        if settings.extension:  # batched over the samples of this cut; no SDP where it succeeds
            found, margins = extension_certificates(reordered, 2 ** len(cuts[int(c)].side_a), settings.margin)
            extended[rows[found]] = True
            ext_margin[rows[found]] = margins[found]
        for r, block in zip(rows, reordered):
            blocks[r] = block
    p_star[extended], ok[extended] = 1.0 - settings.margin, True
    todo = np.flatnonzero(~extended)
    reason = missing_dependency(settings.solver) if todo.size else None
    if reason is not None:
        reasons[todo] = reason
        return DpsOutcome(p_star, ok, reasons, seconds, extended, ext_margin)
    d_a = np.array([2 ** len(cuts[int(c)].side_a) for c in jobs[:, 1]])
    tasks = {int(i): (blocks[i], int(d_a[i]), settings.solver) for i in todo}

    def store(i: int, result: tuple[float, bool, str, float]) -> None:
        p_star[i], ok[i], reasons[i], seconds[i] = result

    workers = component_workers(workers)
    workers = min(workers, len(tasks))
    if not tasks:
        return DpsOutcome(p_star, ok, reasons, seconds, extended, ext_margin)
    with _progress(progress) as bar:
        task_id = bar.add_task(description, total=len(tasks))
        if workers == 1:
            for i, task in tasks.items():
                store(i, _job(task))
                bar.advance(task_id)
        else:
            with ProcessPoolExecutor(max_workers=workers, mp_context=_pool_context()) as pool:
                futures = {pool.submit(_job, task): i for i, task in tasks.items()}
                for future in as_completed(futures):
                    i = futures[future]
                    try:
                        store(i, future.result())
                    except Exception as exc:  # noqa: BLE001 - a dead worker is an unknown, never "entangled"
                        store(i, (float("nan"), False, f"worker failed: {type(exc).__name__}: {exc}", 0.0))
                    bar.advance(task_id)
    return DpsOutcome(p_star, ok, reasons, seconds, extended, ext_margin)


def _progress(enabled: bool) -> Any:
    from qeframe.plugin.progress import progress_bar

    return progress_bar(enabled, transient=True)
