"""The notebook API (``qeframe.load``, :class:`qeframe.detector.Detector`): the same answers as
``qeframe classify --json`` for numpy, torch and qiskit input; qiskit's qubit order; batches;
validation errors; pretrained, tiny trained and ensemble runs; safe, read-only loading; a lazy
``import qeframe``; and the code of ``docs/python-api.md``, run and compared with its printed output."""

from __future__ import annotations

import contextlib
import io
import json
import pickle
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import qeframe_plugins.routers.pt_spectrum as pt_plugin
import torch
import train_plugins
from qeframe_plugins.labelers import negativity
from qiskit import QuantumCircuit
from qiskit.quantum_info import (
    DensityMatrix,
    Operator,
    Statevector,
    random_density_matrix,
    random_statevector,
)

import qeframe
from qeframe.detector import DetectionResult, Detector, as_density_matrices, shipped_models
from qeframe.errors import InvalidDensityMatrixError, QeframeError
from qeframe.learn.prediction import Calibration, PredictionConfig, ppt_gate, write_prediction
from qeframe.quantum.validation import validate_density_matrices

ROOT = Path(__file__).resolve().parents[1]
GATED = ROOT / "pretrained" / "paper-gated-pe"
CUTS = ["1|23", "2|13", "3|12"]


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _states() -> np.ndarray:
    """(9, 8, 8) complex128: GHZ, I/8, a product state, noisy GHZ across the PPT boundary
    (p = 0.1, 0.3), a Bell pair on qubits 1, 2 and Haar-random pure and mixed states (qiskit's
    samplers, seeded); big-endian."""
    ghz = np.zeros(8, complex)
    ghz[[0, 7]] = 2**-0.5
    plus = np.array([1, 1]) / 2**0.5
    product = np.kron(np.kron(plus, [np.cos(0.4), np.sin(0.4)]), [1, 0])
    bell = np.kron(np.array([1, 0, 0, 1]) / 2**0.5, [1, 0])
    g = np.outer(ghz, ghz.conj())
    noisy = [p * g + (1 - p) * np.eye(8) / 8 for p in (0.1, 0.3)]
    haar = [random_statevector(8, seed=s).data for s in (1, 2)]
    mixed = [random_density_matrix(8, rank=2, seed=3).data]
    pure = [np.outer(v, v.conj()) for v in (ghz, product, bell, *haar)]
    return np.stack([pure[0], np.eye(8) / 8, pure[1], *noisy, pure[2], pure[3], pure[4], mixed[0]])


def _classify(qeframe_cli, tmp_path, run: Path, rho: np.ndarray) -> dict:
    path = tmp_path / "states.npy"
    np.save(path, rho)
    code, out, err = qeframe_cli("classify", path, "--run", run, "--device", "cpu", "--json")
    assert code == 0, err
    payload = json.loads(out)
    assert payload.pop("file") == str(path)
    return payload


def _qiskit_objects(rho: np.ndarray) -> list:
    """qiskit objects for big-endian matrices, made by qiskit itself (``reverse_qargs``):
    a ``Statevector`` where the matrix is pure (rank 1), else a ``DensityMatrix``."""
    out = []
    for m in rho:
        w, v = np.linalg.eigh(m)
        if w[-1] > 1 - 1e-12:  # pure: hand qiskit the vector (predict forms |psi><psi|)
            out.append(Statevector(v[:, -1]).reverse_qargs())
        else:
            out.append(DensityMatrix(m).reverse_qargs())
    return out


# ------------------------------------------------------------------------------ same as classify


@pytest.fixture(scope="module")
def gated() -> Detector:
    return qeframe.load(str(GATED), device="cpu")


