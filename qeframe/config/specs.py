"""``registry.toml`` as data: pydantic models for the frame, plugin ``Params`` for the rest.

The core validates the frame (which keys exist, their types); each plugin validates its own
``params`` table through its ``Params`` model when
:meth:`~qeframe.plugin.registry.Registry.create` builds it.
Every error names the ``registry.toml`` key, e.g.
``datasets.quickstart-train.families[2].params.b: Input should be less than 1``.

Layout::

    [datasets.NAME]                 # one dataset store data/NAME/
    n_qubits = 3
    seed = 1234
    split = "train"                 # train | validation | test
    labeler = { name = "negativity", params = {} }
    [[datasets.NAME.families]]
    family = "circuit"
    count = 40000
    params = { kind = "separable" }

    [experiments.NAME]
    train = "dataset"               # dataset names
    validation = ["dataset", ...]
    test = ["dataset", ...]
    model = { backbone = "cnn", params = {} }
    prediction = { gate = "ppt", calibration = "platt", target_fpr = 0.01 }
    [experiments.NAME.training] ...
    [experiments.NAME.evaluation] ...

Entries may use templates and inheritance (``extends``, ``scale``, ``override``,
``families_extra``, ``include``); :func:`parse_registry` expands them with
:func:`qeframe.config.templates.expand_registry` before validating, so the models here only ever
see entries written out in full.
"""

from __future__ import annotations

import hashlib
import json
import math
import tomllib
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from qeframe.config.templates import expand_registry
from qeframe.errors import SpecError
from qeframe.plugin.registry import Registry, format_validation_error

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
#: Free text of a dataset spec: shown in tables and recorded in the store's manifest, but no part of
#: the stored arrays, so left out of :meth:`DatasetSpec.identity_hash` (a typo fix never rebuilds a
#: store): the dataset's ``description`` and each family entry's ``tag``.
FREE_TEXT = ("description", "families[].tag")


