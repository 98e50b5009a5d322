"""Tests of the ``certified`` labeler and ``qeframe certify``.

Closed forms: GHZ (NPT everywhere), pure products (pure-ppt), the Shifts UPB state (PPT and
separable on every cut by the rank criterion, rank 4), the Horodecki 2x4 state (PPT entangled on
1|23: found by DPS-2; NPT elsewhere), a 2x3 support, a product mixed state, the separable ball,
and the 3x3 Tiles state embedded in four qubits — rank 4 on a 3x3 support, PPT and entangled —
which a rank test with nominal dimensions would wrongly call separable.
"""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import test_baselines as tb  # shared state builders (pytest puts tests/ on sys.path)
from qeframe_plugins.baselines.ccnr import CcnrBaseline, realignment_norms
from qeframe_plugins.families.horodecki import HorodeckiFamily, horodecki_states
from qeframe_plugins.families.upb import UPBFamily, upb_state
from qeframe_plugins.labelers import certified as certified_module
from qeframe_plugins.labelers.certified import Certificate, CertifiedLabeler
from test_baselines import needs_cvxpy
from typer.testing import CliRunner

from qeframe.cli.base import app, main
from qeframe.errors import SpecError
from qeframe.plugin.interfaces import StateBatch
from qeframe.plugin.labels import PROVENANCE, provenance_code
from qeframe.plugin.registry import get_registry
from qeframe.quantum.ops import batch_kron, pure_density
from qeframe.quantum.ppt import pt_min_eigenvalues
from qeframe.quantum.random import haar_state


def labeler(**params) -> CertifiedLabeler:
    """The labeler without progress bars and, unless asked, without its witness library, so that the
    Horodecki state at b = 0.5 reaches the later stages (the witness stage: tests/plugins/test_ppt_data.py)."""
    params.setdefault("progress", False)
    params.setdefault("witnesses", ())
    return CertifiedLabeler(CertifiedLabeler.Params(**params))


@pytest.fixture
def no_sdp(monkeypatch):
    """Fail the test if any SDP is requested."""

    def boom(*args, **kwargs):
        raise AssertionError("an SDP was requested")

    monkeypatch.setattr(certified_module, "dps2_batch", boom)


def names(cert: Certificate) -> list[list[str]]:
    return cert.provenance_names().tolist()


def tiles_in_four_qubits() -> np.ndarray:
    """The Tiles UPB state on C^3 ⊗ C^3 embedded in (qubits 1,2) ⊗ (qubits 3,4), C^3 ⊂ C^4."""
    embed = np.eye(4)[:, :3]  # |0>,|1>,|2> of each two-qubit side
    iso = np.kron(embed, embed)  # (16, 9)
    return (iso @ tb.tiles_state() @ iso.T)[None]


# ------------------------------------------------------------------------------------------ plugin
def test_certified_is_a_registered_labeler():
    reg = get_registry()
    assert reg.get("labeler", "certified") is CertifiedLabeler
    with pytest.raises(SpecError, match="trusted_provenance"):
        reg.create("labeler", "certified", {"trusted_provenance": ["gut-feeling"]})
    with pytest.raises(SpecError, match="margin"):
        reg.create("labeler", "certified", {"margin": 0})


# ------------------------------------------------------------------------------------------ npt
def test_npt_states_never_reach_later_stages(no_sdp):
    rng = np.random.default_rng(0)
    rho = np.concatenate([tb.ghz(3)[None], pure_density(haar_state(8, 50, rng))])
    cert = labeler().certify(rho)
    assert (cert.labels == 1).all()
    assert set(cert.provenance_names().ravel()) == {"npt"}
    np.testing.assert_allclose(cert.evidence, pt_min_eigenvalues(rho), atol=1e-12)
    np.testing.assert_allclose(cert.evidence[0], [-0.5, -0.5, -0.5], atol=1e-12)
    assert (cert.reasons == "").all()
    cheap = labeler(npt_evidence=False).certify(rho)
    np.testing.assert_array_equal(cheap.labels, cert.labels)
    assert np.isnan(cheap.evidence).all()


