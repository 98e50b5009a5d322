"""Run folders and checkpoints: ``runs/<experiment>/<run-id>/``.

A run folder holds everything one training run produced::

    runs/<experiment>/<run-id>/          run-id = UTC timestamp + "-" + 8 hex digits of the spec hash
        spec.json                        the experiment spec (after command-line overrides) and its datasets
        plugins.json                     loaded plugins and versions, qeframe/torch versions, device
        metrics.jsonl                    one JSON object per finished epoch
        checkpoints/
            epoch-0003.safetensors       model weights after epoch 3 (1-based)
            epoch-0003.state.safetensors optimizer tensors and RNG states after epoch 3
            epoch-0003.json              the checkpoint config; written last, so it marks completeness
            best.safetensors, best.json  the selected model (written when training finishes)
        prediction.json                  PPT gate, calibration and thresholds (qeframe.learn.prediction)
        results.json, results.md         evaluation tables
        plots/*.png

Checkpoints never use pickle: tensors go to safetensors files, everything else to JSON. Every file
is written to a temporary name and moved into place with :func:`os.replace`, and the config JSON of
an epoch is written after its tensor files, so a run killed at any moment leaves either a complete
checkpoint or none for that epoch. :func:`latest_checkpoint` returns the newest complete one.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qeframe.errors import QeframeError
from qeframe.io import atomic_write_json, atomic_write_text, fsync_dir, temporary_path

if TYPE_CHECKING:
    import torch

    from qeframe.config.specs import DatasetSpec, ExperimentSpec

CHECKPOINT_FORMAT = "qeframe-checkpoint/1"
_EPOCH_JSON = re.compile(r"^epoch-(\d{4,})\.json$")


# --------------------------------------------------------------------------------------------------
# atomic files


def atomic_save_tensors(
    path: str | Path, tensors: Mapping[str, torch.Tensor], metadata: dict[str, str] | None = None
) -> None:
    """Save ``tensors`` as a safetensors file through a temporary file and :func:`os.replace`.

    Tensors are copied to contiguous CPU tensors first (safetensors refuses shared storage).
    """
    from safetensors.torch import save_file

    path = Path(path)
    tmp = temporary_path(path)
    plain = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
    save_file(plain, str(tmp), metadata=metadata)
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def load_tensors(path: str | Path, device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """Read a safetensors file (no pickle involved); a damaged file raises :class:`QeframeError`."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device=str(device))
    except FileNotFoundError:
        raise QeframeError(f"checkpoint file {str(path)!r} is missing") from None
    except (SafetensorError, OSError, ValueError) as exc:  # a damaged or truncated file
        raise QeframeError(f"checkpoint file {str(path)!r} cannot be read: {exc}") from None


def load_model_weights(
    weights: str | Path, config: Mapping[str, Any], device: str | torch.device = "cpu"
) -> dict[str, torch.Tensor]:
    """The tensors of the weights file ``weights`` that checkpoint ``config`` names, after checking
    the file against the sha256 the config records for it (``config["sha256"][file name]``, written
    by :func:`save_checkpoint` and :func:`write_best`; a config without one is read unchecked).

    Safetensors and JSON only: nothing is unpickled. A changed or damaged file raises
    :class:`QeframeError` (one line), so a model never predicts with weights other than its own.
    """
    weights = Path(weights)
    expected = (config.get("sha256") or {}).get(weights.name)
    if expected is not None and weights.is_file() and file_sha256(weights) != expected:
        raise QeframeError(
            f"checkpoint file {str(weights)!r} does not match the sha256 recorded in its checkpoint "
            "config: the file is damaged or was replaced"
        )
    return load_tensors(weights, device)


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# --------------------------------------------------------------------------------------------------
# spec hash


