"""Plots of a run, saved as PNG in ``runs/<experiment>/<run-id>/plots/``.

Uses matplotlib's object API with the Agg canvas (no pyplot, no global backend switch), so it works
without a display and never touches the state of a caller's matplotlib.

* ``training.png`` — loss terms (total, BCE, each symmetry term) and accuracies (train, validation
  per dataset and mean) against the epoch; the selected epoch is marked.
* ``accuracy_<convention>.png`` — grouped bars: mean per-cut accuracy per test dataset and per
  family group, one bar per predictor (``model``, ``ppt``, …), for each label convention.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .evaluate import CONVENTIONS


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=110)
    FigureCanvasAgg(fig)
    return fig


def plot_training(metrics: Sequence[Mapping[str, Any]], path: str | Path) -> Path:
    """Training curves from ``metrics.jsonl`` records; returns ``path``."""
    path = Path(path)
    fig = _figure(11, 4)
    ax_loss, ax_acc = fig.subplots(1, 2)
    epochs = [int(r["epoch"]) for r in metrics]
    terms: list[str] = []
    for r in metrics:
        for k in r.get("loss", {}):
            if k not in terms:
                terms.append(k)
    for term in terms:
        pts = [(e, r["loss"].get(term)) for e, r in zip(epochs, metrics) if r["loss"].get(term) is not None]
        if pts:
            ax_loss.plot(*zip(*pts), marker="o", ms=3, label=term)
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("loss")
    ax_loss.set_title("training loss terms")
    ax_loss.legend(fontsize=8)
    pts = [
        (e, r.get("train_accuracy")) for e, r in zip(epochs, metrics) if r.get("train_accuracy") is not None
    ]
    if pts:
        ax_acc.plot(*zip(*pts), marker="o", ms=3, label="train (known labels)")
    names: list[str] = []
    for r in metrics:
        for k in r.get("validation_accuracy", {}) or {}:
            if k not in names:
                names.append(k)
    for name in names:
        pts = [(e, r["validation_accuracy"].get(name)) for e, r in zip(epochs, metrics)]
        pts = [(e, a) for e, a in pts if a is not None]
        if pts:
            ax_acc.plot(*zip(*pts), marker="o", ms=3, label=f"val {name}")
    if len(names) > 1:
        pts = [
            (e, r.get("validation_mean"))
            for e, r in zip(epochs, metrics)
            if r.get("validation_mean") is not None
        ]
        if pts:
            ax_acc.plot(*zip(*pts), "k--", label="val mean")
    if metrics and metrics[-1].get("selected_epoch"):
        ax_acc.axvline(int(metrics[-1]["selected_epoch"]), color="grey", ls=":", label="selected epoch")
    ax_acc.set_xlabel("epoch")
    ax_acc.set_ylabel("mean per-cut accuracy")
    ax_acc.set_title("accuracy")
    ax_acc.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    return path


def plot_accuracy(results: Mapping[str, Any], convention: str, path: str | Path) -> Path:
    """Horizontal grouped bars of mean accuracy per test dataset and family group, one convention.

    Test datasets are listed top to bottom in results order, each followed by its family groups
    (indented); the figure grows with the number of groups so labels stay readable.
    """
    path = Path(path)
    groups: list[tuple[str, Mapping[str, Any]]] = []
    for name, block in results.items():
        groups.append((name, block[convention]))
        if len(block["families"]) > 1:
            groups.extend((f"    {fam}", fb[convention]) for fam, fb in block["families"].items())
    rows = list(groups[0][1]) if groups else []
    height = 0.22 * max(1, len(rows)) * len(groups) + 1.5
    fig = _figure(9.0, max(3.0, height))
    ax = fig.subplots()
    bar = 0.8 / max(1, len(rows))
    for k, row in enumerate(rows):
        ys = [i + (k - (len(rows) - 1) / 2) * bar for i in range(len(groups))]
        xs = [100.0 * (g[row]["mean"] or 0.0) for _, g in groups]
        bars = ax.barh(ys, xs, bar, label=row)
        ax.bar_label(bars, fmt="%.1f", fontsize=6, padding=1)
    ax.set_yticks(range(len(groups)))
    ax.set_yticklabels([g for g, _ in groups], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0, 110)
    ax.set_xlabel("mean per-cut accuracy (%)")
    ax.set_title(f"test accuracy, convention '{convention}'")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    return path


def write_plots(
    plots_dir: str | Path, metrics: Sequence[Mapping[str, Any]], results: Mapping[str, Any] | None
) -> list[Path]:
    """All plots of a run into ``plots_dir``; returns the written paths."""
    plots_dir = Path(plots_dir)
    plots_dir.mkdir(parents=True, exist_ok=True)
    out = []
    if metrics:
        out.append(plot_training(metrics, plots_dir / "training.png"))
    if results:
        for conv in CONVENTIONS:
            out.append(plot_accuracy(results, conv, plots_dir / f"accuracy_{conv}.png"))
    return out
