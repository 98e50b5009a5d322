"""Benchmark the ensemble: router fitting, routing, a 10-member ensemble vs one model, and batching.

Writes ``benchmarks/results/ensemble.json``::

    python benchmarks/bench_ensemble.py --threads 1            # 20 000 states (quickstart size), CNN, CPU
    python benchmarks/bench_ensemble.py --samples 4000 --out /tmp/ensemble.json   # a quick look
    python benchmarks/bench_ensemble.py --device cuda --samples 20000

Data: ``--samples`` 3-qubit states from the built-in families, labelled by ``negativity`` — 40 %
separable mixtures (``product``, kind separable, Haar factors), 20 % biseparable mixtures, 20 %
biseparable pure and 20 % entangled pure (``haar``) — the kinds of the quickstart training set.

Timed, in this order:

* ``router_fit``: the ``autoencoder`` router with the authors' architecture (24 terms, 4 FC layers)
  for ``--router-epochs`` epochs on the separable part; also how the training set falls into the
  paper's ten M domains after so short a fit (``router_fit.domain_counts``).
* ``routing``: ``route`` of the whole set (autoencoder forward passes only).
* ``single``: one model (``--backbone``) trained for ``--epochs`` on all samples (the trainer).
* ``ensemble``: :func:`qeframe.learn.ensemble_training.train_ensemble` with ``--members`` members, routed by
  ``pt_spectrum`` with ``quantiles = members`` (equally filled domains, so exactly that many
  members; the cheap router keeps the member training in focus), the same backbone and epochs.
  Members train one after the other on their subsets, so the total should be about ``single``
  plus per-member overhead (model construction, validation-free epochs, checkpoint-free here).
* ``batched_step``: one optimisation step of every member on a batch of ``--batch-size`` each,
  (a) one member after the other, (b) all members at once with :func:`torch.func.stack_module_state`
  + :func:`torch.func.vmap` of :func:`torch.func.grad` of a :func:`torch.func.functional_call`,
  followed by one Adam step on the stacked parameters (Adam is elementwise, so this is the same
  update as ten separate optimisers). Reports milliseconds per step and the speed-up.

The 1-minute load average before and after is recorded: on a shared machine other processes change
the numbers a lot.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import time
from pathlib import Path

from _common import device_name, load_average, report_header, write_report


def _data(n: int, seed: int, registry):
    """``n`` labelled 3-qubit states of four kinds (module docstring) as DatasetArrays."""
    import numpy as np

    from qeframe.learn.arrays import DatasetArrays
    from qeframe.plugin.interfaces import StateBatch

    rng = np.random.default_rng(seed)
    recipe = [
        ("product", {"kind": "separable", "source": "haar"}, 0.4, "mixed-separable"),
        ("product", {"kind": "biseparable", "source": "haar"}, 0.2, "mixed-biseparable"),
        ("haar", {"kind": "biseparable"}, 0.2, "pure-biseparable"),
        ("haar", {"kind": "entangled"}, 0.2, "pure-entangled"),
    ]
    labeler = registry.create("labeler", "negativity", {})
    batches, labels, family = [], [], []
    counts = [round(frac * n) for _, _, frac, _ in recipe]
    counts[-1] = n - sum(counts[:-1])
    for (name, params, _, tag), count in zip(recipe, counts):
        batch = registry.create("family", name, params).generate(count, rng, 3)
        lab = labeler.label(batch)
        batches.append(batch.take(lab.keep))
        labels.append(lab.labels)
        family += [tag] * int(lab.keep.sum())
    batch = StateBatch.concatenate(batches)
    order = rng.permutation(len(batch))
    return DatasetArrays(
        "bench",
        batch.rho[order],
        np.concatenate(labels)[order],
        ground_truth=batch.ground_truth[order],
        family=np.array(family)[order],
    )


def _batched_step(registry, model_spec, n_members: int, batch: int, device, repeats: int) -> dict:
    """ms per optimisation step of all members: sequential vs ``vmap`` over stacked parameters."""
    import torch
    from torch.func import functional_call, grad, stack_module_state, vmap

    from qeframe.learn.losses import masked_bce

    backbone = registry.create("backbone", model_spec.backbone, model_spec.params)
    torch.manual_seed(0)
    models = [backbone.build(3).to(device) for _ in range(n_members)]
    g = torch.Generator().manual_seed(0)
    xs = torch.randn(n_members, batch, 2, 8, 8, generator=g).to(device)
    ys = torch.randint(0, 2, (n_members, batch, 3), generator=g).to(device=device, dtype=torch.int8)

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    # (a) one member after the other, one Adam each (what train_ensemble does, per batch)
    opts = [torch.optim.Adam(m.parameters(), lr=1e-3) for m in models]

    def sequential():
        for m, opt, x, y in zip(models, opts, xs, ys):
            loss, _ = masked_bce(m(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    # (b) all members in one vmap'd call on stacked parameters, one Adam on the stacks
    params, buffers = stack_module_state(models)
    params = {k: v.detach().clone().requires_grad_(True) for k, v in params.items()}
    base = copy.deepcopy(models[0]).to("meta")
    opt_stacked = torch.optim.Adam(list(params.values()), lr=1e-3)

    def member_loss(p, b, x, y):
        return masked_bce(functional_call(base, (p, b), (x,)), y)[0]

    grads_of = vmap(grad(member_loss))

    def stacked():
        grads = grads_of(params, buffers, xs, ys)
        for k, p in params.items():
            p.grad = grads[k]
        opt_stacked.step()

    out = {}
    for name, fn in (("sequential", sequential), ("vmap", stacked)):
        fn()  # warm-up
        sync()
        t0 = time.perf_counter()
        for _ in range(repeats):
            fn()
        sync()
        out[f"{name}_ms_per_step"] = round(1000 * (time.perf_counter() - t0) / repeats, 2)
    out["speedup_vmap"] = round(out["sequential_ms_per_step"] / out["vmap_ms_per_step"], 3)
    out.update(members=n_members, batch_per_member=batch, repeats=repeats)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=20000, help="states (quickstart-train has ~20 000)")
    parser.add_argument("--backbone", default="cnn")
    parser.add_argument("--params", default="{}", help="backbone params as JSON")
    parser.add_argument("--epochs", type=int, default=1, help="epochs of the single model and of each member")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--members", type=int, default=10)
    parser.add_argument("--router-epochs", type=int, default=2, help="autoencoder epochs (authors: 20)")
    parser.add_argument("--step-repeats", type=int, default=5, help="timed steps of batched_step")
    parser.add_argument("--device", default="cpu", help="auto | cpu | cuda")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "ensemble.json")
    args = parser.parse_args(argv)

    import numpy as np
    import torch

    from qeframe.config.specs import ModelSpec, TrainingSpec
    from qeframe.learn.arrays import model_input, resolve_device
    from qeframe.learn.ensemble import route_arrays
    from qeframe.learn.ensemble_training import train_ensemble
    from qeframe.learn.train import Trainer
    from qeframe.plugin.registry import Registry

    if args.threads:
        torch.set_num_threads(args.threads)
    registry = Registry.load()
    device = resolve_device(args.device)
    model_spec = ModelSpec(backbone=args.backbone, params=json.loads(args.params))
    training = TrainingSpec(epochs=args.epochs, batch_size=args.batch_size, seed=args.seed)
    load_before = os.getloadavg()

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    t0 = time.perf_counter()
    data = _data(args.samples, args.seed, registry)
    rows: dict = {"data": {"samples": len(data), "generate_and_label_s": round(time.perf_counter() - t0, 2)}}
    sep = (data.labels == 0).all(axis=1)
    rows["data"]["separable_on_every_cut"] = int(sep.sum())
    log(f"data: {len(data)} states ({int(sep.sum())} separable on every cut)")

    # autoencoder router, the authors' architecture
    router = registry.create("router", "autoencoder", {"epochs": args.router_epochs, "seed": args.seed})
    x = model_input(data.rho, device)
    labels = torch.tensor(data.labels, device=device)
    t0 = time.perf_counter()
    router.fit(x, labels)
    fit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    domains = route_arrays(router, data, device)
    route_s = time.perf_counter() - t0
    rows["router_fit"] = {
        "router": "autoencoder",
        "params": router.params.model_dump(mode="json"),
        "parameters": sum(p.numel() for p in router.model.parameters()),
        "train_samples": router.n_train,
        "seconds": round(fit_s, 3),
        "seconds_per_epoch": round(fit_s / args.router_epochs, 3),
        "samples_per_s": round(router.n_train * args.router_epochs / fit_s, 1),
        "loss_per_epoch": [round(v, 6) for v in router.history],
        "domain_counts": np.bincount(domains, minlength=router.n_domains).tolist(),
        "domain_counts_separable": np.bincount(domains[sep], minlength=router.n_domains).tolist(),
    }
    rows["routing"] = {
        "samples": len(data),
        "seconds": round(route_s, 3),
        "samples_per_s": round(len(data) / route_s, 1),
    }
    log(f"router fit {fit_s:.1f} s, routing {route_s:.2f} s; domains {rows['router_fit']['domain_counts']}")
    del x, labels

    # one model on everything
    t0 = time.perf_counter()
    trainer = Trainer(model_spec, training, 3, registry=registry, device=device)
    result = trainer.fit(data)
    single_s = time.perf_counter() - t0
    rows["single"] = {
        "seconds": round(single_s, 3),
        "train_time_s": round(sum(r["train_time_s"] for r in result.history), 3),
        "samples_per_s": round(len(data) * args.epochs / single_s, 1),
    }
    log(f"single model: {single_s:.1f} s")

    # a members-member ensemble routed by pt_spectrum quantiles (equal domains)
    pt = registry.create("router", "pt_spectrum", {"quantiles": args.members})
    t0 = time.perf_counter()
    ens = train_ensemble(
        data,
        router=pt,
        model_spec=model_spec,
        training=training,
        min_domain_size=1,
        registry=registry,
        device=device,
    )
    ens_s = time.perf_counter() - t0
    rows["ensemble"] = {
        "router": "pt_spectrum",
        "members": ens.n_members,
        "member_samples": [m.n_train for m in ens.members],
        "seconds": round(ens_s, 3),
        "router_fit_s": round(ens.router_fit_s, 3),
        "members_s": round(ens.train_s, 3),
        "member_seconds": [round(m.train_time_s, 3) for m in ens.members],
        "ratio_to_single": round(ens_s / single_s, 3),
    }
    log(f"ensemble of {ens.n_members}: {ens_s:.1f} s ({ens_s / single_s:.2f} x single)")

    rows["batched_step"] = _batched_step(
        registry, model_spec, args.members, args.batch_size, device, args.step_repeats
    )
    log(f"batched step: {rows['batched_step']}")

    report = {
        **report_header("ensemble"),
        "load_average_1min": load_average(load_before),
        "torch_threads": torch.get_num_threads(),
        "device": str(device),
        "device_name": device_name(device),
        "backbone": args.backbone,
        "params": model_spec.params,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "results": rows,
    }
    write_report(args.out, report)
    print(json.dumps(report["results"], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