def experiment_spec_hash(
    experiment: ExperimentSpec, datasets: Mapping[str, DatasetSpec], *, legacy: bool = False
) -> str:
    """sha256 of what determines the trained model: the canonical JSON of the experiment's model,
    training (without ``epochs``), router and train/validation dataset names, plus the identity
    hashes of those datasets (:meth:`DatasetSpec.identity_hash`: their specs without the free text,
    so fixing a dataset's description or tags does not make another experiment).

    ``legacy=True`` gives the hash of runs recorded before store format 3, which took the datasets'
    full :meth:`DatasetSpec.spec_hash` (free text included); ``qeframe run --resume`` accepts a run
    folder recorded under it for the same spec (:func:`resume_spec_hash`).

    Left out: ``training.epochs`` under a constant learning rate (when to stop, not what is
    trained: a run resumed with more ``--epochs`` is the same run continued; a learning-rate
    schedule spans ``epochs``, so with one it counts), ``training.compile`` (how the same loss is
    computed), the training fields added later while at their defaults
    (``TrainingSpec.HASH_OPTIONAL``, so older runs keep their hash), the test datasets,
    ``evaluation``, ``prediction`` (fitted after training) and ``description`` (they change the
    tables, not the weights, so a resumed run may be evaluated differently).
    """
    spec = experiment.model_dump(mode="json")
    training = spec["training"]
    for key in type(experiment.training).HASH_EXCLUDED:
        training.pop(key, None)
    if experiment.training.lr_schedule == "constant":  # a schedule spans `epochs`: then it counts
        training.pop("epochs", None)
    for key, default in type(experiment.training).HASH_OPTIONAL.items():
        if training.get(key) == default:
            training.pop(key)
    for key in ("test", "evaluation", "prediction", "description"):
        spec.pop(key, None)
    names = [experiment.train, *experiment.validation]
    key = (lambda d: d.spec_hash()) if legacy else (lambda d: d.identity_hash())
    blob = {"experiment": spec, "datasets": {n: key(datasets[n]) for n in sorted(set(names))}}
    return hashlib.sha256(json.dumps(blob, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def resume_spec_hash(
    recorded: str | None, experiment: ExperimentSpec, datasets: Mapping[str, DatasetSpec]
) -> str:
    """The spec hash a resumed run goes on under: the current :func:`experiment_spec_hash`, or the
    ``recorded`` one of a run folder written before store format 3 when it equals the legacy hash of
    the same spec (the run continues under the hash it was started with). Any other mismatch is
    left to the trainer's check, which refuses to resume a run of another spec."""
    current = experiment_spec_hash(experiment, datasets)
    if (
        recorded
        and recorded != current
        and recorded == experiment_spec_hash(experiment, datasets, legacy=True)
    ):
        return recorded
    return current


# --------------------------------------------------------------------------------------------------
# run folder


@dataclass(frozen=True)
class RunDir:
    """A run folder ``runs/<experiment>/<run-id>/`` and the files in it."""

    path: Path

    @classmethod
    def create(
        cls, runs_dir: str | Path, experiment: str, spec_hash: str, *, now: datetime | None = None
    ) -> RunDir:
        """Make a new run folder named ``<UTC timestamp>-<spec hash[:8]>`` (``-2``, ``-3``… if taken)."""
        stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
        parent = Path(runs_dir) / experiment
        parent.mkdir(parents=True, exist_ok=True)
        base = f"{stamp}-{spec_hash[:8]}"
        for i in range(1, 1000):
            path = parent / (base if i == 1 else f"{base}-{i}")
            try:
                path.mkdir()
            except FileExistsError:
                continue
            run = cls(path)
            run.checkpoints.mkdir()
            run.plots.mkdir()
            return run
        raise QeframeError(f"cannot create a run folder under {str(parent)!r}")  # pragma: no cover

    @classmethod
    def open(cls, path: str | Path, *, create: bool = True) -> RunDir:
        """An existing run folder; :class:`QeframeError` when it is missing or not a run folder.

        ``create``: make ``checkpoints/`` and ``plots/`` where missing (for a run that goes on);
        ``False`` opens the folder read-only (inference from a shipped or read-only folder).
        """
        path = Path(path)
        if not path.is_dir():
            raise QeframeError(f"run folder {str(path)!r} not found")
        if not (path / "spec.json").is_file() and not (path / "checkpoints").is_dir():
            raise QeframeError(f"{str(path)!r} is not a qeframe run folder (no spec.json, no checkpoints/)")
        run = cls(path)
        if create:
            run.checkpoints.mkdir(exist_ok=True)
            run.plots.mkdir(exist_ok=True)
        return run

    @property
    def experiment(self) -> str:
        return self.path.parent.name

    @property
    def run_id(self) -> str:
        return self.path.name

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def plots(self) -> Path:
        return self.path / "plots"

    @property
    def spec_file(self) -> Path:
        return self.path / "spec.json"

    @property
    def plugins_file(self) -> Path:
        return self.path / "plugins.json"

    @property
    def metrics_file(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def results_json(self) -> Path:
        return self.path / "results.json"

    @property
    def results_md(self) -> Path:
        return self.path / "results.md"

    def read_spec(self) -> dict[str, Any]:
        if not self.spec_file.is_file():
            raise QeframeError(f"{str(self.path)!r} has no spec.json")
        return json.loads(self.spec_file.read_text(encoding="utf-8"))

    # ---------------------------------------------------------------- metrics
    def append_metrics(self, record: Mapping[str, Any]) -> None:
        """Append one epoch record as a JSON line (flushed and fsynced)."""
        with open(self.metrics_file, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record, sort_keys=True) + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def read_metrics(self) -> list[dict[str, Any]]:
        """The epoch records; a torn last line (a kill while writing) is ignored."""
        if not self.metrics_file.is_file():
            return []
        records = []
        for line in self.metrics_file.read_text(encoding="utf-8").splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return records

    def truncate_metrics(self, last_epoch: int) -> None:
        """Keep only the records of epochs ``<= last_epoch`` (used when resuming)."""
        kept = [r for r in self.read_metrics() if int(r.get("epoch", 0)) <= last_epoch]
        atomic_write_text(self.metrics_file, "".join(json.dumps(r, sort_keys=True) + "\n" for r in kept))


# --------------------------------------------------------------------------------------------------
# checkpoints


def epoch_stem(epoch: int) -> str:
    return f"epoch-{epoch:04d}"


def save_checkpoint(
    directory: str | Path,
    epoch: int,
    *,
    model_tensors: Mapping[str, torch.Tensor],
    state_tensors: Mapping[str, torch.Tensor],
    config: Mapping[str, Any],
    keep: Iterable[int] = (),
) -> Path:
    """Write the checkpoint of ``epoch`` (1-based) and return the path of its config JSON.

    Writes ``epoch-NNNN.safetensors`` (model), ``epoch-NNNN.state.safetensors`` (optimizer and RNG
    tensors), then ``epoch-NNNN.json`` (``config`` plus the file names and their sha256). Then
    removes older checkpoints except the epochs in ``keep`` (of those only the model weights and
    JSON stay: they cannot be resumed from, but can be loaded for inference).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    stem = epoch_stem(epoch)
    model_file = directory / f"{stem}.safetensors"
    state_file = directory / f"{stem}.state.safetensors"
    atomic_save_tensors(model_file, model_tensors, {"format": CHECKPOINT_FORMAT, "kind": "model"})
    atomic_save_tensors(state_file, state_tensors, {"format": CHECKPOINT_FORMAT, "kind": "state"})
    full = dict(config)
    full.update(
        format=CHECKPOINT_FORMAT,
        epoch=epoch,
        model_file=model_file.name,
        state_file=state_file.name,
        sha256={model_file.name: file_sha256(model_file), state_file.name: file_sha256(state_file)},
    )
    config_file = directory / f"{stem}.json"
    atomic_write_json(config_file, full)
    keep = set(keep)
    for other, path in _epoch_configs(directory):
        if other == epoch:
            continue
        if other in keep:
            (directory / f"{epoch_stem(other)}.state.safetensors").unlink(missing_ok=True)
            continue
        path.unlink(missing_ok=True)
        (directory / f"{epoch_stem(other)}.safetensors").unlink(missing_ok=True)
        (directory / f"{epoch_stem(other)}.state.safetensors").unlink(missing_ok=True)
    return config_file


def _epoch_configs(directory: Path) -> list[tuple[int, Path]]:
    out = []
    if directory.is_dir():
        for path in directory.iterdir():
            m = _EPOCH_JSON.match(path.name)
            if m:
                out.append((int(m.group(1)), path))
    return sorted(out)


def read_checkpoint_config(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint config JSON; :class:`QeframeError` when missing, damaged or of another format."""
    path = Path(path)
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise QeframeError(f"checkpoint config {str(path)!r} not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise QeframeError(f"checkpoint config {str(path)!r} is damaged: {exc}") from None
    if not isinstance(config, dict) or config.get("format") != CHECKPOINT_FORMAT:
        raise QeframeError(f"{str(path)!r} is not a qeframe checkpoint config ({CHECKPOINT_FORMAT})")
    return config


def latest_checkpoint(directory: str | Path) -> Path | None:
    """The config JSON of the newest complete, resumable checkpoint in ``directory`` (or ``None``).

    Complete means the config parses and both tensor files it names exist with the recorded sha256.
    """
    directory = Path(directory)
    for _epoch, path in reversed(_epoch_configs(directory)):
        try:
            config = read_checkpoint_config(path)
        except QeframeError:
            continue
        files = [config.get("model_file"), config.get("state_file")]
        hashes = config.get("sha256", {})
        if all(
            f and (directory / f).is_file() and file_sha256(directory / f) == hashes.get(f) for f in files
        ):
            return path
    return None


def selected_model(run: RunDir) -> tuple[Path, dict[str, Any]]:
    """The weights file and config of the run's selected model.

    ``checkpoints/best.json`` when training finished; otherwise the newest epoch config's
    ``best_epoch`` (so a model can be used while, or after, a run is interrupted).
    Raises :class:`QeframeError` when the run has no usable checkpoint.
    """
    best = run.checkpoints / "best.json"
    if best.is_file():
        config = read_checkpoint_config(best)
        return run.checkpoints / config["model_file"], config
    configs = _epoch_configs(run.checkpoints)
    for _epoch, path in reversed(configs):
        try:
            config = read_checkpoint_config(path)
        except QeframeError:
            continue
        best_epoch = int(config.get("best_epoch") or config["epoch"])
        weights = run.checkpoints / f"{epoch_stem(best_epoch)}.safetensors"
        if weights.is_file():
            if best_epoch != config["epoch"]:
                config = dict(config, epoch=best_epoch, model_file=weights.name)
            return weights, config
    raise QeframeError(
        f"run folder {str(run.path)!r} has no checkpoint (checkpoints/ holds no complete epoch)"
    )


def write_best(run: RunDir, config: Mapping[str, Any]) -> Path:
    """Copy the selected epoch's weights to ``best.safetensors`` and write ``best.json``."""
    epoch = int(config["best_epoch"])
    src = run.checkpoints / f"{epoch_stem(epoch)}.safetensors"
    tensors = load_tensors(src)
    target = run.checkpoints / "best.safetensors"
    atomic_save_tensors(target, tensors, {"format": CHECKPOINT_FORMAT, "kind": "model"})
    best = {k: v for k, v in config.items() if k not in ("state_file", "sha256", "optimizer")}
    best.update(epoch=epoch, model_file=target.name, sha256={target.name: file_sha256(target)})
    path = run.checkpoints / "best.json"
    atomic_write_json(path, best)
    return path


def check_compatible(
    config: Mapping[str, Any],
    *,
    backbone: str,
    params: Mapping[str, Any],
    n_qubits: int,
    source: str = "checkpoint",
) -> None:
    """Raise :class:`QeframeError` when a checkpoint was written for another backbone, params or size.

    ``params`` are the backbone's *validated* params (``Params.model_dump(mode="json")``), so that a
    default written out and a default left out compare equal.
    """
    problems = []
    if config.get("backbone") != backbone:
        problems.append(f"backbone {config.get('backbone')!r} != {backbone!r}")
    if config.get("n_qubits") != n_qubits:
        problems.append(f"n_qubits {config.get('n_qubits')} != {n_qubits}")
    if dict(config.get("params") or {}) != dict(params):
        problems.append(
            f"params {json.dumps(config.get('params'), sort_keys=True)} != {json.dumps(dict(params), sort_keys=True)}"
        )
    if problems:
        raise QeframeError(f"{source} does not match the spec: " + "; ".join(problems))
