"""Plots of a run, saved as PNG in ``runs/<experiment>/<run-id>/plots/``.

Uses matplotlib's object API with the Agg canvas (no pyplot, no global backend switch), so it works
without a display and never touches the state of a caller's matplotlib.

* ``training.png`` — loss terms (total, BCE, each symmetry term) and accuracies (train, validation
  per dataset and mean) against the epoch; the selected epoch is marked.
* ``accuracy_<convention>.png`` — grouped bars: mean per-cut accuracy per test dataset and per
  family group, one bar per predictor (``model``, ``ppt``, …), for each label convention.
* ``reliability.png`` — reliability diagram of P(entangled) on proved PPT cuts, raw and calibrated:
  the calibration data (left) and every test set pooled (right); written when the run is calibrated.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from qeframe.evaluation.metrics import CONVENTIONS


def new_figure(width: float, height: float):
    """A matplotlib ``Figure`` of ``width`` x ``height`` inches at 110 dpi on the Agg canvas (no
    pyplot state, safe in worker threads); every plot of qeframe starts here."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=110)
    FigureCanvasAgg(fig)
    return fig


def plot_training(metrics: Sequence[Mapping[str, Any]], path: str | Path) -> Path:
    """Training curves from ``metrics.jsonl`` records; returns ``path``."""
    path = Path(path)
    fig = new_figure(11, 4)
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
    fig = new_figure(9.0, max(3.0, height))
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


def _merge_bins(parts: Sequence[Mapping[str, Any]]) -> dict[str, list[Any]]:
    """Pool reliability bins (:func:`qeframe.learn.prediction.reliability_bins`) of several datasets."""
    count = [sum(p["count"][b] for p in parts) for b in range(len(parts[0]["count"]))]
    out: dict[str, list[Any]] = {"count": count, "mean_p": [], "frequency": []}
    for key in ("mean_p", "frequency"):
        for b, c in enumerate(count):
            total = sum(p["count"][b] * p[key][b] for p in parts if p["count"][b])
            out[key].append(total / c if c else None)
    return out


def plot_reliability(
    fit: Mapping[str, Any], results: Mapping[str, Any] | None, path: str | Path
) -> Path | None:
    """Reliability diagram (observed entangled share against mean predicted P per bin) of the raw and
    the calibrated model on proved PPT cuts: ``fit`` is ``prediction.json``'s ``fit`` record
    (calibration data), ``results`` the ``results.json`` dict (test sets pooled). Marker area
    grows with the bin count. Returns ``None`` when there is nothing to draw."""
    panels = []
    if fit.get("reliability_before"):
        before, after = 100 * (fit.get("ece_before") or 0), 100 * (fit.get("ece_after") or 0)
        panels.append(
            (
                f"calibration data (ECE {before:.1f}% -> {after:.1f}%)",
                fit["reliability_before"],
                fit["reliability_after"],
            )
        )
    tests = [b["calibration"] for b in (results or {}).values() if b.get("calibration", {}).get("n")]
    if tests:
        panels.append(
            (
                "test sets pooled",
                _merge_bins([t["reliability_raw"] for t in tests]),
                _merge_bins([t["reliability_calibrated"] for t in tests]),
            )
        )
    if not panels:
        return None
    path = Path(path)
    fig = new_figure(5.0 * len(panels), 4.6)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (title, raw, cal) in zip(axes, panels):
        ax.plot([0, 1], [0, 1], color="grey", ls=":", lw=1, label="perfect calibration")
        for bins, label, style in ((raw, "raw sigmoid(z)", "o--"), (cal, "calibrated", "s-")):
            pts = [(q, f, c) for q, f, c in zip(bins["mean_p"], bins["frequency"], bins["count"]) if c]
            if pts:
                xs, ys, cs = zip(*pts)
                total = sum(cs)
                ax.plot(xs, ys, style, ms=3, lw=1, label=label)
                ax.scatter(xs, ys, s=[400 * c / total for c in cs], alpha=0.25)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("mean predicted P(entangled) in bin")
        ax.set_ylabel("share proved entangled")
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path)
    return path


def write_plots(
    plots_dir: str | Path,
    metrics: Sequence[Mapping[str, Any]],
    results: Mapping[str, Any] | None,
    calibration_fit: Mapping[str, Any] | None = None,
) -> list[Path]:
    """All plots of a run into ``plots_dir``; returns the written paths. ``calibration_fit``:
    ``prediction.json``'s ``fit`` record of a calibrated run (adds ``reliability.png``)."""
    plots_dir = Path(plots_dir)
    plots_dir.mkdir(parents=True, exist_ok=True)
    out = []
    if metrics:
        out.append(plot_training(metrics, plots_dir / "training.png"))
    if results:
        for conv in CONVENTIONS:
            out.append(plot_accuracy(results, conv, plots_dir / f"accuracy_{conv}.png"))
    if calibration_fit is not None:
        written = plot_reliability(calibration_fit, results, plots_dir / "reliability.png")
        if written is not None:
            out.append(written)
    return out
