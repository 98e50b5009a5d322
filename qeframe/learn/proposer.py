"""A learned proposer for the ``aligned_witness`` proof stage: a network that guesses the local unitary.

**What it does.** The stage :func:`qeframe.quantum.filter_witness.aligned_witness_proofs` brings a
``q | rest`` cut to filter normal form (FNF) ``sigma`` and then searches local unitaries
``U = exp(i h_A) ⊗ exp(i h_B)`` that make ``tr(W_k^F U sigma U^†)`` negative for a library witness
``k``. :class:`AlignmentProposer` maps ``sigma`` to ``S`` candidate generator sets per library witness,
``(M, S, K, 8 + 2 D^2)`` — exactly the ``starts`` that :func:`~qeframe.quantum.alignment_search.search_alignment`
takes — so the search starts from the network's guesses (and may run few or no Adam steps).

**Why it can never create a false proof.** A candidate is only a start; every cut the stage
reports proved passed :func:`~qeframe.quantum.filter_witness.verify_aligned` in float64 with its
error budget, and ``H^† W H`` is block-positive for *any* local ``H`` (Horodecki^3, Phys. Lett. A
223, 1 (1996); Terhal, Phys. Lett. A 271, 319 (2000)). A wrong or adversarial proposer only costs
recall.

**Design.** Input: ``d (sigma - 1/d)`` as real and imaginary channels, flattened (``2 d^2``
numbers, ``d = 2^n``); a multilayer perceptron (``depth`` hidden layers of width ``hidden``, GELU);
output per candidate and witness the ``4 + D^2`` real parameters of the two Hermitian generators
``h_A`` (2 x 2) and ``h_B`` (D x D), mapped linearly onto the search's generator layout (Hermitian
``X`` gives ``(X + X^†)/2 = X``). The map state -> aligning unitary is multi-valued: the FNF targets
have a continuous local-unitary stabiliser (docs/beyond-ppt.md, "What is not done here"), so the
network proposes ``S`` candidates and is trained by a min-over-candidates loss (Guzman-Rivera,
Batra, Kohli, "Multiple choice learning", NIPS 2012) on the objective itself — no labels
(:mod:`qeframe.learn.proposer_training`).

**Files** (a folder; nothing is unpickled): ``proposer.json`` (format, architecture, the library
witness names it was trained for, seed, training record, the sha256 of the weights file and a
content hash over architecture + weights) and ``weights.safetensors`` (float32).
:func:`load_proposer` checks both hashes and the library names before it builds the network.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch

from qeframe.errors import QeframeError

PROPOSER_FORMAT = "qeframe-proposer/1"
#: Shipped proposers (``<repository>/proposers/<name>``), found by name from any working directory.
PROPOSERS_DIR = Path(__file__).resolve().parents[2] / "proposers"
SPEC_FILE = "proposer.json"
WEIGHTS_FILE = "weights.safetensors"


@dataclass(frozen=True)
class ProposerSpec:
    """The architecture of an :class:`AlignmentProposer` (what determines the shapes).

    ``n_qubits``: states of ``n`` qubits (cuts ``q | rest``, ``D = 2^(n-1)``); ``candidates``: ``S``
    starts per library witness; ``hidden`` / ``depth``: the MLP; ``library``: names of the library
    witnesses (:attr:`qeframe.quantum.alignment_search.AlignedLibrary.names`), in order.
    """

    n_qubits: int
    candidates: int
    hidden: int
    depth: int
    library: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.n_qubits < 2 or self.candidates < 1 or self.hidden < 1 or self.depth < 1:
            raise QeframeError(f"invalid proposer architecture: {self}")

    @property
    def d(self) -> int:
        return 2**self.n_qubits

    @property
    def n_params(self) -> int:
        """Length of one start in the search's layout, ``8 + 2 D^2``."""
        db = self.d // 2
        return 8 + 2 * db * db

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "library": list(self.library)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ProposerSpec:
        try:
            return cls(
                n_qubits=int(data["n_qubits"]),
                candidates=int(data["candidates"]),
                hidden=int(data["hidden"]),
                depth=int(data["depth"]),
                library=tuple(str(x) for x in data["library"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise QeframeError(f"proposer architecture incomplete or malformed: {exc!r}") from None


def hermitian_map(p: int) -> np.ndarray:
    """``(p^2, 2 p^2)`` float64: real parameters of a Hermitian ``p x p`` matrix -> the search layout.

    Parameters: ``p`` diagonal entries, then the real and the imaginary parts of the ``p(p-1)/2``
    upper-triangle entries (row-major). Layout (:func:`~qeframe.quantum.alignment_search.local_unitaries`):
    ``x[i, j, 0] = Re X_ij``, ``x[i, j, 1] = Im X_ij`` flattened row-major.
    """
    m = np.zeros((p * p, p, p, 2))
    row = 0
    for i in range(p):
        m[row, i, i, 0] = 1.0
        row += 1
    upper = [(i, j) for i in range(p) for j in range(i + 1, p)]
    for i, j in upper:
        m[row, i, j, 0] = m[row, j, i, 0] = 1.0
        row += 1
    for i, j in upper:
        m[row, i, j, 1], m[row, j, i, 1] = 1.0, -1.0
        row += 1
    return m.reshape(p * p, 2 * p * p)


def state_features(sigma: torch.Tensor) -> torch.Tensor:
    """``(M, d, d)`` complex FNF states -> ``(M, 2 d^2)`` real: ``d (sigma - 1/d)``, real then imaginary."""
    d = sigma.shape[-1]
    x = d * (sigma - torch.eye(d, dtype=sigma.dtype, device=sigma.device) / d)
    return torch.cat([x.real.flatten(1), x.imag.flatten(1)], dim=1)


class AlignmentProposer(torch.nn.Module):
    """``(M, d, d)`` complex FNF states -> ``(M, S, K, 8 + 2 D^2)`` start parameters (module docstring)."""

    def __init__(self, spec: ProposerSpec) -> None:
        super().__init__()
        self.spec = spec
        db = spec.d // 2
        k = len(spec.library)
        width = 2 * spec.d * spec.d
        layers: list[torch.nn.Module] = []
        for _ in range(spec.depth):
            layers += [torch.nn.Linear(width, spec.hidden), torch.nn.GELU()]
            width = spec.hidden
        self.body = torch.nn.Sequential(*layers)
        self.head = torch.nn.Linear(width, spec.candidates * k * (4 + db * db))
        # fixed linear maps onto the search's layout (not stored: they follow from the spec)
        self.register_buffer("map_a", torch.from_numpy(hermitian_map(2)).float(), persistent=False)
        self.register_buffer("map_b", torch.from_numpy(hermitian_map(db)).float(), persistent=False)

    def forward(self, sigma: torch.Tensor) -> torch.Tensor:
        """``sigma`` ``(M, d, d)`` complex64/128 -> ``(M, S, K, 8 + 2 D^2)`` float32."""
        x = state_features(sigma.to(torch.complex64))
        out = self.head(self.body(x)).reshape(x.shape[0], self.spec.candidates, len(self.spec.library), -1)
        return torch.cat([out[..., :4] @ self.map_a, out[..., 4:] @ self.map_b], dim=-1)

    @torch.no_grad()
    def propose(self, sigma: np.ndarray, chunk: int = 4096) -> np.ndarray:
        """The ``propose`` callable of :func:`~qeframe.quantum.filter_witness.aligned_witness_proofs`:
        ``(M, d, d)`` complex128 -> ``(M, S, K, 8 + 2 D^2)`` float64 (batched, no gradients)."""
        sigma = np.asarray(sigma)
        if sigma.ndim != 3 or sigma.shape[1:] != (self.spec.d, self.spec.d):
            raise QeframeError(
                f"proposer for {self.spec.n_qubits} qubits expects (M, {self.spec.d}, {self.spec.d}) "
                f"states, got shape {sigma.shape}"
            )
        self.eval()
        out = np.empty((len(sigma), self.spec.candidates, len(self.spec.library), self.spec.n_params))
        for lo in range(0, len(sigma), chunk):
            out[lo : lo + chunk] = self(torch.from_numpy(sigma[lo : lo + chunk])).double().numpy()
        return out


# --------------------------------------------------------------------------------------------------
# files


@dataclass
class ProposerRecord:
    """What ``proposer.json`` holds besides the architecture: seed, training record, hashes."""

    seed: int
    training: dict[str, Any] = field(default_factory=dict)
    search: dict[str, Any] = field(default_factory=dict)


def content_hash(spec: ProposerSpec, weights_sha256: str) -> str:
    """sha256 of the canonical JSON of the architecture and the weights' sha256: the proposer's identity."""
    blob = json.dumps(
        {"spec": spec.to_dict(), "weights": weights_sha256}, sort_keys=True, separators=(",", ":")
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def save_proposer(folder: str | Path, model: AlignmentProposer, record: ProposerRecord) -> str:
    """Write ``folder/weights.safetensors`` then ``folder/proposer.json`` (atomically); returns the
    content hash."""
    from qeframe.io import atomic_write_json
    from qeframe.learn.runs import atomic_save_tensors, file_sha256

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    atomic_save_tensors(folder / WEIGHTS_FILE, model.state_dict())
    sha = file_sha256(folder / WEIGHTS_FILE)
    data = {
        "format": PROPOSER_FORMAT,
        "spec": model.spec.to_dict(),
        "seed": record.seed,
        "training": record.training,
        "search": record.search,
        "weights": WEIGHTS_FILE,
        "sha256": {WEIGHTS_FILE: sha},
        "content_hash": content_hash(model.spec, sha),
    }
    atomic_write_json(folder / SPEC_FILE, data)
    return data["content_hash"]


def resolve_proposer(source: str | Path) -> Path:
    """The proposer folder ``source`` names: a folder path, else a shipped name under :data:`PROPOSERS_DIR`."""
    path = Path(source).expanduser()
    if (path / SPEC_FILE).is_file():
        return path
    shipped = PROPOSERS_DIR / path.name
    if len(path.parts) <= 2 and (shipped / SPEC_FILE).is_file():
        return shipped
    names = (
        sorted(p.name for p in PROPOSERS_DIR.iterdir() if (p / SPEC_FILE).is_file())
        if PROPOSERS_DIR.is_dir()
        else []
    )
    raise QeframeError(
        f"proposer {str(source)!r} not found: no {SPEC_FILE} there (shipped proposers: {', '.join(names) or 'none'})"
    )


def load_proposer(source: str | Path) -> tuple[AlignmentProposer, dict[str, Any]]:
    """Load a proposer folder (path or shipped name); returns the model (eval mode) and its JSON.

    Checks (each a one-line :class:`QeframeError`): the format, the weights' sha256 and the content
    hash against ``proposer.json``, that the library names equal today's
    :func:`~qeframe.quantum.filter_witness.aligned_library` for its ``n_qubits``, and that the
    tensors fit the architecture. Nothing is unpickled (safetensors + JSON).
    """
    from qeframe.io import read_json_object
    from qeframe.learn.checkpoints import load_state
    from qeframe.learn.runs import file_sha256, load_tensors
    from qeframe.quantum.filter_witness import aligned_library

    folder = resolve_proposer(source)
    data = read_json_object(folder / SPEC_FILE)
    if data is None or data.get("format") != PROPOSER_FORMAT:
        raise QeframeError(
            f"{folder / SPEC_FILE}: not a qeframe proposer file (format != {PROPOSER_FORMAT!r})"
        )
    spec = ProposerSpec.from_dict(data.get("spec") or {})
    weights = folder / str(data.get("weights", WEIGHTS_FILE))
    if not weights.is_file():
        raise QeframeError(f"{weights}: proposer weights missing")
    sha = file_sha256(weights)
    if sha != (data.get("sha256") or {}).get(weights.name):
        raise QeframeError(f"{weights}: does not match the sha256 recorded in {SPEC_FILE}")
    if content_hash(spec, sha) != data.get("content_hash"):
        raise QeframeError(f"{folder / SPEC_FILE}: content hash does not match its architecture and weights")
    names = aligned_library(spec.n_qubits).names
    if tuple(spec.library) != tuple(names):
        raise QeframeError(
            f"{folder}: trained for library {list(spec.library)}, the built-in library is {list(names)}"
        )
    model = AlignmentProposer(spec)
    load_state(model, load_tensors(weights), str(weights))
    model.eval()
    return model, data


@lru_cache(maxsize=8)
def _cached(folder: str, mtime_ns: int) -> tuple[AlignmentProposer, dict[str, Any]]:
    model, data = load_proposer(folder)
    return model, data.get("search") or {}


def proposer_for_stage(source: str | Path) -> tuple[AlignmentProposer, dict[str, Any]]:
    """:func:`load_proposer`, cached per process (keyed on the folder and its ``proposer.json`` mtime);
    returns the model and its recorded ``search`` settings (``restarts``, ``steps``; may be empty)."""
    folder = resolve_proposer(source).resolve()
    model, search = _cached(str(folder), (folder / SPEC_FILE).stat().st_mtime_ns)
    return model, {k: int(v) for k, v in search.items() if k in ("restarts", "steps")}


def check_proposer(source: str, key: str = "prediction.proposer", n_qubits: int | None = None) -> None:
    """Load the proposer ``source`` once (every check of :func:`load_proposer`), and check it is for
    ``n_qubits`` when given; a failure is one :class:`QeframeError` line that names ``key``."""
    try:
        model, _ = proposer_for_stage(source)
    except QeframeError as exc:
        raise QeframeError(f"{key} = {source!r}: {exc}") from None
    if n_qubits is not None and model.spec.n_qubits != n_qubits:
        raise QeframeError(
            f"{key} = {source!r}: trained for {model.spec.n_qubits} qubits, the data have {n_qubits}"
        )