def test_numpy_torch_and_lists_agree_exactly_with_classify_json(gated, tmp_path, qeframe_cli):
    rho = _states()
    payload = _classify(qeframe_cli, tmp_path, GATED, rho)
    expected = json.loads(json.dumps(payload))
    for states in (rho, torch.from_numpy(rho), list(rho), [torch.from_numpy(m) for m in rho]):
        assert gated.predict(states).to_dict() == expected
    # the shipped model is calibrated and proves: GHZ and the NPT states by the gate
    assert payload["calibrated"] is True and payload["proof"][0] == ["npt"] * 3
    assert payload["cuts"] == CUTS and payload["epoch"] == 13


def test_qiskit_states_agree_exactly_with_classify_json(gated, tmp_path, qeframe_cli):
    """qiskit objects built by qiskit from the big-endian matrices (``reverse_qargs``) give the
    classify answers of those matrices: same probabilities to the last bit."""
    rho = _states()
    objects = _qiskit_objects(rho)
    assert any(isinstance(o, Statevector) for o in objects) and any(
        isinstance(o, DensityMatrix) for o in objects
    )
    # pure states: classify the |psi><psi| that predict forms, so the comparison is exact
    converted = np.stack([as_density_matrices(o) for o in objects])
    np.testing.assert_allclose(converted, rho, atol=1e-15)
    payload = _classify(qeframe_cli, tmp_path, GATED, converted)
    assert gated.predict(objects).to_dict() == payload
    assert gated.predict(tuple(objects)).to_dict() == payload


@pytest.mark.parametrize(
    ("pair", "separable_cut"), [((0, 1), "3|12"), ((1, 2), "1|23"), ((0, 2), "2|13")], ids=str
)
def test_qiskit_qubit_order_reaches_the_right_cut(gated, pair, separable_cut):
    """A Bell pair on qiskit qubits ``(a, b)``, the third qubit in |0>, is entangled (NPT) on the
    two cuts that split the pair and separable on the one that does not, named with qiskit qubit
    k = qubit k + 1. (Read without conversion, the pair (0, 1) would sit on qubits 2, 3.)"""
    qc = QuantumCircuit(3)
    qc.h(pair[0])
    qc.cx(*pair)
    expected_npt = [name != separable_cut for name in CUTS]
    for state in (qc, Statevector(qc), DensityMatrix(qc), [Statevector(qc)]):
        result = gated.predict(state)
        assert result.cuts == CUTS
        assert result.npt.tolist() == [expected_npt]
        assert result.proof == [["npt" if e else None for e in expected_npt]]
        assert result.labels[0][np.array(expected_npt)].tolist() == [1, 1]
    # the same answer as the big-endian numpy matrix of the pair on qubits a+1, b+1
    big_endian = np.asarray(Statevector(qc).reverse_qargs().data)
    numpy_result = gated.predict(np.outer(big_endian, big_endian.conj()))
    assert numpy_result.npt.tolist() == [expected_npt]
    np.testing.assert_allclose(numpy_result.probabilities, gated.predict(qc).probabilities, rtol=0, atol=1e-6)


def test_batch_and_single_states(gated):
    rho = _states()
    batch = gated.predict(rho)
    assert len(batch) == len(rho) and batch.probabilities.shape == (len(rho), 3)
    assert batch.labels.dtype == np.int8 and batch.npt.dtype == bool
    for i, m in enumerate(rho):
        single = gated.predict(m)
        assert len(single) == 1 and single.labels.shape == (1, 3)
        np.testing.assert_allclose(single.probabilities[0], batch.probabilities[i], rtol=0, atol=1e-6)
        np.testing.assert_allclose(single.logits[0], batch.logits[i], rtol=0, atol=1e-4)
        assert single.proof[0] == batch.proof[i] and single.npt[0].tolist() == batch.npt[i].tolist()
    # the gate agrees with the PPT test itself; proved cuts have P = 1
    np.testing.assert_array_equal(batch.npt, ppt_gate(rho))
    assert (batch.probabilities[batch.npt] == 1.0).all() and (batch.labels[batch.npt] == 1).all()
    assert batch.answers == [
        [{1: "entangled", 0: "separable", -1: "unknown"}[v] for v in row] for row in batch.labels.tolist()
    ]
    text = str(batch)
    assert text.splitlines()[0].split() == ["state", *CUTS] and "E npt" in text
    assert repr(batch).startswith("<DetectionResult: 9 states x 3 cuts")
    json.dumps(batch.to_dict(), allow_nan=False)  # plain, JSON-safe