class Frame(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ComponentRef(Frame):
    """A plugin by name with its parameters (validated later by the plugin's ``Params``)."""

    name: str = Field(description="plugin name (see `qeframe plugins`)")
    params: dict[str, Any] = Field(default_factory=dict, description="the plugin's own parameters")


class FamilyEntry(Frame):
    """``count`` states from ``family`` with ``params``; ``tag`` names the group in tables."""

    family: str = Field(description="state-family plugin name")
    count: int = Field(gt=0, description="number of states kept after labelling")
    params: dict[str, Any] = Field(default_factory=dict, description="the family's parameters (below)")
    tag: str | None = Field(
        default=None,
        description="name of this group in tables (default: the family); free text: renaming it "
        "updates a built store's manifest, never its arrays",
    )

    @property
    def label(self) -> str:
        return self.tag or self.family


class DatasetSpec(Frame):
    """One dataset: families and counts, the labeler, the seed; built into ``data/<name>/``."""

    n_qubits: int = Field(default=3, ge=2, le=10, description="qubits per state; matrices are 2**n x 2**n")
    seed: int = Field(
        ge=0,
        description="root of the SeedSequence: same spec + seed = same content hash (with the same numpy build and CPU kind)",
    )
    split: Literal["train", "validation", "test"] = Field(default="train", description="what the set is for")
    labeler: ComponentRef = Field(description='labeler plugin: `"name"` or `{ name = ..., params = {...} }`')
    families: list[FamilyEntry] = Field(min_length=1, description="the groups of states, in order")
    description: str = Field(
        default="",
        description="free text, recorded in the store's manifest; not part of the store's identity, "
        "so editing it never rebuilds the store",
    )

    @field_validator("labeler", mode="before")
    @classmethod
    def _labeler_shorthand(cls, v: Any) -> Any:
        return {"name": v} if isinstance(v, str) else v

    def canonical(self) -> dict[str, Any]:
        """The spec as plain JSON data with defaults filled in (what the hash covers)."""
        return self.model_dump(mode="json")

    def spec_hash(self) -> str:
        """sha256 of the canonical JSON of the whole spec, free text included (what the registry says;
        recorded in manifests and run folders). What decides a rebuild is :meth:`identity_hash`."""
        blob = json.dumps(self.canonical(), sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(blob).hexdigest()

    def identity(self) -> dict[str, Any]:
        """:meth:`canonical` without the free text of :data:`FREE_TEXT` (``description``, the tags)."""
        data = self.canonical()
        data.pop("description", None)
        for entry in data["families"]:
            entry.pop("tag", None)
        return data

    def identity_hash(self) -> str:
        """sha256 of the canonical JSON of :meth:`identity`: equal for two specs exactly when they make
        the same stored arrays (store format 3 on; :mod:`qeframe.data.format`)."""
        blob = json.dumps(self.identity(), sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(blob).hexdigest()


class SymmetryLoss(Frame):
    """A symmetry that enters the Siamese consistency loss, with its weight schedule.

    The weight is ``weight_before`` for epochs ``< start_epoch`` (0-based) and ``weight`` from then on
    (the paper: 0 for the first 10 epochs, then 0.5).
    """

    name: str = Field(description="symmetry plugin name")
    params: dict[str, Any] = Field(default_factory=dict, description="the symmetry's parameters")
    weight: float = Field(
        default=0.5, ge=0, description="weight of the consistency term from `start_epoch` on"
    )
    weight_before: float = Field(default=0.0, ge=0, description="weight before `start_epoch`")
    start_epoch: int = Field(default=10, ge=0, description="first (0-based) epoch with `weight`")

    def weight_at(self, epoch: int) -> float:
        return self.weight if epoch >= self.start_epoch else self.weight_before


class ModelSpec(Frame):
    """The network: a backbone plugin and its parameters."""

    backbone: str = Field(description="backbone plugin name")
    params: dict[str, Any] = Field(default_factory=dict, description="the backbone's parameters")


class TrainingSpec(Frame):
    """Optimisation: Adam on masked BCE plus the Siamese consistency terms of ``symmetries``."""

    epochs: int = Field(default=20, gt=0, description="passes over the training set")
    batch_size: int = Field(default=128, gt=0, description="global batch size")
    lr: float = Field(default=1e-3, gt=0, description="Adam learning rate (the peak of a schedule)")
    lr_schedule: Literal["constant", "onecycle", "cosine"] = Field(
        default="constant",
        description="learning rate per step over all `epochs`: constant | onecycle (warm-up to `lr` in "
        "the first 30 % of the steps, then cosine annealing; Smith & Topin 2019) | cosine (from `lr` to 0)",
    )
    weight_decay: float = Field(default=0.0, ge=0, description="Adam weight decay")
    bce_weight: float = Field(
        default=1.0, ge=0, description="l0: weight of the BCE term (unknown labels masked)"
    )
    symmetries: list[SymmetryLoss] = Field(
        default_factory=list, description="consistency terms (empty: plain CNN)"
    )
    symmetry_fraction: float = Field(
        default=1.0,
        gt=0,
        le=1,
        description="share of each batch (its first ceil(f B) samples, a random subset) that gets "
        "symmetry views; the consistency terms average over those",
    )
    view_bce_weight: float = Field(
        default=0.0,
        ge=0,
        description="weight of a BCE term on the symmetry views, labelled with their originals' labels "
        "moved by the cut map (a symmetry preserves entanglement per cut); 0: the views enter only "
        "the consistency terms, as in the paper",
    )
    seed: int = Field(default=0, ge=0, description="seeds initialisation, shuffling and symmetry sampling")
    precision: Literal["auto", "float32", "bf16"] = Field(
        default="auto", description="auto: bf16 autocast on CUDA, float32 on CPU"
    )
    select: Literal["best-validation", "last"] = Field(
        default="best-validation", description="which epoch's weights the run keeps"
    )
    compile: bool = Field(
        default=False,
        description="torch.compile the model (CUDA: mode reduce-overhead, i.e. CUDA graphs); the same "
        "loss up to rounding, not part of the spec hash",
    )

    #: fields added after runs were recorded: left out of the experiment spec hash at their default,
    #: so that the hashes (and run ids, ``--resume``) of older specs do not change
    HASH_OPTIONAL: ClassVar[dict[str, Any]] = {
        "lr_schedule": "constant",
        "symmetry_fraction": 1.0,
        "view_bce_weight": 0.0,
    }
    #: fields that change how the loss is computed, not what it is: never hashed
    HASH_EXCLUDED: ClassVar[tuple[str, ...]] = ("compile",)

    def learning_rate(self, step: int, total_steps: int) -> float:
        """The learning rate of 0-based optimiser ``step`` of ``total_steps`` under ``lr_schedule``.

        ``onecycle`` is :class:`torch.optim.lr_scheduler.OneCycleLR` with its defaults and without
        cycling Adam's beta1 (Smith & Topin, "Super-convergence", Proc. SPIE 11006, 2019): cosine
        warm-up from ``lr / 25`` to ``lr`` until step ``0.3 T - 1``, then cosine annealing to
        ``lr / 25e4`` at step ``T - 1``. ``cosine`` anneals from ``lr`` at step 0 to 0 at step
        ``T - 1`` (Loshchilov & Hutter, "SGDR", ICLR 2017, without restarts).
        """
        if self.lr_schedule == "constant" or total_steps <= 1:
            return self.lr
        step = min(max(step, 0), total_steps - 1)
        last = float(total_steps - 1)

        def anneal(a: float, b: float, u: float) -> float:
            return b + (a - b) * 0.5 * (1.0 + math.cos(math.pi * u))

        if self.lr_schedule == "cosine":
            return anneal(self.lr, 0.0, step / last)
        start = self.lr / 25.0
        end = start / 1.0e4
        peak = 0.3 * total_steps - 1.0
        if step <= peak:
            return anneal(start, self.lr, step / peak) if peak > 0 else self.lr
        return anneal(self.lr, end, (step - peak) / (last - peak))


class EvaluationSpec(Frame):
    """Test-time settings: the classical baselines shown next to the model (PPT is always shown)."""

    baselines: list[str] = Field(default_factory=lambda: ["ppt"], description="baseline plugin names")
    threshold: float = Field(
        default=0.5, gt=0, lt=1, description="P(entangled) above which a cut is entangled"
    )


class PredictionSpec(Frame):
    """How the trained model answers per cut: PPT gate, calibration on PPT cuts, abstention thresholds.

    See :mod:`qeframe.learn.prediction` and docs/beyond-ppt.md.

    ``gate = "ppt"``: a cut whose partial transpose has ``lambda_min < -tol``
    (:func:`qeframe.quantum.ppt.npt_tolerance`) is entangled with proof ``npt``; the model decides
    only the PPT cuts. ``calibration`` is fitted on the PPT cuts with proved labels of the
    ``calibrate_on`` datasets (default: the validation sets): ``platt`` (``sigmoid(a z + b)`` per
    cut), ``temperature`` (``sigmoid(z / T)`` per cut) or ``none``. The thresholds are chosen on
    the same cuts: "entangled" when the calibrated ``p >= t_entangled`` with at most ``target_fpr``
    of the proved-separable PPT cuts above it, "separable" when ``p <= t_separable`` with at most
    ``target_fnr`` of the proved-entangled PPT cuts below it, "unknown" in between.
    ``ppt_entangled = "proof"`` withholds every "entangled" on a PPT cut that no proof stage
    (``proofs``) verified: the answer there is "unknown", so no separable PPT cut is ever called
    entangled (docs/beyond-ppt.md, section 9).
    """

    gate: Literal["ppt", "none"] = Field(
        default="ppt", description="`ppt`: NPT cuts are entangled (proof `npt`)"
    )
    calibration: Literal["platt", "temperature", "none"] = Field(
        default="none", description="calibration of P(entangled) on PPT cuts with proved labels"
    )
    target_fpr: float = Field(
        default=0.01, gt=0, lt=1, description="largest share of proved-separable PPT cuts called entangled"
    )
    target_fnr: float = Field(
        default=0.05, gt=0, lt=1, description="largest share of proved-entangled PPT cuts called separable"
    )
    calibrate_on: list[str] | None = Field(
        default=None,
        description="datasets whose proved PPT cuts fit calibration and thresholds (default: `validation`)",
    )
    min_class_count: int = Field(
        default=20,
        ge=1,
        description="a cut needs this many proved cuts of each class for its own fit (else pooled)",
    )
    proofs: list[Literal["witness", "realignment", "aligned_witness"]] = Field(
        default_factory=list,
        description="proof stages on PPT cuts after the gate, before the model: `witness` (verified "
        "library witnesses), `realignment` (realignment / correlation tensor in filter normal form), "
        "`aligned_witness` (library witnesses aligned to the state by a searched local filter)",
    )
    proof_search: Literal["screened", "all"] = Field(
        default="screened",
        description="where the expensive proof search (`aligned_witness`) runs: `screened` (on the PPT cuts "
        "the model does not answer `separable`) or `all` (every PPT cut; about 0.2 CPU-s per cut)",
    )
    proposer: str | None = Field(
        default=None,
        description="a trained alignment proposer (folder with `proposer.json`, or the name of one shipped "
        "under `proposers/`) whose candidates start the `aligned_witness` search, with the search budget "
        "it records; needs `aligned_witness` in `proofs`. Its answers are verified like every other start",
    )
    separable_proofs: list[Literal["rank", "product", "ball", "spectrum"]] = Field(
        default_factory=list,
        description="exact separability proofs on PPT cuts: a cut proved separable is answered `separable` "
        "with the proof named, whatever the model says: `rank` (pure / rank / 2x2-2x3 support rules), "
        "`product` (rho = rho_A ⊗ rho_B), `ball` (Gurvits-Barnum separable ball), `spectrum` (absolutely "
        "separable spectrum on 1|rest cuts); see qeframe.quantum.separable_proofs",
    )
    ppt_entangled: Literal["model", "proof"] = Field(
        default="model",
        description="who answers `entangled` on a PPT cut: `model` (the calibrated model, or a proof "
        "stage) or `proof` (only a proof stage; the model's unproved `entangled` becomes `unknown`)",
    )

    @field_validator("calibrate_on", mode="before")
    @classmethod
    def _one_or_many(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    @model_validator(mode="after")
    def _proposer_needs_search(self) -> PredictionSpec:
        if self.proposer is not None:
            if not self.proposer.strip():
                raise ValueError("prediction.proposer: empty; name a proposer folder or leave it out")
            if "aligned_witness" not in self.proofs:
                raise ValueError(
                    f"prediction.proposer = {self.proposer!r} needs 'aligned_witness' in prediction.proofs "
                    "(the proposer only seeds that search)"
                )
        return self


class RouterSpec(Frame):
    """An ensemble's router (:mod:`qeframe.learn.ensemble`): plugin ``name`` with ``params``; fitted on the
    dataset ``fit_on`` (default: the training set); a domain with fewer than ``min_domain_size``
    training samples is merged into its nearest non-empty neighbour."""

    name: str = Field(description="router plugin name")
    params: dict[str, Any] = Field(default_factory=dict, description="the router's parameters")
    fit_on: str | None = Field(default=None, description="dataset the router is fitted on (default: `train`)")
    min_domain_size: int = Field(default=256, ge=1, description="smaller domains merge into a neighbour")


class ExperimentSpec(Frame):
    """An experiment: datasets by name, model, training and evaluation."""

    train: str = Field(description="training dataset name")
    validation: list[str] = Field(
        default_factory=list, description="validation dataset names (model selection)"
    )
    test: list[str] = Field(default_factory=list, description="test dataset names: one column group each")
    model: ModelSpec = Field(description="`{ backbone = NAME, params = {...} }`")
    training: TrainingSpec = Field(default_factory=TrainingSpec, description="see below")
    evaluation: EvaluationSpec = Field(default_factory=EvaluationSpec, description="see below")
    router: RouterSpec | None = Field(
        default=None, description="set to train an ensemble routed by this plugin"
    )
    prediction: PredictionSpec = Field(
        default_factory=PredictionSpec,
        description="PPT gate, calibration and abstention thresholds (see below)",
    )
    description: str = Field(default="", description="free text")

    @field_validator("validation", "test", mode="before")
    @classmethod
    def _one_or_many(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v


class RegistryFile(Frame):
    """The whole ``registry.toml``."""

    datasets: dict[str, DatasetSpec] = Field(default_factory=dict)
    experiments: dict[str, ExperimentSpec] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _references(self) -> RegistryFile:
        import re

        for kind, table in (("datasets", self.datasets), ("experiments", self.experiments)):
            for name in table:
                if not re.match(NAME_PATTERN, name):
                    raise ValueError(f"{kind}.{name}: names may use letters, digits, '_', '.', '-'")
        known = ", ".join(sorted(self.datasets)) or "none"
        for name, exp in self.experiments.items():
            refs_by_field = [("train", [exp.train]), ("validation", exp.validation), ("test", exp.test)]
            if exp.prediction.calibrate_on is not None:
                refs_by_field.append(("prediction.calibrate_on", exp.prediction.calibrate_on))
            for field, refs in refs_by_field:
                for ref in refs:
                    if ref not in self.datasets:
                        raise ValueError(
                            f"experiments.{name}.{field}: unknown dataset {ref!r}; defined: {known}"
                        )
        return self

    def dataset(self, name: str) -> DatasetSpec:
        try:
            return self.datasets[name]
        except KeyError:
            raise SpecError(
                f"unknown dataset {name!r}; defined: {', '.join(sorted(self.datasets)) or 'none'}"
            ) from None

    def experiment(self, name: str) -> ExperimentSpec:
        try:
            return self.experiments[name]
        except KeyError:
            raise SpecError(
                f"unknown experiment {name!r}; defined: {', '.join(sorted(self.experiments)) or 'none'}"
            ) from None


def parse_registry(data: dict[str, Any]) -> RegistryFile:
    """Expand the templates of already-parsed TOML data (:mod:`qeframe.config.templates`), then
    validate it; raises :class:`SpecError` naming the key."""
    fields = {
        "datasets": DatasetSpec.model_fields,
        "experiments": ExperimentSpec.model_fields,
        "families": FamilyEntry.model_fields,
    }
    data = expand_registry(data, fields)
    try:
        return RegistryFile.model_validate(data)
    except ValidationError as exc:
        raise SpecError(format_validation_error(exc)) from None


def load_registry_file(path: str | Path = "registry.toml") -> RegistryFile:
    """Read and validate a ``registry.toml`` (the only place qeframe reads TOML)."""
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"registry file {str(path)!r} not found (use --registry PATH)")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{path}: invalid TOML: {exc}") from None
    return parse_registry(data)


def validate_dataset_plugins(name: str, spec: DatasetSpec, registry: Registry) -> None:
    """Check every family and the labeler exist and accept their params (errors name the key)."""
    key = f"datasets.{name}"
    labeler = spec.labeler
    registry.create(
        "labeler", labeler.name, labeler.params, key=f"{key}.labeler.params", name_key=f"{key}.labeler"
    )
    for i, entry in enumerate(spec.families):
        at = f"{key}.families[{i}]"
        registry.create("family", entry.family, entry.params, key=f"{at}.params", name_key=f"{at}.family")
        cls = registry.get("family", entry.family)
        if not cls.supports(spec.n_qubits):
            raise SpecError(f"datasets.{name}.families[{i}].family: {cls.unsupported_message(spec.n_qubits)}")