# ------------------------------------------------------------------------------------------ separable
def test_upb_shifts_state_is_separable_on_every_cut_by_rank(no_sdp):
    rho = upb_state()
    assert np.linalg.matrix_rank(rho, tol=1e-10) == 4
    cert = labeler().certify(rho[None])
    np.testing.assert_array_equal(cert.labels, [[0, 0, 0]])
    assert names(cert) == [["rank", "rank", "rank"]]
    np.testing.assert_array_equal(cert.evidence, [[4.0, 4.0, 4.0]])  # rank 4 <= max(2, 4)
    # oracle for the reduced ranks: qiskit's partial trace (qeframe qubit k = qiskit qubit k)
    from qiskit.quantum_info import partial_trace

    from qeframe.quantum.qiskit_interop import to_qiskit

    for k in range(3):
        others = [q for q in range(3) if q != k]
        r_a = np.linalg.matrix_rank(partial_trace(to_qiskit(rho), others).data, tol=1e-10)
        r_b = np.linalg.matrix_rank(partial_trace(to_qiskit(rho), [k]).data, tol=1e-10)
        assert (r_a, r_b) == (2, 4)


def test_upb_family_locally_randomized_stays_rank_certified(no_sdp):
    batch = UPBFamily(UPBFamily.Params(local_randomize=True)).generate(20, np.random.default_rng(1))
    out = labeler().label(batch)  # the rank stage comes before the family's ground truth
    assert out.keep.all()
    np.testing.assert_array_equal(out.labels, 0)
    assert (out.provenance == provenance_code("rank")).all()
    np.testing.assert_array_equal(out.evidence, 4.0)


def test_random_pure_product_states_are_pure_ppt(no_sdp):
    rng = np.random.default_rng(2)
    psi = batch_kron(*(haar_state(2, 30, rng) for _ in range(3)))
    cert = labeler().certify(pure_density(psi))
    np.testing.assert_array_equal(cert.labels, 0)
    assert set(cert.provenance_names().ravel()) == {"pure-ppt"}
    np.testing.assert_array_equal(cert.evidence, 1.0)


def test_mixed_product_states_are_separable_as_products(no_sdp):
    rng = np.random.default_rng(3)
    factors = [tb.random_mixed(25, 1, rng) for _ in range(3)]  # full rank: the rank test cannot apply
    cert = labeler().certify(batch_kron(*factors))
    np.testing.assert_array_equal(cert.labels, 0)
    assert set(cert.provenance_names().ravel()) == {"analytic"}
    assert (cert.evidence <= 1e-12).all()
    assert all("product" in r for r in cert.reasons.ravel())


def test_low_rank_separable_mixtures_are_rank_certified(no_sdp):
    rng = np.random.default_rng(4)
    rho = tb.separable_mixtures(40, 3, 4, rng)  # rank 4 <= max(2, 4) on every cut
    cert = labeler().certify(rho)
    np.testing.assert_array_equal(cert.labels, 0)
    assert set(cert.provenance_names().ravel()) == {"rank"}


def test_product_family_with_ground_truth():
    family = get_registry().create(
        "family", "product", {"kind": "separable", "source": "haar", "terms": (6, 8)}
    )
    batch = family.generate(10, np.random.default_rng(5))
    out = labeler(sdp=False).label(batch)
    np.testing.assert_array_equal(out.labels, 0)  # never entangled; decided exactly or by construction
    allowed = {provenance_code(n) for n in ("rank", "analytic", "construction", "pure-ppt", "spectrum")}
    assert set(np.unique(out.provenance)) <= allowed


def test_two_by_three_support_is_analytic(no_sdp):
    """A separable mixture on C^2 ⊗ span{|00>,|01>,|10>}: cut 1|23 has supports 2x3 and rank 6 > 3."""
    rng = np.random.default_rng(6)
    count, terms = 10, 6
    rho = np.zeros((count, 8, 8), dtype=np.complex128)
    for _ in range(terms):
        b = np.zeros((count, 4), dtype=np.complex128)
        b[:, :3] = haar_state(3, count, rng)
        rho += pure_density(batch_kron(haar_state(2, count, rng), b)) / terms
    cert = labeler(sdp=False).certify(rho)
    assert (cert.labels[:, 0] == 0).all()
    assert (cert.provenance[:, 0] == provenance_code("analytic")).all()
    assert all("2x3 support" in r for r in cert.reasons[:, 0])
    assert (cert.evidence[:, 0] > -1e-10).all()  # lambda_min of the partial transpose: PPT


