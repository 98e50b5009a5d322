"""Test-only plugins and synthetic data for the trainer, evaluator and ``qeframe run`` tests.

* ``test-mlp``: a tiny MLP backbone (flatten -> hidden -> n_cuts logits).
* ``test-identity``: a symmetry that returns the batch unchanged with the identity cut map.
* ``test-permutation``: random qubit permutations with their cut maps (via ``torch_ops``).
* ``test-toy``: a state family of product states (all cuts separable) and GHZ-type states mixed
  with a little white noise (all cuts entangled), quick to generate and to learn.
* ``REGISTRY_TOML``: the ``toy`` experiment of the ``qeframe run`` tests; ``tiny_trained_run``: a
  run folder of one epoch.

Registered with ``Registry.load(entry_points=False, plugins=[...])`` or the ``qeframe_registry``
fixture; nothing here is installed.
"""

from __future__ import annotations

import numpy as np
import torch
from pydantic import Field

from qeframe import hookimpl
from qeframe.plugin.interfaces import Backbone, FamilyParams, Params, StateBatch, StateFamily, Symmetry
from qeframe.quantum.cuts import n_cuts


class MLPParams(Params):
    hidden: int = Field(default=32, gt=0)


class TinyMLP(Backbone):
    name = "test-mlp"
    description = "test-only MLP"
    Params = MLPParams

    def build(self, n_qubits: int) -> torch.nn.Module:
        d = 2**n_qubits
        return torch.nn.Sequential(
            torch.nn.Flatten(),
            torch.nn.Linear(2 * d * d, self.params.hidden),
            torch.nn.ReLU(),
            torch.nn.Linear(self.params.hidden, n_cuts(n_qubits)),
        )


class IdentitySymmetry(Symmetry):
    name = "test-identity"
    description = "test-only identity"

    def apply(self, rho, generator=None):
        b = rho.shape[0]
        m = n_cuts(int(rho.shape[-1]).bit_length() - 1)
        return rho.clone(), torch.arange(m, device=rho.device).repeat(b, 1)


class PermutationSymmetry(Symmetry):
    name = "test-permutation"
    description = "test-only random qubit permutation"

    def apply(self, rho, generator=None):
        from qeframe.quantum import torch_ops

        b, n = rho.shape[0], int(rho.shape[-1]).bit_length() - 1
        perms = torch_ops.random_permutations(b, n, generator, device=rho.device)
        return torch_ops.permute_qubits(rho, perms, check=False), torch_ops.cut_index_maps(perms)


class ToyParams(FamilyParams):
    kind: str = Field(default="product", pattern="^(product|ghz)$")


class ToyFamily(StateFamily):
    """Product states (separable on every cut) or noisy GHZ states (entangled on every cut)."""

    name = "test-toy"
    description = "test-only product / GHZ states"
    Params = ToyParams

    def sample(self, count, rng, n_qubits=3):
        return toy_batch(self.params.kind, count, rng, n_qubits)


def toy_batch(kind: str, count: int, rng: np.random.Generator, n_qubits: int = 3) -> StateBatch:
    d = 2**n_qubits
    if kind == "product":
        psi = np.ones((count, 1), complex)
        for _ in range(n_qubits):
            q = rng.standard_normal((count, 2)) + 1j * rng.standard_normal((count, 2))
            q /= np.linalg.norm(q, axis=1, keepdims=True)
            psi = (psi[:, :, None] * q[:, None, :]).reshape(count, -1)
        rho = psi[:, :, None] * psi[:, None, :].conj()
        return StateBatch.build(rho, 0, "construction", pure=True, fully_separable=1)
    ghz = np.zeros(d, complex)
    ghz[0] = ghz[-1] = 1 / np.sqrt(2)
    p = rng.uniform(0.0, 0.2, count)  # white-noise weight: GHZ stays NPT on every cut for p < 0.8 * ...
    rho = (1 - p)[:, None, None] * np.outer(ghz, ghz.conj())[None] + p[:, None, None] * np.eye(d)[None] / d
    return StateBatch.build(rho, 1, "construction", pure=False, fully_separable=0)