# ---------------------------------------------------------------------------------------- errors


def _expect(detector, states, check, index=None, match=None):
    with pytest.raises(InvalidDensityMatrixError) as info:
        detector.predict(states)
    assert info.value.check == check and info.value.index == index
    if match:
        assert re.search(match, str(info.value)), str(info.value)
    return info.value


def test_invalid_input_raises_the_validation_error_of_classify(gated, tmp_path, qeframe_cli):
    rho = _states()[:3].copy()
    not_hermitian = rho.copy()
    not_hermitian[1, 0, 5] = 0.2
    exc = _expect(gated, not_hermitian, "hermitian", 1, r"hermitian check failed for matrix 1")
    # the same check, the same message as classify (which prints it as its one error line)
    with pytest.raises(InvalidDensityMatrixError) as direct:
        validate_density_matrices(not_hermitian, n_qubits=3)
    assert str(direct.value) == str(exc)
    np.save(tmp_path / "bad.npy", not_hermitian)
    code, _out, err = qeframe_cli("classify", tmp_path / "bad.npy", "--run", GATED, "--device", "cpu")
    assert code == 2 and err.strip() == f"error: {exc}"

    _expect(gated, 2 * rho, "trace", 0, r"trace check failed for matrix 0")
    negative = rho.copy()
    negative[2] = 1.2 * rho[2] - 0.2 * np.eye(8) / 8  # trace 1, eigenvalue -0.025
    _expect(gated, negative, "psd", 2, r"psd check failed for matrix 2")
    nan = rho.copy()
    nan[0, 3, 3] = np.nan
    _expect(gated, nan, "finite", 0)
    _expect(gated, np.eye(4) / 4, "shape", None, r"expected 3")  # 2 qubits for a 3-qubit model
    _expect(gated, torch.eye(16) / 16, "shape", None, r"expected 3")
    _expect(gated, np.ones(8) / 8, "shape")  # a state vector is not a density matrix
    _expect(gated, [rho[0], np.eye(4) / 4], "shape", None, r"different shapes")
    _expect(gated, [rho[0], rho[:2]], "shape", 1, r"list element 1")
    _expect(gated, {"rho": rho}, "shape")
    _expect(gated, [], "shape")
    _expect(gated, DensityMatrix(np.eye(8) / 4), "trace", 0)  # qiskit objects are validated too
    with pytest.raises(QeframeError, match="cannot convert Operator"):
        gated.predict(Operator(np.eye(8)))
    with pytest.raises(QeframeError, match="only qubit states"):
        gated.predict(DensityMatrix(np.eye(9) / 9))


def test_load_errors_are_one_line(tmp_path):
    with pytest.raises(
        QeframeError, match=r"not found .*pretrained: paper-gated-pe, paper-siamese-negativity"
    ):
        qeframe.load(tmp_path / "missing")
    with pytest.raises(QeframeError, match="not found"):
        qeframe.load("pretrained/nope")
    # a folder of runs names them
    with pytest.raises(
        QeframeError, match=r"holds 3 run folder\(s\), it is not one.*'paper-siamese-verified'"
    ):
        qeframe.load(ROOT / "pretrained")
    empty = tmp_path / "empty"
    (empty / "checkpoints").mkdir(parents=True)
    with pytest.raises(QeframeError, match="has no checkpoint"):
        qeframe.load(empty)
    if not torch.cuda.is_available():
        with pytest.raises(QeframeError, match="CUDA is not available"):
            qeframe.load(GATED, device="cuda")