def test_noisy_ghz_inside_the_separable_ball(no_sdp):
    rho = (0.9 * np.eye(8) / 8 + 0.1 * tb.ghz(3))[None]
    purity = float(np.trace(rho[0] @ rho[0]).real)
    assert purity < 1 / 7
    cert = labeler().certify(rho)
    np.testing.assert_array_equal(cert.labels, [[0, 0, 0]])
    assert names(cert) == [["analytic"] * 3]
    np.testing.assert_allclose(cert.evidence, purity)
    assert "Gurvits-Barnum" in cert.reasons[0, 0]


def test_ambiguous_ranks_skip_the_rank_stage():
    """An eigenvalue between rank_tol and rank_gap makes the numerical rank ambiguous: no rank label."""
    eps = 1e-8 * 8
    rho = ((1 - eps) * upb_state() + eps * np.eye(8) / 8)[None]  # four eigenvalues of 1e-8
    cert = labeler(sdp=False).certify(rho)
    np.testing.assert_array_equal(cert.labels, [[-1, -1, -1]])
    assert all("SDP stage disabled" in r for r in cert.reasons[0])
    # with a rank tolerance above the small eigenvalues, the rank criterion applies again
    loose = labeler(sdp=False, rank_tol=1e-7, rank_gap=1e-6).certify(rho)
    assert names(loose) == [["rank"] * 3]


def test_numerical_not_nominal_ranks_for_an_entangled_rank4_state_on_a_3x3_support():
    """Tiles state in 4 qubits: PPT and entangled across 12|34, rank 4, reduced ranks 3 and 3.
    With nominal dimensions (4, 4) the rank test would say 4 <= 4 -> separable: wrong."""
    rho = tiles_in_four_qubits()
    assert np.linalg.matrix_rank(rho[0], tol=1e-10) == 4
    cut = 4  # 12|34 in bipartitions(4) order: 1|234, 2|134, 3|124, 4|123, 12|34, 13|24, 14|23
    assert pt_min_eigenvalues(rho)[0, cut] > -1e-12
    cert = labeler(sdp=False, realignment=False).certify(rho)
    assert cert.cuts[cut] == "12|34"
    assert cert.labels[0, cut] == -1  # never "separable"
    # the realignment stage proves it entangled (a PPT-entangled cut, in filter normal form)
    cert = labeler(sdp=False).certify(rho)
    assert cert.labels[0, cut] == 1
    assert cert.provenance_names()[0, cut] == "realignment"
    # CCNR detects it (realignment norms are invariant under local isometries): 1.0874 > 1
    assert realignment_norms(rho)[0, cut] == pytest.approx(1.0874, abs=1e-4)
    assert CcnrBaseline().predict(rho)[0, cut] == 1


# ------------------------------------------------------------------------------------------ ground truth
def test_trusted_family_ground_truth_is_used_for_the_horodecki_ppt_cut(no_sdp):
    batch = HorodeckiFamily(HorodeckiFamily.Params(b=0.4)).generate(3, np.random.default_rng(7))
    out = labeler().label(batch)
    np.testing.assert_array_equal(out.labels, 1)
    assert (out.provenance[:, 0] == provenance_code("analytic")).all()  # the family's closed form
    assert (out.provenance[:, 1:] == provenance_code("npt")).all()


def test_paper_convention_is_not_trusted():
    rho = upb_state()[None]
    eps = 1e-8 * 8
    rho = (1 - eps) * rho + eps * np.eye(8) / 8  # ambiguous ranks: nothing exact applies
    batch = StateBatch.build(rho, 1, "paper-convention", pure=False, pptes=True)
    out = labeler(sdp=False).label(batch)
    np.testing.assert_array_equal(out.labels, -1)
    trusted = labeler(sdp=False, trusted_provenance=("paper-convention",)).label(batch)
    np.testing.assert_array_equal(trusted.labels, 1)


def test_conflicting_ground_truth_keeps_the_certificate_and_warns(no_sdp):
    batch = StateBatch.build(upb_state()[None], 1, "construction", pure=False)
    with pytest.warns(RuntimeWarning, match="contradict"):
        cert = labeler().certify(batch.rho, batch.ground_truth, batch.ground_truth_provenance)
    np.testing.assert_array_equal(cert.labels, [[0, 0, 0]])
    assert all("conflicts" in r for r in cert.reasons[0])


# ------------------------------------------------------------------------------------------ dps2
@needs_cvxpy
def test_horodecki_ppt_cut_is_certified_by_dps2():
    cert = labeler(workers=1).certify(horodecki_states(np.array([0.5])))
    np.testing.assert_array_equal(cert.labels, [[1, 1, 1]])
    assert names(cert) == [["dps2", "npt", "npt"]]
    assert cert.evidence[0, 0] == pytest.approx(0.97766, abs=1e-4)