@hookimpl
def qeframe_register_backbones(register):
    register(TinyMLP)


@hookimpl
def qeframe_register_symmetries(register):
    register(IdentitySymmetry)
    register(PermutationSymmetry)


@hookimpl
def qeframe_register_families(register):
    register(ToyFamily)


def synthetic_arrays(name: str, count: int, seed: int = 0, n_qubits: int = 3, unknown: float = 0.0):
    """A :class:`~qeframe.learn.train.DatasetArrays` of half product, half noisy GHZ states.

    A fraction ``unknown`` of the labels is set to -1.
    """
    from qeframe.learn.arrays import DatasetArrays

    rng = np.random.default_rng(seed)
    half = count // 2
    batch = StateBatch.concatenate(
        [toy_batch("product", half, rng, n_qubits), toy_batch("ghz", count - half, rng, n_qubits)]
    )
    order = rng.permutation(count)
    labels = batch.ground_truth[order].copy()
    labels[rng.random(labels.shape) < unknown] = -1
    family = np.array(["product"] * half + ["ghz"] * (count - half))[order]
    return DatasetArrays(
        name=name, rho=batch.rho[order], labels=labels, ground_truth=batch.ground_truth[order], family=family
    )


def tiny_trained_run(registry, runs_dir):
    """Path of a run folder under ``runs_dir`` holding one epoch of the ``test-mlp`` backbone trained
    on :func:`synthetic_arrays` by the trainer directly (for ``classify`` and prediction tests)."""
    from qeframe.config.specs import ModelSpec, TrainingSpec
    from qeframe.learn.runs import RunDir
    from qeframe.learn.train import Trainer

    run = RunDir.create(runs_dir, "exp", "e" * 64)
    trainer = Trainer(
        ModelSpec(backbone="test-mlp", params={"hidden": 8}),
        TrainingSpec(epochs=1, batch_size=16),
        3,
        registry=registry,
        device="cpu",
    )
    trainer.fit(synthetic_arrays("train", 32), run=run)
    return run.path


#: The ``toy`` experiment of the ``qeframe run`` tests (``{backbone}`` to fill in): three small
#: datasets of ``test-toy`` states and two epochs with the ``test-permutation`` symmetry.
REGISTRY_TOML = """
[datasets.toy-train]
n_qubits = 3
seed = 1
split = "train"
labeler = "negativity"
[[datasets.toy-train.families]]
family = "test-toy"
count = 96
params = {{ kind = "product" }}
[[datasets.toy-train.families]]
family = "test-toy"
count = 96
params = {{ kind = "ghz", local_randomize = true }}

[datasets.toy-val]
n_qubits = 3
seed = 2
split = "validation"
labeler = "negativity"
[[datasets.toy-val.families]]
family = "test-toy"
count = 24
params = {{ kind = "product" }}
[[datasets.toy-val.families]]
family = "test-toy"
count = 24
params = {{ kind = "ghz" }}

[datasets.toy-test]
n_qubits = 3
seed = 3
split = "test"
labeler = "negativity"
[[datasets.toy-test.families]]
family = "test-toy"
count = 30
tag = "product"
params = {{ kind = "product", local_randomize = true }}
[[datasets.toy-test.families]]
family = "test-toy"
count = 30
tag = "ghz"
params = {{ kind = "ghz", local_randomize = true }}

[experiments.toy]
train = "toy-train"
validation = ["toy-val"]
test = ["toy-test"]
model = {{ backbone = "{backbone}", params = {{ hidden = 16 }} }}
[experiments.toy.training]
epochs = 2
batch_size = 32
lr = 0.01
[[experiments.toy.training.symmetries]]
name = "test-permutation"
start_epoch = 1
"""