def test_pretrained_names_resolve_from_any_working_directory(tmp_path, monkeypatch):
    assert shipped_models() == ["paper-gated-pe", "paper-siamese-negativity", "paper-siamese-verified"]
    monkeypatch.chdir(tmp_path)
    for name in ("pretrained/paper-siamese-verified", "paper-siamese-verified"):
        detector = qeframe.load(name, device="cpu")
        assert detector.run == ROOT / "pretrained" / "paper-siamese-verified"
        assert detector.calibrated is False and detector.cuts == CUTS
    result = detector.predict(_states()[:2])
    assert result.to_dict()["note"].startswith("uncalibrated: the run folder has no prediction.json")
    # a folder of that name in the working directory wins over the shipped one
    local = tmp_path / "pretrained" / "paper-siamese-verified"
    shutil.copytree(ROOT / "pretrained" / "paper-gated-pe", local)
    assert qeframe.load("pretrained/paper-siamese-verified", device="cpu").run == Path(
        "pretrained/paper-siamese-verified"
    )


# --------------------------------------------------------------------------------- loading safety


def test_loading_reads_no_pickle_writes_nothing_and_checks_the_weights(tmp_path, monkeypatch, qeframe_cli):
    run = tmp_path / "gated"
    shutil.copytree(GATED, run)
    before = sorted(str(p.relative_to(run)) for p in run.rglob("*"))

    def refuse(*args, **kwargs):
        raise AssertionError("loading a run must not unpickle anything")

    with monkeypatch.context() as m:
        for module, name in ((pickle, "load"), (pickle, "loads"), (pickle, "Unpickler"), (torch, "load")):
            m.setattr(module, name, refuse)
        detector = qeframe.load(run, device="cpu")
        detector.predict(_states())
    assert sorted(str(p.relative_to(run)) for p in run.rglob("*")) == before  # no plots/, nothing
    run.chmod(0o555)  # a read-only folder loads too
    try:
        qeframe.load(run, device="cpu")
    finally:
        run.chmod(0o755)
    # one changed weight byte: the sha256 in best.json no longer matches -> refused, API and CLI
    weights = run / "checkpoints" / "best.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0x01
    weights.write_bytes(bytes(data))
    with pytest.raises(QeframeError, match="does not match the sha256"):
        qeframe.load(run, device="cpu")
    np.save(tmp_path / "s.npy", _states())
    code, _out, err = qeframe_cli("classify", tmp_path / "s.npy", "--run", run)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "does not match the sha256" in err


# ------------------------------------------------------------------------- trained and ensembles


@pytest.fixture
def registry(qeframe_registry):
    return qeframe_registry(train_plugins, negativity, pt_plugin, entry_points=False)


def test_tiny_trained_run_uncalibrated_and_calibrated_agree_with_classify(registry, tmp_path, qeframe_cli):
    run = train_plugins.tiny_trained_run(registry, tmp_path / "runs")
    rho = _states()
    detector = qeframe.load(run, device="cpu")
    assert detector.calibrated is False and detector.epoch == 1 and not detector.is_ensemble
    assert "test-mlp" in repr(detector)
    assert detector.predict(rho).to_dict() == _classify(qeframe_cli, tmp_path, run, rho)
    # calibrated, three-valued, with a proof stage: reloaded, still the same as classify
    config = PredictionConfig(
        "ppt", Calibration("platt", [2.0, 1.0, 0.5], [0.3, 0.0, -0.2]), 0.45, 0.55, True, 0.01, 0.05
    )
    config.proofs = ("realignment",)
    write_prediction(run, config)
    detector = qeframe.load(run, device="cpu")
    result = detector.predict(rho)
    assert result.to_dict() == _classify(qeframe_cli, tmp_path, run, rho)
    assert result.calibrated and result.thresholds == {"separable": 0.45, "entangled": 0.55}
    assert result.note is None and "note" not in result.to_dict()
    unproved = np.array([[p is None for p in row] for row in result.proof])
    p = result.probabilities[unproved]
    expected = np.where(p >= 0.55, 1, np.where(p <= 0.45, 0, -1))
    np.testing.assert_array_equal(result.labels[unproved], expected)