@pytest.mark.slow
@needs_cvxpy
@pytest.mark.parametrize("n_qubits", [3, 4])
def test_horodecki_states_at_several_b(n_qubits):
    b = np.array([0.05, 0.2, 0.5, 0.8, 0.95])
    rho = horodecki_states(b, n_qubits)
    cert = labeler().certify(rho)
    np.testing.assert_array_equal(cert.labels, 1)
    assert (cert.provenance[:, 0] == provenance_code("dps2")).all()
    assert (cert.provenance[:, 1:] == provenance_code("npt")).all()
    assert ((cert.evidence[:, 0] > 0.96) & (cert.evidence[:, 0] < 1 - 1e-3)).all()
    if n_qubits == 3:  # high-accuracy reference values (SCS at eps = 1e-9)
        np.testing.assert_allclose(cert.evidence[[0, 2, 4], 0], [0.984301, 0.977659, 0.997268], atol=2e-5)


@pytest.mark.slow
@needs_cvxpy
def test_dps2_stage_never_calls_separable_states_entangled_and_ignores_workers():
    rng = np.random.default_rng(8)
    rho = np.concatenate([tb.separable_mixtures(1, 3, 6, rng), horodecki_states(np.array([0.3]))])
    one = labeler(workers=1).certify(rho)
    two = labeler(workers=2).certify(rho)
    np.testing.assert_array_equal(one.labels, two.labels)
    np.testing.assert_array_equal(one.evidence, two.evidence)
    assert (one.labels[0] != 1).all()  # separable: unknown at worst, never entangled
    assert one.labels[1, 0] == 1


@pytest.mark.slow
@needs_cvxpy
def test_tiles_state_in_four_qubits_is_found_by_dps2():
    """The 4x4 extension SDP (dimension 64) on cut 12|34; numerically p* ≈ 0.787: far from 1."""
    cert = labeler(realignment=False).certify(tiles_in_four_qubits())  # else the realignment stage decides
    assert cert.labels[0, 4] == 1 and cert.provenance_names()[0, 4] == "dps2"
    assert cert.evidence[0, 4] == pytest.approx(0.787, abs=5e-3)


def test_missing_cvxpy_gives_unknown_with_reason(monkeypatch):
    monkeypatch.setitem(sys.modules, "cvxpy", None)  # `import cvxpy` raises ImportError
    with pytest.warns(RuntimeWarning, match=r"pip install 'qeframe\[certify\]'"):
        cert = labeler().certify(horodecki_states(np.array([0.5])))
    np.testing.assert_array_equal(cert.labels, [[-1, 1, 1]])
    assert names(cert) == [["unknown", "npt", "npt"]]
    assert "cvxpy is not installed" in cert.reasons[0, 0] and "qeframe[certify]" in cert.reasons[0, 0]
    assert np.isnan(cert.evidence[0, 0])


def test_dps_stage_maps_visibilities_to_labels(monkeypatch):
    """Without a solver: p* < 1 - margin -> entangled (dps2), else unknown with p* as evidence;
    no answer -> unknown with the solver's reason. Only the open PPT cuts become jobs."""
    from qeframe_plugins.baselines._dps import DpsOutcome

    seen = {}

    def fake_batch(rho, jobs, settings, **kwargs):
        seen["jobs"] = np.asarray(jobs).tolist()
        m = len(seen["jobs"])
        p_star = np.full(m, np.nan)
        p_star[:2] = [0.98, 0.9995]
        ok = np.arange(m) < 2
        reasons = np.where(ok, "", "solver SCS returned status 'optimal_inaccurate'").astype(object)
        return DpsOutcome(p_star, ok, reasons, np.zeros(m))

    monkeypatch.setattr(certified_module, "dps2_batch", fake_batch)
    eps = 1e-8 * 8
    ambiguous_upb = (1 - eps) * upb_state() + eps * np.eye(8) / 8  # PPT on every cut, ranks ambiguous
    rho = np.stack([horodecki_states(np.array([0.5]))[0], ambiguous_upb])
    with pytest.warns(RuntimeWarning, match="no answer"):
        cert = labeler().certify(rho)
    assert seen["jobs"] == [[0, 0], [1, 0], [1, 1], [1, 2]]  # the Horodecki NPT cuts are not jobs
    assert cert.labels[0].tolist() == [1, 1, 1] and names(cert)[0] == ["dps2", "npt", "npt"]
    assert cert.evidence[0, 0] == 0.98
    assert cert.labels[1, 0] == -1 and "inconclusive: p* = 0.999500" in cert.reasons[1, 0]
    assert cert.evidence[1, 0] == 0.9995
    assert cert.labels[1, 1] == -1 and "optimal_inaccurate" in cert.reasons[1, 1]
    assert np.isnan(cert.evidence[1, 1])


