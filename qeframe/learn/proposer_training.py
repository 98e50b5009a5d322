"""Training the alignment proposer (:mod:`qeframe.learn.proposer`) without labels.

**Data.** Fresh draws from the families of a *training* dataset spec (``quickstart-train-ppt`` /
``paper-train-ppt`` in registry.toml): every ``q | rest`` cut whose ground truth is entangled by
construction or by a witness proof and which passes the PPT gate (so: the PPT-entangled cuts), moved
qubit-first (:func:`~qeframe.quantum.witness.qubit_first`) and brought to filter normal form
(:func:`~qeframe.quantum.realignment.filter_normal_form`). The draws use their own seed, not the
store's, and a spec whose ``split`` is ``test`` is refused (held-out sources stay held out). No
label enters the loss: the cuts are only *selected* by their ground truth.

**Loss** (multiple-choice learning; Guzman-Rivera, Batra, Kohli, NIPS 2012): for the values
``v_{s,k} = tr(W_k^F U_{s,k} sigma U_{s,k}^†)`` of the ``S`` candidates and ``K`` witnesses
(:func:`~qeframe.quantum.alignment_search.alignment_values`, differentiable),

    L = mean_batch [ min_{s,k} v_{s,k} + beta · mean_s min_k v_{s,k} ],

the first term trains the best candidate only (the map state -> unitary is multi-valued, so a
mean would average distinct solutions into a wrong one), the second keeps every candidate slot
useful. With ``unroll = t > 0`` the values are taken after ``t`` differentiable gradient steps
from the proposed starts, each normalised to root-mean-square ``unroll_lr`` per generator vector
(like the first steps of the search's Adam, whose step size does not depend on the gradient's scale) (the network is then trained for the short search that
follows it; Andrychowicz et al., "Learning to learn by gradient descent by gradient descent",
NIPS 2016).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import torch

from qeframe.errors import QeframeError
from qeframe.learn.proposer import AlignmentProposer, ProposerRecord, ProposerSpec

if TYPE_CHECKING:
    from qeframe.config.specs import DatasetSpec
    from qeframe.plugin.registry import Registry


def training_cuts(
    name: str, spec: DatasetSpec, registry: Registry, count: int, seed: int, probe: int = 64
) -> tuple[np.ndarray, dict[str, int]]:
    """FNF states ``(M, d, d)`` complex128 of about ``count`` PPT-entangled ``q | rest`` cuts drawn
    from the families of dataset ``name`` (module docstring), and the number of cuts per family tag.

    A family whose first ``probe`` states hold no PPT-entangled cut (the separable sources) is
    skipped; the others share ``count`` states in proportion to their ``count`` in the spec.
    """
    from qeframe.learn.prediction.proofs import ppt_gate
    from qeframe.quantum.cuts import bipartitions
    from qeframe.quantum.realignment import filter_normal_form
    from qeframe.quantum.witness import qubit_first

    if spec.split == "test":
        raise QeframeError(
            f"dataset {name!r} is a test set (split = 'test'); the proposer trains on training sets only"
        )
    n = spec.n_qubits
    cuts = [c for c in bipartitions(n) if len(c.side_a) == 1]

    def draw(i: int, m: int) -> list[np.ndarray]:
        entry = spec.families[i]
        family = registry.create(
            "family", entry.family, entry.params, key=f"datasets.{name}.families[{i}].params"
        )
        batch = family.generate(m, np.random.default_rng([seed, i]), n)
        npt = ppt_gate(batch.rho)
        got = []
        for cut in cuts:
            rows = np.flatnonzero((batch.ground_truth[:, cut.index] == 1) & ~npt[:, cut.index])
            if rows.size:
                got.append(qubit_first(batch.rho[rows], cut.side_a[0]).reshape(-1, 2**n, 2**n))
        return got

    used = [i for i in range(len(spec.families)) if draw(i, probe)]
    total = sum(spec.families[i].count for i in used)
    out: list[np.ndarray] = []
    stats: dict[str, int] = {}
    for i in used:
        entry = spec.families[i]
        states = draw(i, max(1, round(count * entry.count / total)))
        stats[entry.tag or entry.family] = sum(len(s) for s in states)
        out += states
    if not out:
        raise QeframeError(f"dataset {name!r} has no family with PPT-entangled q|rest cuts to train on")
    rho = np.concatenate(out)
    fnf = filter_normal_form(rho, 2, 2 ** (n - 1))
    good = np.isfinite(fnf.sigma).all(axis=(1, 2))
    return fnf.sigma[good], stats


def candidate_values(
    model: AlignmentProposer,
    sigma: torch.Tensor,
    w_fnf: torch.Tensor,
    unroll: int = 0,
    unroll_lr: float = 0.1,
) -> torch.Tensor:
    """``(B, S, K)`` objective values of the proposed starts (after ``unroll`` differentiable steps)."""
    from qeframe.quantum.alignment_search import alignment_values

    h = model(sigma)
    s = sigma.to(torch.complex64)[:, None, None]
    for _ in range(unroll):
        v, _, _ = alignment_values(h, s, w_fnf)
        (g,) = torch.autograd.grad(v.sum(), h, create_graph=True)
        h = h - unroll_lr * g / (g.pow(2).mean(dim=-1, keepdim=True).sqrt() + 1e-8)
    return alignment_values(h, s, w_fnf)[0]


def train_proposer(
    sigma: np.ndarray,
    arch: ProposerSpec,
    *,
    minutes: float = 3.0,
    max_steps: int = 100_000,
    batch: int = 256,
    lr: float = 2e-3,
    beta: float = 0.1,
    unroll: int = 0,
    unroll_lr: float = 0.1,
    seed: int = 0,
    val_fraction: float = 0.1,
    log: Callable[[str], None] = print,
) -> tuple[AlignmentProposer, ProposerRecord]:
    """Train an :class:`AlignmentProposer` on FNF states ``sigma`` ``(M, d, d)`` (loss: module docstring).

    Adam (``lr``, cosine decay over the step budget), batches of ``batch`` cuts, until ``minutes``
    of wall time or ``max_steps``. A ``val_fraction`` of the cuts is held back; the log reports on
    it the share of cuts whose best candidate already has a negative objective with *no* search
    step (``neg@0``; the identity start's share for reference). Returns the weights with the best
    validation loss and a record of the run.
    """
    from qeframe.quantum.filter_witness import aligned_library

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(sigma))
    n_val = max(1, int(val_fraction * len(sigma)))
    val = torch.from_numpy(sigma[perm[:n_val]]).to(torch.complex64)
    train = torch.from_numpy(sigma[perm[n_val:]]).to(torch.complex64)
    w_fnf = torch.from_numpy(np.array(aligned_library(arch.n_qubits).w_fnf)).to(torch.complex64)
    model = AlignmentProposer(arch)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    with torch.no_grad():
        ident = torch.einsum("kij,nji->nk", w_fnf, val).real.amin(1)
    log(
        f"train {len(train)} cuts, val {n_val}; identity start neg@0 = {float((ident < 0).float().mean()):.3f}"
    )

    def loss_of(v: torch.Tensor) -> torch.Tensor:
        return v.amin(dim=(1, 2)).mean() + beta * v.amin(dim=2).mean()

    best, best_state, history = float("inf"), None, []
    t0, step = time.perf_counter(), 0
    budget_s = 60.0 * minutes
    while step < max_steps and time.perf_counter() - t0 < budget_s:
        frac = min(1.0, (time.perf_counter() - t0) / budget_s)
        for g in opt.param_groups:
            g["lr"] = lr * 0.5 * (1 + np.cos(np.pi * frac))
        idx = torch.from_numpy(rng.integers(0, len(train), batch))
        model.train()
        loss = loss_of(candidate_values(model, train[idx], w_fnf, unroll, unroll_lr))
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        if step % 200 == 0:
            model.eval()
            with torch.enable_grad() if unroll else torch.no_grad():
                v = candidate_values(model, val, w_fnf, unroll, unroll_lr).detach()
            v_loss, neg = float(loss_of(v)), float((v.amin(dim=(1, 2)) < 0).float().mean())
            history.append(
                {"step": step, "s": round(time.perf_counter() - t0, 1), "val_loss": v_loss, "neg@0": neg}
            )
            log(
                f"step {step:6d}  {history[-1]['s']:7.1f}s  train {float(loss.detach()):+.5f}  val {v_loss:+.5f}  neg@0 {neg:.3f}"
            )
            if v_loss < best:
                best, best_state = v_loss, {k: t.detach().clone() for k, t in model.state_dict().items()}
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    record = ProposerRecord(
        seed=seed,
        training={
            "cuts": len(train),
            "val_cuts": int(n_val),
            "steps": step,
            "wall_s": round(time.perf_counter() - t0, 1),
            "batch": batch,
            "lr": lr,
            "beta": beta,
            "unroll": unroll,
            "unroll_lr": unroll_lr,
            "best_val_loss": best,
            "identity_neg@0": float((ident < 0).float().mean()),
            "history": history[-5:],
        },
    )
    return model, record
