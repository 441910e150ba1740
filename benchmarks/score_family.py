"""Cost per training step and variance of each binary score estimator (reinmax.estimators.bernoulli_score)
against ReinMax for Bernoulli logits (reinmax.estimators.bernoulli), on a 2x200 Bernoulli VAE of Shi et
al.'s shape (784-200-200-200 encoder, 200-200-200-784 decoder, LeakyReLU 0.3, fixed uniform
prior, batch 100, dynamically binarised MNIST), at K = 2 and 3 evaluations of f per example.

    .venv/bin/python benchmarks/score_family.py [--threads 1] [--json out.json] [--quick]

* **Cost**: the median wall time of a full training step (encoder and decoder forward, the
  estimator, backward, Adam on the model, and Adam on the estimator's control parts when it has
  any), over --rounds steps after a warm-up, and its ratio to ReinMax's step at the same K
  (ReinMax: K independent straight-through passes averaged, as the authors' script does).
* **Variance at a fixed point**: the model is first trained --warm-steps steps with ReinMax (the
  fixed point), then frozen; each estimator's control parts are trained --control-steps steps on
  fresh batches (as they would have been during training), and the per-coordinate variance of
  its estimate of d(-ELBO)/d(encoder logits) over --draws draws on one fixed batch is averaged
  over the batch and the 200 latents. ReinMax's estimate is biased; its variance is reported all
  the same (a variance, not an error).
"""
import argparse
import json
import statistics
import time

import torch
from torch import nn

from reinmax import bernoulli
from reinmax.estimators.bernoulli_score import build_binary_score_estimator

NAMES = ["REINFORCE", "RLOO", "DisARM", "ARMS", "DoubleCV", "RELAX", "RODEO"]
D, HIDDEN, PIXELS = 200, 200, 784


def mlp(sizes):
    layers = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(a, b), nn.LeakyReLU(0.3)]
    return nn.Sequential(*layers[:-1])