@needs_cvxpy
def test_solver_failure_is_unknown_never_entangled(monkeypatch):
    from qeframe_plugins.baselines import _dps

    monkeypatch.setattr(
        _dps._Problem, "solve", lambda self, rho_ab: (float("nan"), False, "status 'infeasible'")
    )
    with pytest.warns(RuntimeWarning, match="no answer"):
        cert = labeler(workers=1).certify(horodecki_states(np.array([0.5])))
    assert cert.labels[0, 0] == -1 and "infeasible" in cert.reasons[0, 0]


def test_too_large_sdps_are_skipped_with_a_reason(no_sdp):
    cert = labeler(max_extension_dim=8).certify(horodecki_states(np.array([0.5])))
    assert cert.labels[0, 0] == -1 and "max_extension_dim" in cert.reasons[0, 0]


def test_certificate_records_are_json_able(no_sdp):
    cert = labeler(sdp=False).certify(
        np.stack([tb.ghz(3), upb_state(), horodecki_states(np.array([0.5]))[0]])
    )
    record = json.loads(json.dumps(cert.to_dict()))
    assert record["cuts"] == ["1|23", "2|13", "3|12"]
    assert record["samples"][1]["provenance"] == ["rank"] * 3
    assert record["samples"][2]["evidence"][0] is None and record["samples"][2]["labels"][0] == -1
    assert record["summary"]["all"] == {"npt": 5, "rank": 3, "unknown": 1}
    assert set(record["summary"]["all"]) <= set(PROVENANCE)


# ------------------------------------------------------------------------------------------ CLI
@pytest.fixture
def states_file(tmp_path):
    rho = np.stack([tb.ghz(3), upb_state(), np.eye(8) / 8])
    path = tmp_path / "states.npy"
    np.save(path, rho)
    return path


def test_cli_certify_json_and_outputs(states_file, tmp_path):

    out_json = tmp_path / "labels.json"
    result = CliRunner().invoke(app, ["certify", str(states_file), "--json", "--out", str(out_json)])
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["n_qubits"] == 3 and record["n_states"] == 3
    assert [s["labels"] for s in record["samples"]] == [[1, 1, 1], [0, 0, 0], [0, 0, 0]]
    assert record["samples"][1]["provenance"] == ["rank"] * 3
    assert json.loads(out_json.read_text())["samples"] == record["samples"]

    out_npz = tmp_path / "labels.npz"
    result = CliRunner().invoke(app, ["certify", str(states_file), "--out", str(out_npz)])
    assert result.exit_code == 0, result.output
    assert "1|23" in result.stdout and "provenance counts" in result.stdout
    with np.load(out_npz) as z:
        np.testing.assert_array_equal(z["labels"], [[1, 1, 1], [0, 0, 0], [0, 0, 0]])
        assert z["provenance_names"][1].tolist() == ["rank"] * 3
        assert z["cuts"].tolist() == ["1|23", "2|13", "3|12"]
        assert z["evidence"].shape == (3, 3) and z["reasons"].shape == (3, 3)


def test_cli_certify_npz_and_user_errors(tmp_path, capsys):
    good = tmp_path / "good.npz"
    np.savez(good, rho=upb_state()[None])
    main(["certify", str(good), "--json"])
    assert json.loads(capsys.readouterr().out)["samples"][0]["labels"] == [0, 0, 0]

    bad_key = tmp_path / "bad.npz"
    np.savez(bad_key, states=upb_state()[None])
    bad_trace = tmp_path / "trace.npy"
    np.save(bad_trace, 2 * upb_state()[None])
    cases = [
        ([str(bad_key)], "no array 'rho'"),
        ([str(bad_trace)], "trace check failed for matrix 0"),
        ([str(tmp_path / "missing.npy")], "file not found"),
        ([str(good), "--out", str(tmp_path / "x.csv")], "allowed: .json, .npz"),
    ]
    for args, message in cases:
        with pytest.raises(SystemExit) as exc:
            main(["certify", *args])
        assert exc.value.code == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1
