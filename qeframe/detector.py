"""The Python API for notebooks: load a trained model, ask it about density matrices.

::

    import qeframe
    detector = qeframe.load("pretrained/paper-gated-pe")   # or a run folder: runs/<experiment>/<run-id>
    result = detector.predict(states)                       # numpy, torch or qiskit
    result.labels          # (N, n_cuts) int8: 1 entangled, 0 separable, -1 unknown
    result.probabilities   # (N, n_cuts) float64 P(entangled), after the PPT gate and calibration
    result.proof           # per state and cut: "npt", an entangled or separable proof's name, or None
    result.cuts            # ["1|23", "2|13", "3|12"]

This is the code behind ``qeframe classify FILE --run RUN_DIR``: the command opens the run with
:meth:`Detector.from_run`, reads the file and calls :meth:`Detector.predict`; its ``--json``
output is :meth:`DetectionResult.to_dict` plus the file name. So a notebook and the command give
the same numbers for the same matrices.

**Loading** (:func:`load`, :meth:`Detector.from_run`): the run's selected model —
``checkpoints/best.json`` and its weights, or for an ensemble run the router and every member
(:func:`qeframe.learn.ensemble.load_ensemble`) — rebuilt through the plugin registry from the JSON
config, and the run's prediction layer (``prediction.json``, :func:`qeframe.learn.prediction.load_prediction`:
PPT gate, calibration, thresholds, proof stages; a run without one is answered with the gate and
the raw model probability, flagged uncalibrated). Only JSON and safetensors are read, so loading
never unpickles (never executes) anything, and the weights are checked against the sha256 their
checkpoint config records (:func:`qeframe.learn.runs.load_model_weights`). Nothing is written to the
run folder.

**Inputs** (:func:`as_density_matrices`), one state or a batch:

* numpy arrays ``(2**n, 2**n)`` or ``(B, 2**n, 2**n)`` (any numeric dtype, read as complex128)
  and nested lists of numbers, in qeframe's **big-endian** order (qubit 1 is the leftmost
  Kronecker factor, as in textbooks and toqito);
* torch tensors of the same shapes (any device; detached and copied to the CPU);
* qiskit :class:`~qiskit.quantum_info.DensityMatrix`, :class:`~qiskit.quantum_info.Statevector`
  (read as ``|psi><psi|``) and :class:`~qiskit.QuantumCircuit` (simulated from ``|0...0>``),
  converted from qiskit's little-endian order by :func:`qeframe.quantum.qiskit_interop.from_qiskit`:
  qiskit qubit ``k`` is qubit ``k + 1`` in cut names;
* a list or tuple of any of these, one state per element.

Every batch then passes :func:`qeframe.quantum.validation.validate_density_matrices` — the checks
of ``classify`` (shape and qubit count, finite, Hermitian, unit trace, positive semidefinite, each
within ``1e-8``). A failed check raises :class:`~qeframe.errors.InvalidDensityMatrixError` whose
``check`` and ``index`` name the check and the first offending state.

**Answers** per state and cut (:mod:`qeframe.learn.prediction`): an NPT cut is entangled with proof
``npt`` (Peres, PRL 77, 1413 (1996)); a run whose ``prediction.json`` lists proof stages may prove
PPT cuts entangled (``witness``, ``realignment``, ``aligned_witness``) and, with
``separable_proofs``, separable (``pure``, ``rank``, ``support``, ``product``, ``ball``,
``spectrum``: :mod:`qeframe.quantum.separable_proofs`); the calibrated model answers the rest entangled,
separable or unknown (two-valued at the run's threshold when uncalibrated).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from qeframe.errors import InvalidDensityMatrixError, QeframeError

if TYPE_CHECKING:
    import torch

    from qeframe.learn.prediction import Prediction, PredictionConfig
    from qeframe.learn.runs import RunDir
    from qeframe.plugin.registry import Registry

__all__ = ["DetectionResult", "Detector", "as_density_matrices", "load", "shipped_models"]

#: The pretrained run folders shipped with a source checkout (``<repository>/pretrained``).
PRETRAINED_DIR = Path(__file__).resolve().parents[1] / "pretrained"
#: One-letter answers of tables: entangled, separable, unknown.
SHORT_ANSWERS = {"entangled": "E", "separable": "S", "unknown": "?"}


# --------------------------------------------------------------------------------------------------
# finding a run


def shipped_models() -> list[str]:
    """Names of the pretrained run folders in :data:`PRETRAINED_DIR` (empty when not shipped)."""
    if not PRETRAINED_DIR.is_dir():
        return []
    return sorted(p.name for p in PRETRAINED_DIR.iterdir() if p.is_dir())


def resolve_run(source: str | os.PathLike[str]) -> Path:
    """The run folder that ``source`` names.

    ``source`` is a folder path (``runs/<experiment>/<run-id>``, ``pretrained/<name>``, absolute
    or relative to the working directory); when no such folder exists, ``<name>`` or
    ``pretrained/<name>`` names a shipped pretrained model (:func:`shipped_models`), so that
    ``load("pretrained/paper-gated-pe")`` works from any working directory of a source checkout.
    Raises :class:`QeframeError` naming the shipped models when nothing matches.
    """
    path = Path(source).expanduser()
    if path.is_dir():
        return path
    parts = path.parts
    if len(parts) == 1 or (len(parts) == 2 and parts[0] == "pretrained"):
        shipped = PRETRAINED_DIR / parts[-1]
        if shipped.is_dir():
            return shipped
    names = ", ".join(shipped_models()) or "none in this installation"
    raise QeframeError(
        f"run folder {str(source)!r} not found (nor a pretrained model of that name; pretrained: {names})"
    )


def _open_run(path: Path) -> RunDir:
    """:meth:`RunDir.open` read-only; a folder of runs (``runs/<experiment>``, ``pretrained``) gets
    an error that names its runs."""
    from qeframe.learn.runs import RunDir

    try:
        return RunDir.open(path, create=False)
    except QeframeError:
        if path.is_dir():
            runs = sorted(p for p in path.iterdir() if p.is_dir() and (p / "spec.json").is_file())
            if runs:
                shown = ("..., " if len(runs) > 3 else "") + ", ".join(repr(p.name) for p in runs[-3:])
                raise QeframeError(
                    f"{str(path)!r} holds {len(runs)} run folder(s), it is not one; load one of them "
                    f"(run ids sort by start time, the newest last): {shown}"
                ) from None
        raise


# --------------------------------------------------------------------------------------------------
# inputs


def _package(obj: Any) -> str:
    return type(obj).__module__.partition(".")[0]


def _tensor_to_numpy(tensor: torch.Tensor) -> np.ndarray:
    """A torch tensor (any device, dtype numpy cannot hold widened) -> numpy, detached."""
    import torch

    tensor = tensor.detach()
    if tensor.dtype in (torch.float16, torch.bfloat16):
        tensor = tensor.float()
    elif tensor.dtype == torch.complex32:
        tensor = tensor.to(torch.complex64)
    return tensor.cpu().resolve_conj().resolve_neg().numpy()


def _one_state(obj: Any) -> np.ndarray:
    if _package(obj) == "qiskit":
        from qeframe.quantum.qiskit_interop import from_qiskit

        return from_qiskit(obj, density=True)
    if _package(obj) == "torch":
        return _tensor_to_numpy(obj)
    return np.asarray(obj)


def as_density_matrices(states: Any) -> np.ndarray:
    """``states`` as a big-endian numpy array, ``(d, d)`` or ``(N, d, d)`` for valid input.

    Accepts what :meth:`Detector.predict` accepts (see the module docstring): numpy arrays and
    nested lists (big-endian, unchanged), torch tensors (copied to the CPU), qiskit
    ``DensityMatrix`` / ``Statevector`` / ``QuantumCircuit`` (converted from little-endian by
    :func:`qeframe.quantum.qiskit_interop.from_qiskit`, a state vector to ``|psi><psi|``), and
    lists or tuples of those with one ``(d, d)`` state per element, stacked to ``(N, d, d)``.
    Nothing is validated here; :func:`~qeframe.quantum.validation.validate_density_matrices` does that.
    """
    if isinstance(states, np.ndarray):
        return states
    if isinstance(states, (list, tuple)) and any(
        isinstance(s, np.ndarray) or _package(s) in ("qiskit", "torch") for s in states
    ):
        matrices = [_one_state(s) for s in states]
        for i, m in enumerate(matrices):
            if m.ndim != 2:
                raise InvalidDensityMatrixError(
                    "shape",
                    f"shape check failed: list element {i} has shape {m.shape}; a list holds one "
                    "(2**n, 2**n) matrix or qiskit state per element",
                    i,
                )
        shapes = sorted({m.shape for m in matrices})
        if len(shapes) > 1:
            raise InvalidDensityMatrixError(
                "shape", f"shape check failed: the states of the list have different shapes {shapes}"
            )
        return np.stack(matrices)
    return _one_state(states)


# --------------------------------------------------------------------------------------------------
# the answer


def answer_cell(answer: str, proof: str | None, probability: float) -> str:
    """One answer as tables print it: ``"E npt"`` (with its proof) or ``"S 0.0123"`` (with P)."""
    return f"{SHORT_ANSWERS[answer]} {proof}" if proof else f"{SHORT_ANSWERS[answer]} {probability:.4f}"


@dataclass(frozen=True, eq=False)  # arrays have no single truth value: compare to_dict()
class DetectionResult:
    """What a :class:`Detector` answers for ``N`` states; arrays are ``(N, n_cuts)`` in cut order.

    A single input state gives ``N = 1``. Attributes:

    * ``cuts``: the cut names (:func:`qeframe.quantum.cuts.cut_names`), the column order;
    * ``probabilities``: float64 ``P(entangled)``: 1 on cuts proved entangled, 0 on cuts proved
      separable, else the calibrated model probability (the raw one for an uncalibrated run);
    * ``model_probabilities``: float64 ``sigmoid(logits)``, the network alone (also on NPT cuts);
    * ``logits``: float64 model logits;
    * ``labels``: int8 answers, 1 entangled / 0 separable / -1 unknown (the DESIGN label code);
    * ``answers``: the same as names, ``"entangled"`` / ``"separable"`` / ``"unknown"``;
    * ``proof``: the proof behind each answer, ``"npt"``, an entangled proof stage's name
      (``"witness"``, ``"realignment"``, ``"aligned_witness"``), a separable proof's name (``"pure"``,
      ``"rank"``, ``"support"``, ``"product"``, ``"ball"``, ``"spectrum"``) or ``None``;
    * ``npt``: bool, the cut's partial transpose is negative (the PPT gate's proof);
    * provenance of the answer: ``run`` (folder), ``epoch`` (of the selected weights, or
      ``"ensemble"``), ``calibrated``, ``prediction`` (one line describing gate, calibration and
      thresholds), ``thresholds`` (``{"separable": t_s, "entangled": t_e}`` on the calibrated p: separable when
      ``p <= t_s``, entangled when ``p >= t_e``), ``threshold``
      (the run's evaluation threshold), ``note`` (why a run is uncalibrated, else ``None``).
    """

    cuts: list[str]
    probabilities: np.ndarray
    model_probabilities: np.ndarray
    logits: np.ndarray
    labels: np.ndarray
    answers: list[list[str]]
    proof: list[list[str | None]]
    npt: np.ndarray
    run: str
    epoch: Any
    calibrated: bool
    prediction: str
    thresholds: dict[str, float]
    threshold: float
    note: str | None = None

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-safe structures (lists, numbers, strings): the ``qeframe classify --json``
        payload without its ``file`` field. An infinite threshold is the string ``"inf"``."""
        from qeframe.learn.prediction import json_float

        out: dict[str, Any] = {
            "run": self.run,
            "epoch": self.epoch,
            "cuts": list(self.cuts),
            "calibrated": self.calibrated,
            "prediction": self.prediction,
            "thresholds": {k: json_float(v) for k, v in self.thresholds.items()},
            "threshold": self.threshold,
            "probabilities": [[float(p) for p in row] for row in self.probabilities],
            "model_probabilities": [[float(p) for p in row] for row in self.model_probabilities],
            "answers": [list(row) for row in self.answers],
            "proof": [list(row) for row in self.proof],
            "entangled": (self.labels == 1).astype(int).tolist(),
        }
        if not self.calibrated:
            out["note"] = f"uncalibrated: {self.note}" if self.note else "uncalibrated"
        return out

    def rows(self, limit: int | None = None) -> list[list[str]]:
        """Table cells per state (:func:`answer_cell`), the first ``limit`` states (all: ``None``)."""
        n = len(self) if limit is None else min(len(self), limit)
        return [
            [answer_cell(a, p, q) for a, p, q in zip(self.answers[i], self.proof[i], self.probabilities[i])]
            for i in range(n)
        ]

    def __str__(self) -> str:
        """A plain-text table: one row per state (at most 50), one column per cut, then the
        prediction line. ``E``/``S``/``?`` entangled/separable/unknown, then the proof or P."""
        rows = self.rows(50)
        header = ["state", *self.cuts]
        body = [[str(i), *cells] for i, cells in enumerate(rows)]
        widths = [max(len(r[k]) for r in [header, *body]) for k in range(len(header))]
        lines = ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in [header, *body]]
        if len(self) > len(rows):
            lines.append(f"... {len(self) - len(rows)} more states")
        lines.append(self.prediction if self.calibrated else f"note: {self.to_dict()['note']}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        state = "calibrated" if self.calibrated else "uncalibrated"
        return f"<DetectionResult: {len(self)} states x {len(self.cuts)} cuts {self.cuts}, {state}>"


# --------------------------------------------------------------------------------------------------
# the detector


class Detector:
    """A trained model with its prediction layer, ready to answer per-cut questions.

    Make one with :func:`load` or :meth:`from_run`. Attributes: ``run`` (the run folder),
    ``model`` (a ``torch.nn.Module`` mapping ``(B, 2, d, d)`` float32 to ``(B, n_cuts)`` logits,
    in eval mode; an :class:`~qeframe.learn.ensemble.EnsembleModel` for ensemble runs), ``config`` (the
    checkpoint config or ensemble manifest), ``prediction`` (the
    :class:`~qeframe.learn.prediction.PredictionConfig`), ``threshold``, ``device``, ``n_qubits``,
    ``cuts``, ``epoch``, ``calibrated``, ``is_ensemble``.
    """

    def __init__(
        self,
        run: Path,
        model: torch.nn.Module,
        config: dict[str, Any],
        prediction: PredictionConfig,
        threshold: float,
        device: torch.device,
    ) -> None:
        self.run = run
        self.model = model.eval()
        self.config = config
        self.prediction = prediction
        self.threshold = threshold
        self.device = device

    @classmethod
    def from_run(
        cls, run: str | os.PathLike[str], *, device: Any = "auto", registry: Registry | None = None
    ) -> Detector:
        """The detector of the run folder ``run`` (a path, used as given).

        Args:
            run: a run folder (``runs/<experiment>/<run-id>``, ``pretrained/<name>``).
            device: ``"auto"`` (CUDA when available, with bf16 autocast as ``classify``), ``"cpu"``,
                ``"cuda"`` or a ``torch.device``.
            registry: the plugin registry that rebuilds the backbone (default: the process-wide
                one, :func:`qeframe.plugin.registry.get_registry`).

        Raises :class:`QeframeError` (one line) for a missing or damaged run folder, checkpoint,
        ensemble or ``prediction.json``.
        """
        from qeframe.learn.arrays import resolve_device
        from qeframe.learn.checkpoints import build_model_from_config, load_state
        from qeframe.learn.prediction import load_prediction
        from qeframe.learn.runs import load_model_weights, selected_model
        from qeframe.plugin.registry import get_registry

        run_dir = _open_run(Path(run))
        torch_device = resolve_device(device)
        registry = registry if registry is not None else get_registry()
        if (run_dir.path / "ensemble" / "ensemble.json").is_file():  # an ensemble run: route, then members
            from qeframe.learn.ensemble import load_ensemble

            model, config = load_ensemble(run_dir, registry, torch_device)
            config = {**config, "epoch": "ensemble"}
        else:
            weights, config = selected_model(run_dir)
            model = build_model_from_config(config, registry, torch_device)
            load_state(model, load_model_weights(weights, config, torch_device), str(weights))
        threshold = 0.5
        if run_dir.spec_file.is_file():
            spec = run_dir.read_spec().get("spec", {})
            threshold = float(spec.get("evaluation", {}).get("threshold", 0.5))
        prediction = load_prediction(run_dir, len(config["cuts"]), threshold)  # damaged: one-line error
        return cls(run_dir.path, model, config, prediction, threshold, torch_device)

    @property
    def n_qubits(self) -> int:
        return int(self.config["n_qubits"])

    @property
    def cuts(self) -> list[str]:
        return list(self.config["cuts"])

    @property
    def epoch(self) -> Any:
        return self.config.get("epoch")

    @property
    def calibrated(self) -> bool:
        return self.prediction.calibrated

    @property
    def is_ensemble(self) -> bool:
        return self.epoch == "ensemble"

    def predict(self, states: Any) -> DetectionResult:
        """Per-cut answers for ``states`` (one state or a batch; see :func:`as_density_matrices`).

        Validates exactly as ``qeframe classify`` (:func:`~qeframe.quantum.validation.validate_density_matrices`
        with this model's ``n_qubits``), computes the logits in batches on ``self.device`` and
        applies the run's prediction layer (:func:`qeframe.learn.prediction.predict`).

        Raises :class:`~qeframe.errors.InvalidDensityMatrixError` (``check``: ``shape``,
        ``finite``, ``hermitian``, ``trace`` or ``psd``; ``index``: the first offending state)
        and :class:`~qeframe.errors.QeframeError` for objects it cannot read.
        """
        from qeframe.learn.arrays import autocast_dtype
        from qeframe.learn.prediction import model_logits, predict
        from qeframe.quantum.validation import validate_density_matrices

        rho = validate_density_matrices(as_density_matrices(states), n_qubits=self.n_qubits)
        logits = model_logits(
            self.model, rho, device=self.device, amp_dtype=autocast_dtype("auto", self.device)
        )
        return self._result(predict(self.prediction, logits, rho))

    def _result(self, prediction: Prediction) -> DetectionResult:
        return DetectionResult(
            cuts=self.cuts,
            probabilities=prediction.probability,
            model_probabilities=prediction.raw,
            logits=prediction.logits,
            labels=prediction.answer,
            answers=prediction.answer_names(),
            proof=prediction.proof(),
            npt=prediction.npt,
            run=str(self.run),
            epoch=self.epoch,
            calibrated=self.prediction.calibrated,
            prediction=self.prediction.describe(),
            thresholds={"separable": self.prediction.t_separable, "entangled": self.prediction.t_entangled},
            threshold=self.threshold,
            note=self.prediction.note or None,
        )

    def __repr__(self) -> str:
        kind = "ensemble" if self.is_ensemble else f"{self.config.get('backbone')}, epoch {self.epoch}"
        state = "calibrated" if self.calibrated else "uncalibrated"
        return (
            f"<Detector {str(self.run)!r}: {kind}, {self.n_qubits} qubits, cuts {self.cuts}, "
            f"{state}, device {self.device}>"
        )


def load(
    source: str | os.PathLike[str], *, device: Any = "auto", registry: Registry | None = None
) -> Detector:
    """The :class:`Detector` of a run folder or shipped pretrained model.

    ``source``: a run folder (``runs/<experiment>/<run-id>``) or a pretrained model
    (``"pretrained/paper-gated-pe"``, or just ``"paper-gated-pe"``; :func:`shipped_models` lists
    them), resolved by :func:`resolve_run`. ``device`` and ``registry`` as in
    :meth:`Detector.from_run`.

    Example (a GHZ state is NPT on every cut, so the PPT gate proves it entangled)::

        >>> import numpy as np, qeframe
        >>> detector = qeframe.load("pretrained/paper-gated-pe", device="cpu")
        >>> ghz = np.zeros(8); ghz[[0, 7]] = 2 ** -0.5
        >>> result = detector.predict(np.outer(ghz, ghz))
        >>> result.cuts, result.labels.tolist(), result.proof
        (['1|23', '2|13', '3|12'], [[1, 1, 1]], [['npt', 'npt', 'npt']])
    """
    return Detector.from_run(resolve_run(source), device=device, registry=registry)