def test_ensemble_run_agrees_with_classify(registry, tmp_path, qeframe_cli):
    from qeframe_plugins.routers.pt_spectrum import PtSpectrumRouter

    from qeframe.config.specs import ModelSpec, TrainingSpec
    from qeframe.learn.ensemble_training import train_ensemble
    from qeframe.learn.runs import RunDir

    run = RunDir.create(tmp_path / "runs", "ens", "a" * 64)
    train_ensemble(
        train_plugins.synthetic_arrays("train", 96, seed=2),
        [train_plugins.synthetic_arrays("val", 24, seed=3)],
        router=PtSpectrumRouter(PtSpectrumRouter.Params(thresholds=[float("-inf"), -0.1, float("inf")])),
        model_spec=ModelSpec(backbone="test-mlp", params={"hidden": 8}),
        training=TrainingSpec(epochs=1, batch_size=16),
        min_domain_size=8,
        registry=registry,
        device="cpu",
        run=run,
    )
    detector = qeframe.load(run.path, device="cpu")
    assert detector.is_ensemble and detector.epoch == "ensemble" and detector.model.n_members >= 1
    rho = _states()
    assert detector.predict(rho).to_dict() == _classify(qeframe_cli, tmp_path, run.path, rho)


# ------------------------------------------------------------------------------------ lazy import


def test_import_qeframe_is_lazy():
    code = (
        "import sys, qeframe\n"
        "heavy = [m for m in ('torch', 'numpy', 'qiskit', 'qeframe.detector', 'qeframe.plugin.registry') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "assert {'load', 'Detector', 'DetectionResult'} <= set(dir(qeframe))\n"
        "from qeframe import Detector, load\n"
        "assert 'qeframe.detector' in sys.modules and 'qiskit' not in sys.modules\n"
        "assert qeframe.load is load and Detector.__module__ == 'qeframe.detector'\n"
        "try:\n"
        "    qeframe.nope\n"
        "except AttributeError as exc:\n"
        "    assert 'nope' in str(exc)\n"
        "else:\n"
        "    raise SystemExit('no AttributeError')\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert qeframe.DetectionResult is DetectionResult and set(qeframe.__all__) >= {"load", "Detector"}


# ------------------------------------------------------------------------------------------- docs


def _doc_blocks() -> list[tuple[str, str | None]]:
    """``(python code, printed output or None)`` of docs/python-api.md, in page order: a
    ```text block right after a ```python block is that block's output."""
    text = (ROOT / "docs" / "python-api.md").read_text(encoding="utf-8")
    fences = list(re.finditer(r"```(\w+)\n(.*?)```", text, re.DOTALL))
    out = []
    for i, fence in enumerate(fences):
        if fence.group(1) != "python":
            continue
        output = None
        if i + 1 < len(fences) and fences[i + 1].group(1) == "text":
            between = text[fence.end() : fences[i + 1].start()]
            if not between.strip():
                output = fences[i + 1].group(2)
        out.append((fence.group(2), output))
    return out


def test_python_api_page_runs_and_prints_what_it_shows(tmp_path, monkeypatch):
    blocks = _doc_blocks()
    assert len(blocks) >= 6 and all(output is not None for _code, output in blocks)
    monkeypatch.chdir(tmp_path)  # the pretrained name resolves from anywhere
    namespace: dict = {"__name__": "python_api_page"}
    for code, output in blocks:
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            exec(compile(code, "docs/python-api.md", "exec"), namespace)  # noqa: S102 - our own docs
        assert buf.getvalue().rstrip() == output.rstrip(), f"docs/python-api.md block:\n{code}"


def test_detector_docstring_example():
    import doctest

    from qeframe import detector

    result = doctest.testmod(detector)
    assert result.attempted >= 4 and result.failed == 0