class VAE(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = mlp([PIXELS, HIDDEN, HIDDEN, D])
        self.decoder = mlp([D, HIDDEN, HIDDEN, PIXELS])

    def loss(self, x, logits):
        """-ELBO of one sample b per row: f(b) with the logits detached in log q (the score
        estimators' f; the direct dependence is dropped, as the baselines drop it)."""
        eta = logits.detach()

        def f(b):
            recon = -nn.functional.binary_cross_entropy_with_logits(
                self.decoder(b), x.expand(b.shape[:-1] + x.shape[-1:]), reduction="none").sum(-1)
            log_prior = -D * torch.log(torch.tensor(2.0))
            log_q = (b * eta - nn.functional.softplus(eta)).sum(-1)
            return -(recon + log_prior - log_q)
        return f


def reinmax_step(vae, x, K, tau=1.0):
    logits = vae.encoder(x)
    b, _ = bernoulli.reinmax(logits.expand((K,) + logits.shape), tau)
    # the ReinMax loss keeps log q's dependence on the logits (its own gradient)
    recon = -nn.functional.binary_cross_entropy_with_logits(
        vae.decoder(b), x.expand((K,) + x.shape), reduction="none").sum(-1)
    log_q = (b * logits - nn.functional.softplus(logits)).sum(-1)
    return (-(recon - D * torch.log(torch.tensor(2.0)) - log_q)).mean(), logits


def score_step(vae, est, x):
    logits = vae.encoder(x)
    out = est(logits, vae.loss(x, logits), **({"context": x} if est.name == "RELAX" else {}))
    return est.surrogate(logits, out) + out.values.mean(0).mean(), out


def build(name, K):
    if name == "RELAX":
        # RELAX draws one sample and evaluates f three times: K = 3 evaluations; at K = 2 it
        # is not defined by evaluations, so it runs at K = 3 only.
        return build_binary_score_estimator("RELAX", num_samples=1, num_latents=D,
                                            context_features=PIXELS)
    return build_binary_score_estimator(name, num_samples=K)


def timed(fn, rounds):
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--warm-steps", type=int, default=300)
    parser.add_argument("--control-steps", type=int, default=100)
    parser.add_argument("--draws", type=int, default=40)
    parser.add_argument("--images", type=int, default=10000)
    parser.add_argument("--quick", action="store_true", help="a seconds-long run (tests)")
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    for name in ("threads", "rounds", "draws", "images"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1; got {getattr(args, name)}")
    if args.quick:
        args.rounds, args.warm_steps, args.control_steps, args.draws, args.images = 2, 5, 2, 3, 300
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    from reinmax.experiments.vae import load_images
    images = load_images("train", args.images, None, torch.device("cpu")).reshape(-1, PIXELS)
    g = torch.Generator().manual_seed(0)

    def batch():
        index = torch.randint(len(images), (100,), generator=g)
        return torch.bernoulli(images[index], generator=g)          # dynamic binarisation

    vae = VAE()
    opt = torch.optim.Adam(vae.parameters(), 1e-3)
    for _ in range(args.warm_steps):                                 # the fixed point
        loss, _ = reinmax_step(vae, batch(), 2)
        opt.zero_grad()
        loss.backward()
        opt.step()
    fixed = batch()
    state = {k: v.clone() for k, v in vae.state_dict().items()}
    results = {"machine": {"torch_threads": torch.get_num_threads()}, "args": vars(args), "rows": []}
    print(f"2x200 Bernoulli VAE, batch 100, torch threads {torch.get_num_threads()}; variance at "
          f"the model after {args.warm_steps} ReinMax steps")
    print(f"{'method':<10} {'K':>2} {'ms/step':>9} {'x ReinMax':>9} {'variance':>11}")
    for K in (2, 3):
        rows = {}

        def reinmax_train():
            loss, _ = reinmax_step(vae, batch(), K)
            opt.zero_grad()
            loss.backward()
            opt.step()
        vae.load_state_dict(state)
        reinmax_train()
        base_ms = timed(reinmax_train, args.rounds)
        vae.load_state_dict(state)
        draws = []
        for _ in range(args.draws):
            loss, leaf = reinmax_step_with_leaf(vae, fixed, K)
            draws.append(torch.autograd.grad(loss * 100, leaf)[0])   # per-example: x batch size
        variance = torch.stack(draws).var(0).mean().item()
        rows["ReinMax"] = {"ms": base_ms, "x_reinmax": 1.0, "variance": variance}
        for name in NAMES:
            if name == "DisARM" and K == 3 or name == "RELAX" and K == 2:
                continue
            vae.load_state_dict(state)
            est = build(name, K)
            params = list(est.parameters())
            control = torch.optim.Adam(params, 1e-3) if params else None

            def train():
                loss, out = score_step(vae, est, batch())
                if control is not None:
                    control.zero_grad()
                    est.variance_backward(out)
                    control.step()
                opt.zero_grad()
                loss.backward()
                opt.step()
            train()
            ms = timed(train, args.rounds)
            vae.load_state_dict(state)
            for _ in range(args.control_steps if control is not None else 0):
                x = batch()                                   # fresh batches, model frozen
                logits = vae.encoder(x).detach()
                out = est(logits, vae.loss(x, logits), **({"context": x} if name == "RELAX" else {}))
                control.zero_grad()
                est.variance_backward(out)
                control.step()
            with torch.no_grad():
                logits = vae.encoder(fixed)
            draws = []
            for _ in range(args.draws):
                out = est(logits, vae.loss(fixed, logits), **({"context": fixed} if name == "RELAX" else {}))
                draws.append(out.grad.detach())
            variance = torch.stack(draws).var(0).mean().item()
            rows[name] = {"ms": ms, "x_reinmax": ms / base_ms, "variance": variance}
        for name, row in rows.items():
            print(f"{name:<10} {K:>2} {row['ms']:>9.1f} {row['x_reinmax']:>9.2f} {row['variance']:>11.4g}",
                  flush=True)
        results["rows"].append({"K": K, "rows": rows})
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=1)


def reinmax_step_with_leaf(vae, x, K, tau=1.0):
    """ReinMax's loss with the encoder logits as a leaf, to read its estimate of d(-ELBO)/d
    logits (per example: the batch mean's gradient times the batch size)."""
    leaf = vae.encoder(x).detach().requires_grad_(True)
    b, _ = bernoulli.reinmax(leaf.expand((K,) + leaf.shape), tau)
    recon = -nn.functional.binary_cross_entropy_with_logits(
        vae.decoder(b), x.expand((K,) + x.shape), reduction="none").sum(-1)
    log_q = (b * leaf - nn.functional.softplus(leaf)).sum(-1)
    return (-(recon - D * torch.log(torch.tensor(2.0)) - log_q)).mean(), leaf


if __name__ == "__main__":
    main()
