"""Test-only plugins and helpers for the dataset-store tests (``test_store.py``, ``test_shards.py``,
``test_cli_data.py``).

A Ginibre family (truth unknown; ``$TOY_DELAY`` slows it down so a build can be killed mid-way),
product states (separable by construction), a labeler that keeps only states PPT on the first cut
and one that keeps nothing; :func:`fails` runs a command that must fail with a one-line error.
"""

from __future__ import annotations

import os
import time

import numpy as np
import pytest
from pydantic import Field
from qeframe_plugins.labelers import negativity

from qeframe import hookimpl
from qeframe.cli import main
from qeframe.plugin.interfaces import FamilyParams, LabelBatch, Labeler, StateBatch, StateFamily
from qeframe.quantum.ops import batch_kron, pure_density
from qeframe.quantum.random import haar_state


class GinibreParams(FamilyParams):
    rank: int = Field(default=0, ge=0, description="Rank of the Ginibre factor (0: full rank).")


class ToyGinibre(StateFamily):
    """Random mixed states rho = G G^† / tr(G G^†), G a (d, k) complex Gaussian matrix; truth unknown.

    ``$TOY_DELAY`` seconds of sleep per call make a build slow enough to be killed mid-way.
    """

    name = "toy-ginibre"
    description = "test-only Ginibre states"
    Params = GinibreParams

    def sample(self, count: int, rng: np.random.Generator, n_qubits: int = 3) -> StateBatch:
        d = 2**n_qubits
        k = self.params.rank or d
        g = rng.standard_normal((count, d, k)) + 1j * rng.standard_normal((count, d, k))
        rho = g @ g.conj().transpose(0, 2, 1)
        rho /= np.trace(rho, axis1=1, axis2=2).real[:, None, None]
        if delay := float(os.environ.get("TOY_DELAY", "0")):
            time.sleep(delay)
        return StateBatch.build(rho, -1, "unknown", pure=k == 1)


class ToyProduct(StateFamily):
    """Products of Haar-random single-qubit pure states: separable on every cut by construction."""

    name = "toy-product"
    description = "test-only product states"

    def sample(self, count: int, rng: np.random.Generator, n_qubits: int = 3) -> StateBatch:
        psi = batch_kron(*(haar_state(2, count, rng) for _ in range(n_qubits)))
        return StateBatch.build(pure_density(psi), 0, "construction", pure=True, fully_separable=1)


class DropEntangled(Labeler):
    """Keeps only the states that are PPT on the first cut (drops ~3/4 of 2-qubit Ginibre states)."""

    name = "toy-drop-entangled"
    description = "test-only dropping labeler"

    def label(self, batch: StateBatch) -> LabelBatch:
        inner = negativity.NegativityLabeler().label(batch)
        keep = inner.labels[:, 0] == 0
        return LabelBatch(keep=keep, labels=inner.labels[keep], provenance=inner.provenance[keep])


class DropAll(Labeler):
    name = "toy-drop-all"
    description = "test-only labeler that keeps nothing"

    def label(self, batch: StateBatch) -> LabelBatch:
        c = batch.ground_truth.shape[1]
        return LabelBatch(
            keep=np.zeros(len(batch), bool),
            labels=np.zeros((0, c), np.int8),
            provenance=np.zeros((0, c), np.uint8),
        )


class ToyPlugin:
    @hookimpl
    def qeframe_register_families(self, register):
        register(ToyGinibre)
        register(ToyProduct)

    @hookimpl
    def qeframe_register_labelers(self, register):
        register(DropEntangled)
        register(DropAll)


def fails(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    """Run ``qeframe ARGS`` through ``qeframe.cli.main`` (as the script does); expect exit status 2
    and one line ``error: ...`` on stderr, which is returned."""
    with pytest.raises(SystemExit) as info:
        main(list(args))
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err, err
    return err
