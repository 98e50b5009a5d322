"""Router plugins: ``autoencoder`` (the paper's separability measure M) and ``pt_spectrum``.

Contract (``qeframe.plugin.interfaces.Router``): ``route`` before ``fit`` is a one-line QeframeError,
thresholds must be strictly increasing (pydantic error naming ``thresholds``), ``state_dict`` /
``load_state_dict`` reproduce the routes exactly; physics: an autoencoder fitted on product states
reconstructs product states far better than entangled ones, the PT score matches numpy/LAPACK.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from pydantic import ValidationError
from qeframe_plugins.routers._common import bucketize, check_edges
from qeframe_plugins.routers.autoencoder import DEFAULT_THRESHOLDS, AutoencoderRouter, SeparableAutoencoder
from qeframe_plugins.routers.pt_spectrum import PtSpectrumRouter

from qeframe.errors import QeframeError, SpecError
from qeframe.plugin.registry import get_registry
from qeframe.quantum.ppt import pt_min_eigenvalues
from qeframe.quantum.random import haar_state
from qeframe.quantum.torch_ops import to_model_input

# A small, quickly trained autoencoder (the defaults are the authors' 24 terms, 4 FC layers, 20 epochs).
QUICK = {"terms": 4, "fc_layers": 0, "epochs": 2, "lr": 1e-2, "batch_size": 16}


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models train fastest on one thread, above all on a shared machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _dm(psi: np.ndarray) -> np.ndarray:
    return np.einsum("ni,nj->nij", psi, psi.conj())


def product_states(count: int, rng: np.random.Generator, n: int = 3) -> np.ndarray:
    """Pure product states ``|a> (x) |b> (x) |c>`` with Haar-random single-qubit factors, ``(N, d, d)``."""
    psi = np.ones((count, 1), complex)
    for _ in range(n):
        q = haar_state(2, count, rng)
        psi = (psi[:, :, None] * q[:, None, :]).reshape(count, -1)
    return _dm(psi)


def x_of(rho: np.ndarray) -> torch.Tensor:
    return to_model_input(torch.from_numpy(rho).to(torch.complex64))


# ------------------------------------------------------------------------------------------------ contract


@pytest.mark.parametrize("cls", [AutoencoderRouter, PtSpectrumRouter])
def test_route_before_fit_is_a_clear_error(cls):
    router = cls()
    x = x_of(product_states(3, np.random.default_rng(0)))
    with pytest.raises(QeframeError, match="not fitted.*fit"):
        router.route(x)
    with pytest.raises(QeframeError, match="not fitted"):
        router.scores(x)
    with pytest.raises(QeframeError, match="not fitted"):
        router.state_dict()


@pytest.mark.parametrize("cls", [AutoencoderRouter, PtSpectrumRouter])
@pytest.mark.parametrize(
    "bad",
    [[0.0, 1e-3, 1e-3, 1.0], [0.0, 2e-3, 1e-3], [1.0], [], [0.0, float("nan"), 1.0], ["inf", 0.0]],
)
def test_thresholds_must_increase_strictly(cls, bad):
    with pytest.raises(ValidationError) as info:
        cls.Params(thresholds=bad)
    assert [e["loc"] for e in info.value.errors()] == [("thresholds",)]
    # through the registry, the error is one line naming the registry.toml key
    with pytest.raises(SpecError, match=r"^experiments\.e\.router\.params\.thresholds: "):
        get_registry().create("router", cls.name, {"thresholds": bad}, key="experiments.e.router.params")


def test_thresholds_accept_inf_strings_and_round_trip_through_json():
    params = AutoencoderRouter.Params(thresholds=[0, 1e-3, "inf"])
    assert params.thresholds == [0.0, 1e-3, math.inf]
    dumped = json.loads(json.dumps(params.model_dump(mode="json"), allow_nan=False))
    assert dumped["thresholds"] == [0.0, 1e-3, "inf"]
    assert AutoencoderRouter.Params.model_validate(dumped) == params
    assert AutoencoderRouter.Params().thresholds == list(DEFAULT_THRESHOLDS)
    assert AutoencoderRouter().n_domains == 10  # the paper's N_e = 10


def test_bucketize_half_open_domains_with_open_ends():
    edges = torch.tensor([0.0, 1.0, 2.0, math.inf], dtype=torch.float64)
    s = torch.tensor([-5.0, 0.0, 0.5, 1.0, 1.999, 2.0, 1e9, math.inf], dtype=torch.float64)
    assert bucketize(s, edges).tolist() == [0, 0, 0, 1, 1, 2, 2, 2]
    finite = torch.tensor([0.0, 1.0, 2.0], dtype=torch.float64)  # last domain open above its edge too
    assert bucketize(torch.tensor([5.0, 1.5, -1.0], dtype=torch.float64), finite).tolist() == [1, 1, 0]
    assert check_edges([-math.inf, 0, math.inf]) == [-math.inf, 0.0, math.inf]


def test_routers_are_registered_through_entry_points():
    reg = get_registry()
    assert reg.get("router", "autoencoder") is AutoencoderRouter
    assert reg.get("router", "pt_spectrum") is PtSpectrumRouter


# ------------------------------------------------------------------------------------------------ autoencoder


def test_decoder_is_the_mean_of_kronecker_products():
    g = torch.Generator().manual_seed(1)
    factors = torch.randn(2, 3, 5, 2, 2, dtype=torch.complex64, generator=g)  # (B, n, K, 2, 2)
    x = SeparableAutoencoder.decode(factors)
    f = factors.numpy()
    for b in range(2):
        expected = sum(np.kron(np.kron(f[b, 0, k], f[b, 1, k]), f[b, 2, k]) for k in range(5)) / 5
        np.testing.assert_allclose(x[b, 0].numpy() + 1j * x[b, 1].numpy(), expected, atol=1e-5)


@pytest.mark.parametrize("n", [2, 3, 4])
def test_encoder_shapes_for_several_qubit_numbers(n):
    model = SeparableAutoencoder(n, 3, 1)
    x = torch.randn(4, 2, 2**n, 2**n)
    assert model.encode(x).shape == (4, n, 3, 2, 2)
    assert model(x).shape == x.shape and model.errors(x).shape == (4,)


def test_autoencoder_fitted_on_product_states_scores_them_below_entangled_states():
    rng = np.random.default_rng(0)
    train = x_of(product_states(1000, rng))
    product, entangled = x_of(product_states(300, rng)), x_of(_dm(haar_state(8, 300, rng)))
    router = AutoencoderRouter(AutoencoderRouter.Params(**QUICK)).fit(train)
    m_prod, m_ent = router.scores(product), router.scores(entangled)
    assert m_prod.shape == (300,) and (m_prod >= 0).all()
    assert router.history[-1] < 0.5 * router.history[0]  # it learned
    # an untrained reconstruction (~0) would give M ~ mean |x| ~ 0.05 for both kinds
    assert m_prod.median() < 0.25 * product.abs().mean()
    assert m_prod.median() < 0.2 * m_ent.median()
    assert torch.quantile(m_prod, 0.9) < torch.quantile(m_ent, 0.1)
    # with the paper's domains, entangled states land in higher domains
    assert router.route(product).float().mean() + 1 < router.route(entangled).float().mean()


def test_autoencoder_learns_only_from_states_separable_on_every_cut():
    rng = np.random.default_rng(1)
    x = x_of(np.concatenate([product_states(40, rng), _dm(haar_state(8, 24, rng))]))
    labels = torch.zeros((64, 3), dtype=torch.int8)
    labels[40:] = 1
    labels[40:, 0] = 0  # separable on one cut only: still excluded
    labels[:5, 2] = -1  # unknown on a cut: not "separable on every cut"
    router = AutoencoderRouter(AutoencoderRouter.Params(**{**QUICK, "epochs": 1})).fit(x, labels)
    assert router.n_train == 35
    with pytest.raises(QeframeError, match="no training sample is labelled separable"):
        AutoencoderRouter(AutoencoderRouter.Params(**QUICK)).fit(x[40:], labels[40:])
    assert AutoencoderRouter(AutoencoderRouter.Params(**{**QUICK, "epochs": 1})).fit(x).n_train == 64


def test_autoencoder_is_deterministic_and_leaves_the_global_rng_alone():
    x = x_of(product_states(64, np.random.default_rng(2)))
    params = AutoencoderRouter.Params(**{**QUICK, "epochs": 1, "seed": 7})
    torch.manual_seed(123)
    before = torch.get_rng_state()
    a = AutoencoderRouter(params).fit(x)
    assert torch.equal(torch.get_rng_state(), before)
    b = AutoencoderRouter(params).fit(x)
    c = AutoencoderRouter(params.model_copy(update={"seed": 8})).fit(x)
    assert torch.equal(a.scores(x), b.scores(x))
    assert not torch.equal(a.scores(x), c.scores(x))


def test_autoencoder_state_dict_round_trip_gives_identical_routes_and_scores():
    rng = np.random.default_rng(3)
    x = x_of(np.concatenate([product_states(64, rng), _dm(haar_state(8, 64, rng))]))
    params = AutoencoderRouter.Params(
        **{**QUICK, "epochs": 1, "thresholds": [0, 1e-3, 1e-2, 3e-2, 5e-2, "inf"]}
    )
    router = AutoencoderRouter(params).fit(x[:64])
    state = router.state_dict()
    assert set(state) == {"tensors", "config"}
    assert all(isinstance(t, torch.Tensor) for t in state["tensors"].values())
    config = json.loads(json.dumps(state["config"], allow_nan=False))  # JSON as it goes to disk
    restored = AutoencoderRouter()  # default params: the state brings its own
    restored.load_state_dict(
        {"tensors": {k: v.clone() for k, v in state["tensors"].items()}, "config": config}
    )
    assert restored.params == params and restored.n_domains == 5
    assert torch.equal(restored.scores(x), router.scores(x))
    assert torch.equal(restored.route(x), router.route(x))
    assert len(torch.unique(router.route(x))) >= 2  # the comparison is not trivial
    with pytest.raises(QeframeError, match="router 'pt_spectrum'"):
        PtSpectrumRouter().load_state_dict({"tensors": state["tensors"], "config": config})


def test_routing_ignores_autocast_and_checks_the_input():
    x = x_of(product_states(32, np.random.default_rng(4)))
    router = AutoencoderRouter(AutoencoderRouter.Params(**{**QUICK, "epochs": 1})).fit(x)
    plain = router.scores(x)
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        assert torch.equal(router.scores(x), plain)
    with pytest.raises(QeframeError, match="fitted on 3-qubit states"):
        router.route(torch.zeros(2, 2, 4, 4))
    with pytest.raises(QeframeError, match=r"expected model input \(N, 2, d, d\)"):
        router.route(torch.zeros(2, 8, 8))


# ------------------------------------------------------------------------------------------------ pt_spectrum


def test_pt_score_matches_numpy_and_closed_forms():
    rng = np.random.default_rng(5)
    ghz = np.zeros(8, complex)
    ghz[[0, 7]] = 2**-0.5
    rho = np.concatenate(
        [_dm(haar_state(8, 20, rng)), product_states(5, rng), _dm(ghz[None]), np.eye(8)[None] / 8]
    )
    x = to_model_input(torch.from_numpy(rho))  # float64 input keeps full precision
    router = PtSpectrumRouter().fit(x)
    s = router.scores(x).numpy()
    np.testing.assert_allclose(s, pt_min_eigenvalues(rho).min(axis=1), atol=1e-10)
    assert s[25] == pytest.approx(-0.5) and s[26] == pytest.approx(1 / 8)  # GHZ, maximally mixed
    assert np.all(np.abs(s[20:25]) < 1e-9)  # pure product states: PT is a pure state again
    assert router.route(x)[[25, 26]].tolist() == [0, 5]
    assert (router.route(x)[:20] <= 2).all()  # Haar states are NPT


def test_pt_quantile_edges_are_learned_and_round_trip():
    rng = np.random.default_rng(6)
    rho = np.concatenate(
        [_dm(haar_state(8, 60, rng)), 0.5 * _dm(haar_state(8, 60, rng)) + 0.5 * np.eye(8) / 8]
    )
    x = to_model_input(torch.from_numpy(rho))
    router = PtSpectrumRouter(PtSpectrumRouter.Params(quantiles=4))
    assert router.n_domains == 4
    router.fit(x)
    counts = torch.bincount(router.route(x), minlength=4)
    assert router.n_domains == 4 and counts.tolist() == [30, 30, 30, 30]
    state = router.state_dict()
    other = PtSpectrumRouter()
    other.load_state_dict({"tensors": state["tensors"], "config": json.loads(json.dumps(state["config"]))})
    assert torch.equal(other.edges, router.edges) and torch.equal(other.route(x), router.route(x))
    with pytest.raises(ValidationError, match="either thresholds or quantiles"):
        PtSpectrumRouter.Params(quantiles=3, thresholds=[0, 1])
