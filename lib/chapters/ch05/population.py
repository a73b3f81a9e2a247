"""The population: one MLP per training method x configuration x seed, and how each is built and trained."""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

import torch

from ... import attacks, config, data, models, stack
from ... import local_errors as le

__all__ = [
    "METHODS",
    "METHOD_TITLES",
    "Network",
    "population",
    "build",
    "train_network",
    "train_configuration",
    "anneal_epochs",
]

METHODS = ("backprop", "local", "adversarial")
METHOD_TITLES = {"backprop": "backprop", "local": "local errors", "adversarial": "PGD adversarial training"}


@dataclass(frozen=True)
class Network:
    """One member of the population: training method, configuration and seed."""

    method: str
    condition: str
    widths: tuple[int, ...]
    epochs: int
    init_scale: float = 1.0
    weight_decay: float = 0.0
    seed: int = 0

    @property
    def configuration(self) -> str:
        """Method and condition: the cluster whose seeds a bootstrap keeps together."""
        return f"{self.method} / {self.condition}"


def population(cfg: SimpleNamespace) -> list[Network]:
    """Every method x (base and each condition) x seed; the same seeds in every configuration."""
    w, e = tuple(cfg.widths), cfg.epochs
    base = [("base", w, e, 1.0, 0.0)]
    base += [(f"{n} epochs", w, n, 1.0, 0.0) for n in cfg.epoch_grid]
    base += [(f"width {n}", (n,) * len(w), e, 1.0, 0.0) for n in cfg.width_grid]
    base += [(f"init x{s:g}", w, e, s, 0.0) for s in cfg.init_scales]
    base += [(f"weight decay {d:g}", w, e, 1.0, d) for d in cfg.weight_decays]
    return [
        Network(m, c, ws, ep, s, d, 1000 * cfg.seed + k)
        for m in METHODS
        for (c, ws, ep, s, d) in base
        for k in range(cfg.n_seeds)
    ]


def build(cfg: SimpleNamespace, ds: data.Dataset, spec: Network) -> models.MLP:
    """A fresh MLP (with fixed random readouts for local errors), trainable weights scaled by ``init_scale``."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(spec.seed)
        if spec.method == "local":
            net = le.LocalErrorMLP(
                ds.n_features,
                spec.widths,
                ds.n_classes,
                readout_scale=cfg.readout_scale,
                generator=config.generator(spec.seed + 1),
            )
        else:
            net = models.MLP(ds.n_features, spec.widths, ds.n_classes)
    with torch.no_grad():
        for p in net.parameters():  # the local readouts are buffers: they keep their scale
            p.mul_(spec.init_scale)
    return net.to(cfg.device)


def _training(cfg: SimpleNamespace, ds: data.Dataset, spec: Network, generator: torch.Generator) -> dict:
    """The loss and batch transform of ``spec``'s training method; PGD starts drawn from ``generator``."""
    if spec.method == "local":
        return {"loss": "local"}
    if spec.method == "adversarial":
        return {
            "transform": attacks.pgd_training(
                cfg.at_eps, norm="l2", steps=cfg.at_steps, generator=generator, clamp=ds.value_range
            )
        }
    return {}


def train_network(cfg: SimpleNamespace, ds: data.Dataset, spec: Network) -> models.MLP:
    """Train one network with Adam: end to end, by local errors, or on L2 PGD examples (Madry et al.);
    the last ``anneal_share`` of its epochs at lr/10, as chapter 1 trains (a stack of one)."""
    return train_configuration(cfg, ds, [spec])[0]


def train_configuration(cfg: SimpleNamespace, ds: data.Dataset, specs: list[Network]) -> list[models.MLP]:
    """Train the seeds of one configuration together, as one :class:`lib.stack.StackedMLP`.

    Each network keeps its own initial weights, readouts and batch order (from its seed),
    exactly as if trained alone; for adversarial training the PGD random starts of each
    stacked batch are one draw, from the first seed's generator.
    """
    kinds = {(s.method, s.widths, s.epochs, s.init_scale, s.weight_decay) for s in specs}
    if len(kinds) != 1:
        raise ValueError(
            "train_configuration trains the seeds of one configuration: the specs differ in more than their seed"
        )
    first = specs[0]
    st = stack.StackedMLP([build(cfg, ds, s) for s in specs])
    stack.fit_annealed(
        st,
        ds.x_train,
        ds.y_train,
        epochs=first.epochs,
        anneal_epochs=anneal_epochs(cfg, first.epochs),
        batch_size=cfg.batch_size,
        lr=cfg.lr,
        weight_decay=first.weight_decay,
        generators=[config.generator(s.seed + 2) for s in specs],
        desc=first.configuration,
        **_training(cfg, ds, first, config.generator(first.seed + 3)),
    )
    return st.unstack()


def anneal_epochs(cfg: SimpleNamespace, epochs: int) -> int:
    """The last epochs of an ``epochs``-long training run at lr/10: ``anneal_share`` of them, rounded."""
    return min(round(cfg.anneal_share * epochs), epochs - 1)
