"""The example third-party plugin ``docs/examples/qeframe-example-family``.

* Fast, in process: the ``werner_ghz`` family (imported from its source folder) against closed
  forms, numerical partial-transpose spectra and qiskit, and through the ``qeframe_registry`` fixture.
* Slow: ``pip install`` the package, without network, into a fresh virtual environment that sees
  the running environment's packages, and check that ``qeframe plugins`` and the registry find it
  through its entry point (llm's and datasette's "really install it" test).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import shutil
import site
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qeframe.plugin.labels import provenance_code
from qeframe.quantum.cuts import n_cuts
from qeframe.quantum.ppt import negativities, pt_min_eigenvalues
from qeframe.quantum.validation import validate_density_matrices

EXAMPLE_DIR = Path(__file__).resolve().parents[2] / "docs" / "examples" / "qeframe-example-family"
DIST_NAME = "qeframe-example-family"
DIST_VERSION = "0.1.0"


def _forget_example_modules() -> None:
    for name in [m for m in sys.modules if m.split(".")[0] == "qeframe_example_family"]:
        del sys.modules[name]


@pytest.fixture
def werner_ghz(monkeypatch):
    """The example plugin module, imported from its source folder (not installed)."""
    monkeypatch.syspath_prepend(str(EXAMPLE_DIR))
    _forget_example_modules()
    import qeframe_example_family.werner_ghz as module

    assert Path(module.__file__).is_relative_to(EXAMPLE_DIR)
    yield module
    _forget_example_modules()


# ---------------------------------------------------------------------------------- fast, in process


@pytest.mark.parametrize("n_qubits", [2, 3, 4])
def test_ground_truth_matches_numerical_negativity(werner_ghz, n_qubits):
    fam = werner_ghz.WernerGHZFamily()
    batch = fam.generate(300, np.random.default_rng(n_qubits), n_qubits=n_qubits)
    d = 2**n_qubits

    rho = validate_density_matrices(batch.rho, n_qubits=n_qubits)
    assert rho.shape == (300, d, d) and batch.ground_truth.shape == (300, n_cuts(n_qubits))
    assert batch.ground_truth.dtype == np.int8 and batch.ground_truth_provenance.dtype == np.uint8

    p = 2.0 * batch.rho[:, 0, d - 1].real  # the GHZ coherence is p/2
    lam = pt_min_eigenvalues(batch.rho)
    np.testing.assert_allclose(
        lam, np.repeat(werner_ghz.pt_min_eigenvalue(p, n_qubits)[:, None], lam.shape[1], 1), atol=1e-12
    )

    npt = lam < -1e-10
    assert np.array_equal(batch.ground_truth == 1, npt)
    assert np.array_equal(batch.ground_truth == 0, ~npt)  # exact family: never unknown
    assert np.array_equal(negativities(batch.rho) > 1e-10, npt)
    expected_prov = np.where(npt, provenance_code("npt"), provenance_code("analytic"))
    assert np.array_equal(batch.ground_truth_provenance, expected_prov)
    assert np.array_equal(batch.meta["fully_separable"], np.where(npt[:, 0], 0, 1).astype(np.int8))
    assert not batch.meta["pptes"].any() and not batch.meta["pure"].any()
    assert 0 < npt.mean() < 1  # p ~ U(0, 1) straddles the threshold


def test_threshold_closed_form(werner_ghz):
    assert werner_ghz.npt_threshold(2) == pytest.approx(1 / 3)  # two-qubit Werner state
    assert werner_ghz.npt_threshold(3) == pytest.approx(1 / 5)
    assert werner_ghz.npt_threshold(4) == pytest.approx(1 / 9)
    for n in (2, 3, 4, 5):
        assert werner_ghz.pt_min_eigenvalue(werner_ghz.npt_threshold(n), n) == pytest.approx(0.0, abs=1e-15)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(p=st.floats(0.0, 1.0), n_qubits=st.integers(2, 5))
def test_pt_spectrum_single_state_property(werner_ghz, p, n_qubits):
    rho = werner_ghz.werner_ghz_states(np.array([p]), n_qubits)
    lam = pt_min_eigenvalues(rho)[0]  # every cut has the same closed-form smallest eigenvalue
    np.testing.assert_allclose(lam, werner_ghz.pt_min_eigenvalue(p, n_qubits), atol=1e-12)
    threshold = werner_ghz.npt_threshold(n_qubits)
    if p > threshold + 1e-9:
        assert (lam < -1e-10).all()  # NPT on every cut
    elif p <= threshold:
        assert (lam > -1e-12).all()  # PPT on every cut


def test_matches_qiskit_ghz(werner_ghz):
    from qiskit import QuantumCircuit
    from qiskit.quantum_info import DensityMatrix, Statevector

    n = 3
    qc = QuantumCircuit(n)
    qc.h(0)
    for q in range(1, n):
        qc.cx(0, q)
    ghz = DensityMatrix(Statevector(qc)).data  # GHZ is symmetric: the endianness does not matter
    p = np.array([0.0, 0.3, 1.0])
    expected = p[:, None, None] * ghz + (1 - p)[:, None, None] * np.eye(2**n) / 2**n
    np.testing.assert_allclose(werner_ghz.werner_ghz_states(p, n), expected, atol=1e-12)


def test_p_range_and_local_randomize(werner_ghz):
    fam = werner_ghz.WernerGHZFamily(werner_ghz.WernerGHZParams(p_range=(0.05, 0.1), local_randomize=True))
    batch = fam.generate(50, np.random.default_rng(1), n_qubits=3)
    validate_density_matrices(batch.rho)
    assert (batch.ground_truth == 0).all()  # below p* = 1/5 on every cut, after randomisation too
    assert (pt_min_eigenvalues(batch.rho) > -1e-10).all()
    assert (batch.meta["fully_separable"] == 1).all()


def test_through_the_registry_fixture(werner_ghz, qeframe_registry):
    from qeframe.errors import SpecError

    reg = qeframe_registry(werner_ghz, entry_points=False)
    fam = reg.create("family", "werner_ghz", {"p_range": [0.9, 1.0]})
    assert (fam.generate(8, np.random.default_rng(0)).ground_truth == 1).all()
    with pytest.raises(SpecError, match="p_range"):
        reg.create("family", "werner_ghz", {"p_range": [0.5, 1.5]})
    with pytest.raises(SpecError, match="unknown key"):
        reg.create("family", "werner_ghz", {"visibility": 0.5})


# ------------------------------------------------------------------------------ slow, really installs


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split(".")[:2] if part.isdigit())


def _make_venv_that_sees(tmp_path: Path) -> Path:
    """A fresh venv whose ``site-packages`` chains to the running environment's ones.

    ``--system-site-packages`` is not enough when the tests already run inside a venv (it would
    expose the *base* interpreter's packages, not this venv's). A ``.pth`` file runs
    ``site.addsitedir`` on each site directory of the running interpreter, so their own ``.pth``
    files (editable installs) are processed as well. The new venv comes before them on
    ``sys.path``, so what pip installs there is what gets imported.
    """
    venv = tmp_path / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, capture_output=True
    )
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    parents = [*site.getsitepackages(), sysconfig.get_paths()["purelib"]]
    if site.ENABLE_USER_SITE:
        parents.append(site.getusersitepackages())
    parents = list(dict.fromkeys(p for p in parents if Path(p).is_dir()))
    lines = "".join(f"import site; site.addsitedir({p!r})\n" for p in parents)
    (Path(purelib) / "_qeframe_parent_env.pth").write_text(lines)
    return python


@pytest.mark.slow
def test_pip_install_example_plugin(tmp_path):
    # Not imported here: importing setuptools into the test process would patch distutils.
    if importlib.util.find_spec("pip") is None:
        pytest.skip("pip is not installed in the running environment")
    if importlib.util.find_spec("setuptools") is None or _version_tuple(
        importlib.metadata.version("setuptools")
    ) < (70, 1):
        pytest.skip(
            "building the example without network needs setuptools >= 70.1 in the running environment"
        )

    source = (
        tmp_path / "src"
    )  # build from a copy: setuptools writes build/ and *.egg-info next to the sources
    shutil.copytree(EXAMPLE_DIR, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    python = _make_venv_that_sees(tmp_path)
    env = {k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", "PYTHONHOME"}}
    env.update(PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1", PYTHONNOUSERSITE="1")

    # No network (--no-index), the running setuptools as the backend (--no-build-isolation); the
    # dependency `qeframe>=0.1` must be found already installed, so nothing else is installed.
    pip = subprocess.run(
        [str(python), "-m", "pip", "install", "--no-index", "--no-build-isolation", str(source)],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        timeout=240,
    )
    assert pip.returncode == 0, pip.stdout + pip.stderr
    installed = [line for line in pip.stdout.splitlines() if line.startswith("Successfully installed")]
    assert installed == [f"Successfully installed {DIST_NAME}-{DIST_VERSION}"], pip.stdout

    cli = subprocess.run(
        [str(python), "-m", "qeframe.cli", "plugins", "--json"],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert cli.returncode == 0, cli.stderr
    listing = json.loads(cli.stdout)
    ours = [p for p in listing["plugins"] if p["kind"] == "family" and p["name"] == "werner_ghz"]
    assert ours, f"werner_ghz not listed: {listing}"
    assert ours[0]["distribution"].replace("_", "-").lower() == DIST_NAME
    assert ours[0]["version"] == DIST_VERSION
    assert "white noise" in ours[0]["description"]
    assert not [b for b in listing["broken"] if b["distribution"].replace("_", "-").lower() == DIST_NAME]

    snippet = textwrap.dedent(
        """
        import json
        import numpy as np
        import qeframe_example_family
        from qeframe.plugin.registry import get_registry
        from qeframe.quantum.validation import validate_density_matrices

        reg = get_registry()
        fam = reg.create("family", "werner_ghz", {"p_range": [0.3, 1.0], "local_randomize": True})
        batch = fam.generate(64, np.random.default_rng(7), n_qubits=3)
        rho = validate_density_matrices(batch.rho, n_qubits=3)
        info = reg.info("family", "werner_ghz")
        print(json.dumps({
            "shape": list(rho.shape),
            "entangled": bool((batch.ground_truth == 1).all()),
            "module": qeframe_example_family.__file__,
            "distribution": info.distribution,
        }))
        """
    )
    run = subprocess.run(
        [str(python), "-c", snippet], check=False, capture_output=True, text=True, env=env, timeout=120
    )
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["shape"] == [64, 8, 8]
    assert result["entangled"]  # p >= 0.3 > 1/5 on every cut
    assert str(tmp_path) in result["module"]  # imported from the new venv, not from the source folder
    assert result["distribution"].replace("_", "-").lower() == DIST_NAME
