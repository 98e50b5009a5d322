"""The loss terms and metrics of training (the formulas are in :mod:`qeframe.learn.train`'s docstring).

:func:`masked_bce` (binary cross-entropy over the known labels), :func:`consistency_loss` (the
Siamese term of Pawłowski & Krawczyk, arXiv 2210.07410), :func:`fused_loss` (both from one
forward pass of originals and symmetry views: what ``training.compile`` compiles,
:func:`compile_loss`) and :func:`per_cut_accuracy`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F

from qeframe.learn.arrays import autocast

#: Name of the BCE term on the symmetry views (``training.view_bce_weight``) in the loss records.
VIEW_BCE = "bce:views"


def masked_bce(
    logits: torch.Tensor, labels: torch.Tensor, *, denominator: torch.Tensor | int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Binary cross-entropy with logits averaged over the known labels.

    ``logits`` ``(B, m)`` float, ``labels`` ``(B, m)`` int (1/0/-1). Returns ``(loss, n_known)``;
    ``loss = sum_{q_ij != -1} BCE(logit_ij, q_ij) / max(n_known, 1)`` (0 when nothing is known).

    ``denominator`` replaces ``n_known`` in the division: a data-parallel rank passes the number of
    known labels of the whole global batch, so that the ranks' losses add up to the global one.
    """
    known = labels >= 0
    target = labels.clamp(min=0).to(logits.dtype)
    per = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    n_known = known.sum()
    denom = n_known if denominator is None else torch.as_tensor(denominator, device=logits.device)
    loss = (per * known).sum() / denom.clamp(min=1)
    return loss, n_known


def consistency_loss(
    p: torch.Tensor, p_view: torch.Tensor, cut_map: torch.Tensor, *, denominator: int | None = None
) -> torch.Tensor:
    """Siamese consistency ``mean_{b, j} |p[b, j] - p_view[b, cut_map[b, j]]|``.

    ``p``, ``p_view``: ``(B, m)`` probabilities of the original and transformed states; ``cut_map``:
    ``(B, m)`` long from :meth:`qeframe.plugin.interfaces.Symmetry.apply`. With ``denominator`` the sum is
    divided by it instead of ``B m`` (a data-parallel rank passes ``B_global m``).
    """
    diff = (p - p_view.gather(1, cut_map)).abs()
    return diff.mean() if denominator is None else diff.sum() / denominator


def per_cut_accuracy(pred: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-cut accuracy over known labels: ``pred`` ``(N, m)`` bool/int, ``labels`` ``(N, m)`` int.

    Returns ``(accuracy (m,) float64 — NaN for a cut with no known label, counts (m,) long)``.
    """
    known = labels >= 0
    correct = ((pred.to(torch.int64) == labels.to(torch.int64)) & known).sum(0)
    counts = known.sum(0)
    acc = correct.double() / counts.double()
    return torch.where(counts > 0, acc, torch.full_like(acc, math.nan)), counts


def fused_loss(
    model: torch.nn.Module,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    cut_maps: Sequence[torch.Tensor],
    weights: Sequence[float],
    names: Sequence[str],
    bce_weight: float,
    bce_denominator: torch.Tensor | None = None,
    view_denominator: int | None = None,
    amp_dtype: torch.dtype | None = None,
    view_bce_weight: float = 0.0,
    view_bce_denominator: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor]:
    """The Siamese loss from one fused forward pass: ``(total, {term: value}, logits)``.

    ``inputs`` ``(b + s v, 2, d, d)``: ``b`` original states (``labels`` ``(b, m)`` int8) followed
    by ``s = len(cut_maps)`` blocks of ``v`` transformed states, the ``i``-th block being the view
    of the first ``v`` originals under symmetry ``i`` (``cut_maps[i]`` ``(v, m)`` long). With
    ``p = sigmoid(f(inputs))``::

        total = bce_weight * BCE_masked(f(x)[:b], labels)
                + sum_i weights[i] * mean_{r < v, j} | p[r, j] - p[b + i v + r, cut_maps[i][r, j]] |
                + view_bce_weight * BCE_masked(f(x)[b:], view_labels)

    The last term (``view_bce_weight > 0``, term ``bce:views``) supervises the views themselves:
    a symmetry of the training preserves entanglement per cut, so cut ``j`` of original ``r``
    (label ``labels[r, j]``) is cut ``cut_maps[i][r, j]`` of its view and carries the same label,
    ``view_labels[i v + r, cut_maps[i][r, j]] = labels[r, j]`` (unknown labels stay unknown and
    are masked). The BCE averages over the known view labels of all blocks
    (``view_bce_denominator`` replaces their count for a data-parallel rank).

    ``bce_denominator`` / ``view_denominator`` replace the BCE's number of known labels / the
    consistency terms' ``v m`` (a data-parallel rank's share, :meth:`qeframe.learn.train.Trainer.batch_loss`).
    A pure tensor function of its inputs (no host synchronisation), which is what
    ``training.compile`` compiles; it equals separate forward passes per view for any model
    whose output for a sample does not depend on the rest of the batch (no BatchNorm in
    training mode).
    """
    with autocast(inputs.device, amp_dtype):
        out = model(inputs)
    if out.dtype in (torch.float16, torch.bfloat16):
        out = out.float()
    b = labels.shape[0]
    logits = out[:b]
    bce, _ = masked_bce(logits, labels, denominator=bce_denominator)
    terms = {"bce": bce}
    total = bce_weight * bce
    if cut_maps:
        p = torch.sigmoid(logits)
        v = cut_maps[0].shape[0]
        for i, (cut_map, weight, name) in enumerate(zip(cut_maps, weights, names)):
            p_view = torch.sigmoid(out[b + i * v : b + (i + 1) * v])
            term = consistency_loss(p[:v], p_view, cut_map, denominator=view_denominator)
            terms[name] = term
            total = total + weight * term
        if view_bce_weight > 0:
            view_labels = torch.cat(
                [torch.empty_like(labels[:v]).scatter_(1, cut_map, labels[:v]) for cut_map in cut_maps]
            )
            view_bce, _ = masked_bce(out[b:], view_labels, denominator=view_bce_denominator)
            terms[VIEW_BCE] = view_bce
            total = total + view_bce_weight * view_bce
    return total, terms, logits


def compile_loss(device: torch.device, world_size: int = 1) -> Callable[..., Any]:
    """:func:`fused_loss` through :func:`torch.compile` (``training.compile``).

    The model's forward and backward and the loss terms become one Inductor graph per input
    shape (full batches, the last partial batch, with and without symmetry views: a few
    compilations per run, ``dynamic=False``). On a single CUDA device the mode is
    ``reduce-overhead``, which replays the step's kernels as a CUDA graph: the Siamese step at
    batch 128 is bound by kernel launches, not arithmetic. Data-parallel runs and the CPU use
    the default mode (on the CPU Inductor generates C++/OpenMP kernels; it needs a C++ compiler).
    The symmetry transforms (complex arithmetic, random draws from a generator) stay eager.
    """
    mode = "reduce-overhead" if device.type == "cuda" and world_size == 1 else None
    return torch.compile(fused_loss, mode=mode, dynamic=False)
