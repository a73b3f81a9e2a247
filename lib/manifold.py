"""Curved manifolds given by a map, their tangent spaces, and attacks restricted to them.

A manifold here is the image of a smooth map ``phi: R^k -> R^n``: an autoencoder's
decoder (natural images) or an explicit embedding (:class:`SineManifold`, synthetic
data). Its tangent space at ``phi(z)`` is the column span of the Jacobian of ``phi``
at ``z``, orthonormalised by QR; :func:`tangent_basis` computes it for a whole batch
at once with ``torch.func`` (``vmap`` of ``jacfwd``: ``k`` forward-mode passes, no
Python loop over samples). A perturbation ``d`` splits into ``P d`` (on-manifold) and
``d - P d`` (off-manifold), as in Shamir, Melamed & BenShmuel (2021), section on
on/off-manifold perturbations. Bases are ``(N, n, k)`` (one subspace per sample) or
``(n, k)`` (one subspace shared by all).

The random-direction baseline: for ``v`` uniform on the sphere of ``R^n`` and any fixed
k-dimensional subspace, ``E ||P v||^2 / ||v||^2 = k / n`` exactly, so the root-mean-square
on-manifold fraction of random directions is ``sqrt(k / n)``.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from . import attacks, subspace
from .config import IMAGE_SHAPES, MAX_WIDTH, Param, ParameterError
from .models import ACTIVATIONS, check_widths
from .train import make_optimizer

PARTS = ("on", "off")


# ---------------------------------------------------------------- tangent spaces


def tangent_basis(phi: Callable[[torch.Tensor], torch.Tensor], z: torch.Tensor) -> torch.Tensor:
    """Orthonormal bases ``(N, n, k)`` of the tangent spaces of ``phi``'s image at codes ``z`` ``(N, k)``.

    ``phi`` maps a batch ``(B, k)`` to ``(B, ...)``; its Jacobian at every code is taken in
    one batched call (``torch.func.vmap`` of ``torch.func.jacfwd``) and orthonormalised by
    a batched reduced QR. A rank-deficient Jacobian still yields k orthonormal columns.
    """
    if z.ndim != 2:
        raise ValueError(f"codes must have shape (N, k), got {tuple(z.shape)}")

    def single(zi: torch.Tensor) -> torch.Tensor:
        return phi(zi.unsqueeze(0)).reshape(-1)

    jac = torch.func.vmap(torch.func.jacfwd(single))(z.detach())
    q, _ = torch.linalg.qr(jac.detach())
    return q


def project(v: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """Orthogonal projection of each ``v[i]`` onto the span of its orthonormal basis (on-manifold part)."""
    flat = v.flatten(1)
    if basis.ndim == 2:
        out = (flat @ basis) @ basis.T
    elif basis.ndim == 3 and len(basis) == len(v):
        # two batched products; the same numbers as einsum("bnk,bk->bn", B, einsum("bnk,bn->bk", B, v)),
        # without einsum's parsing and copies (1.1-1.5x faster at (50..500, 64..784, 8..16), bit-identical)
        out = torch.bmm(basis, torch.bmm(basis.transpose(1, 2), flat.unsqueeze(2))).squeeze(2)
    else:
        raise ValueError(f"basis must be (n, k) or ({len(v)}, n, k), got {tuple(basis.shape)}")
    return out.reshape(v.shape)


def complement(v: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """The part of each ``v[i]`` orthogonal to its basis (off-manifold part): ``v - P v``."""
    return v - project(v, basis)


def projector(basis: torch.Tensor, part: str = "on") -> Callable[[torch.Tensor], torch.Tensor]:
    """A closure ``v -> P v`` (``part="on"``) or ``v -> v - P v`` (``"off"``) for ``attacks.pgd(project=)``.

    With per-sample bases ``(N, n, k)`` the closure only accepts batches of those N samples.
    """
    if part not in PARTS:
        raise ParameterError(f"parameter 'part' is {part!r}; allowed values: 'on', 'off'")
    return (lambda v: project(v, basis)) if part == "on" else (lambda v: complement(v, basis))


def on_fraction(v: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """``||P v|| / ||v||`` per sample: the share of each vector's norm inside its subspace."""
    flat = v.flatten(1)
    return project(flat, basis).norm(dim=1) / flat.norm(dim=1).clamp_min(1e-30)


def rms(values: torch.Tensor) -> float:
    """Root mean square, the statistic whose random-direction value is exactly ``sqrt(k/n)``."""
    return values.pow(2).mean().sqrt().item()


def random_baseline(n: int, k: int) -> float:
    """RMS share of a random direction's norm in a fixed k-dim subspace of R^n: ``sqrt(k/n)``."""
    return math.sqrt(k / n)


def random_bases(
    count: int,
    n: int,
    k: int,
    *,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """``count`` independent uniformly random k-dim subspaces of R^n as bases ``(count, n, k)``."""
    if not 1 <= k <= n:
        raise ParameterError(f"parameters must satisfy 1 <= k <= n, got k={k}, n={n}")
    g = torch.randn(count, n, k, generator=generator, dtype=torch.float64)
    q, r = torch.linalg.qr(g)
    q = q * torch.sign(torch.diagonal(r, dim1=-2, dim2=-1)).unsqueeze(1)  # Haar, not QR-sign biased
    return q.to(device=device, dtype=dtype)


# ---------------------------------------------------------------- boundary geometry


def margin(logits: torch.Tensor) -> torch.Tensor:
    """Logit of the top class minus the runner-up's: zero on the decision boundary."""
    top2 = logits.topk(2, dim=1).values
    return top2[:, 0] - top2[:, 1]


def boundary_normal(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Input gradient of :func:`margin` per sample: the normal of the margin's level set through x.

    The margin does not saturate like the cross-entropy does, so its gradient keeps a
    usable direction at confidently classified points.
    """
    with attacks.eval_mode(model):
        xg = x.detach().requires_grad_(True)
        (g,) = torch.autograd.grad(margin(model(xg)).sum(), xg)
    return g


def margin_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Summed ``max_{j != y} logit_j - logit_y``: a PGD loss that, unlike cross-entropy, never saturates."""
    other = logits.scatter(1, y.view(-1, 1), float("-inf")).amax(dim=1)
    return (other - logits.gather(1, y.view(-1, 1)).squeeze(1)).sum()


# ---------------------------------------------------------------- manifolds given by a map


class AutoEncoder(nn.Module):
    """MLP autoencoder ``in_dim -> widths -> latent_dim -> reversed(widths) -> in_dim``.

    A smooth activation (GELU by default) gives the decoder a Jacobian that varies
    smoothly along the learned manifold.
    """

    def __init__(self, in_dim: int, latent_dim: int, widths: Sequence[int] = (128,), activation: str = "gelu"):
        super().__init__()
        _check_activation(activation)
        if not 1 <= latent_dim < in_dim:
            raise ParameterError(f"parameter 'latent_dim' must be in [1, {in_dim - 1}], got {latent_dim}")
        widths = check_widths(widths, "ae_widths")
        self.latent_dim = latent_dim
        self.encoder = self._stack([in_dim, *widths, latent_dim], activation)
        self.decoder = self._stack([latent_dim, *reversed(widths), in_dim], activation)

    @staticmethod
    def _stack(dims: list[int], activation: str) -> nn.Sequential:
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
            layers.append(nn.Linear(a, b))
            if i < len(dims) - 2:
                layers.append(ACTIVATIONS[activation]())
        return nn.Sequential(*layers)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x.flatten(1))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))


def _check_activation(activation: str) -> None:
    if activation not in ACTIVATIONS:
        raise ParameterError(
            f"parameter 'activation' is {activation!r}; allowed values: " + ", ".join(map(repr, ACTIVATIONS))
        )


class ConvAutoEncoder(nn.Module):
    """Convolutional autoencoder for ``(H, W)`` images given as flat rows (H, W divisible by 4).

    Encoder: two stride-2 3x3 convolutions (``channels``) and a linear map to the
    ``latent_dim`` code; decoder: a linear map back to the ``(H/4, W/4)`` feature map and
    two stride-2 4x4 transposed convolutions, with a linear output layer. Smooth (GELU)
    activations, so that the decoder's Jacobian, whose columns span the tangent space,
    varies smoothly along the manifold. ``encode``/``decode`` take and give flat rows, as
    :class:`AutoEncoder`'s do, so :func:`tangent_basis` treats both alike.
    """

    def __init__(
        self,
        image_shape: tuple[int, int],
        latent_dim: int,
        channels: Sequence[int] = (32, 64),
        activation: str = "gelu",
    ):
        super().__init__()
        _check_activation(activation)
        h, w = (int(v) for v in image_shape)
        if h < 4 or w < 4 or h % 4 or w % 4:
            raise ParameterError(f"image_shape must have sides divisible by 4 (two stride-2 stages), got {image_shape}")
        channels = check_widths(channels, "ae_channels")
        if len(channels) != 2:
            raise ParameterError(f"parameter 'ae_channels' needs exactly two entries, got {channels}")
        if not 1 <= latent_dim < h * w:
            raise ParameterError(f"parameter 'latent_dim' must be in [1, {h * w - 1}], got {latent_dim}")
        c1, c2 = channels
        act = ACTIVATIONS[activation]
        self.image_shape, self.latent_dim = (h, w), latent_dim
        self._grid = (c2, h // 4, w // 4)
        flat = c2 * (h // 4) * (w // 4)
        self.encoder = nn.Sequential(
            nn.Conv2d(1, c1, 3, stride=2, padding=1),
            act(),
            nn.Conv2d(c1, c2, 3, stride=2, padding=1),
            act(),
            nn.Flatten(),
            nn.Linear(flat, latent_dim),
        )
        self.decoder = nn.Sequential(
            nn.Linear(latent_dim, flat),
            act(),
            nn.Unflatten(1, self._grid),
            nn.ConvTranspose2d(c2, c1, 4, stride=2, padding=1),
            act(),
            nn.ConvTranspose2d(c1, 1, 4, stride=2, padding=1),
            nn.Flatten(),
        )

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x.reshape(-1, 1, *self.image_shape))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x)).reshape(x.shape)


AE_KINDS = ("conv", "mlp")


def make_autoencoder(
    kind: str,
    image_shape: tuple[int, int],
    latent_dim: int,
    *,
    widths: Sequence[int] = (128,),
    channels: Sequence[int] = (32, 64),
    activation: str = "gelu",
) -> nn.Module:
    """An autoencoder of ``kind`` (``"conv"``: :class:`ConvAutoEncoder`, ``"mlp"``: :class:`AutoEncoder`)."""
    if kind not in AE_KINDS:
        raise ParameterError(f"parameter 'ae_kind' is {kind!r}; allowed values: " + ", ".join(map(repr, AE_KINDS)))
    if kind == "conv":
        return ConvAutoEncoder(image_shape, latent_dim, channels, activation)
    return AutoEncoder(math.prod(image_shape), latent_dim, widths, activation)


def pixel_variance(x: torch.Tensor) -> float:
    """Mean over pixels of each pixel's variance over the rows of ``x`` (the MSE of the mean image)."""
    return x.flatten(1).var(dim=0, unbiased=False).mean().item()


def explained_variance(x: torch.Tensor, recon: torch.Tensor) -> float:
    """``1 - MSE / pixel variance``: the share of the data's variance a reconstruction explains.

    A reconstruction by the mean image scores 0 and a perfect one 1.
    """
    return 1.0 - (recon.flatten(1) - x.flatten(1)).pow(2).mean().item() / pixel_variance(x)


def pca_basis(x: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean ``(n,)`` and the top-``k`` principal directions ``(n, k)`` of the rows of ``x``: the best linear k-dim manifold."""
    flat = x.flatten(1)
    if not 1 <= k <= min(flat.shape):
        raise ParameterError(f"parameter 'k' must be in [1, {min(flat.shape)}], got {k}")
    mean, directions, _ = subspace.pca(flat)
    return mean, directions[:, :k].contiguous()


def fit_autoencoder(
    ae: nn.Module,
    x: torch.Tensor,
    *,
    epochs: int,
    batch_size: int = 64,
    lr: float = 1e-3,
    generator: torch.Generator | None = None,
    x_val: torch.Tensor | None = None,
    progress: bool = True,
    callback: Callable[[int, nn.Module], None] | None = None,
) -> pd.DataFrame:
    """Train ``ae`` in place on mean squared reconstruction error (Adam, seeded mini-batches).

    One row per epoch: ``train_mse`` (the epoch's mean mini-batch loss, weighted by batch
    size: the usual running training loss; a second pass over the training set to evaluate
    it cost about 40% of training) and, with ``x_val``, ``val_mse`` and ``val_explained``
    (:func:`explained_variance` on ``x_val``, after the epoch). ``callback(epoch, ae)`` runs after every
    epoch with ``ae`` in eval mode (epoch 0: before training), e.g. to measure snapshots.
    """
    if epochs < 1:
        raise ParameterError(f"parameter 'ae_epochs' must be >= 1, got {epochs}")
    opt = make_optimizer(ae.parameters(), "adam", lr)
    generator = generator if generator is not None else torch.Generator().manual_seed(0)
    rows = []
    if callback is not None:
        with attacks.eval_mode(ae):
            callback(0, ae)
    for epoch in tqdm(range(1, epochs + 1), desc="autoencoder", disable=not progress, leave=False):
        ae.train()
        order = torch.randperm(len(x), generator=generator).to(x.device)
        total = torch.zeros((), dtype=torch.float64, device=x.device)
        for i in range(0, len(x), batch_size):
            xb = x[order[i : i + batch_size]]
            loss = (ae(xb) - xb).pow(2).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.detach() * len(xb)
        ae.eval()
        with torch.no_grad():
            row = {"epoch": epoch, "train_mse": float(total) / len(x)}
            if x_val is not None:
                row["val_mse"] = _mse(ae, x_val)
                row["val_explained"] = 1.0 - row["val_mse"] / pixel_variance(x_val)
        rows.append(row)
        if callback is not None:
            callback(epoch, ae)
    ae.eval()
    return pd.DataFrame(rows)


def _mse(ae: nn.Module, x: torch.Tensor, batch_size: int = 4096) -> float:
    """Mean squared reconstruction error of ``ae`` on ``x``, in batches."""
    total = sum(
        (ae(x[i : i + batch_size]) - x[i : i + batch_size]).pow(2).sum().item() for i in range(0, len(x), batch_size)
    )
    return total / x.numel()


def autoencoder_bases(ae: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Tangent bases ``(N, n, k)`` of the autoencoder's manifold at the encodings of ``x``."""
    with attacks.eval_mode(ae), torch.no_grad():
        z = ae.encode(x)
    return tangent_basis(ae.decode, z)


class SineManifold(nn.Module):
    """A k-dim manifold in R^n: ``phi(c) = U [c, a sin(W c + b)]`` for codes c in ``[-1, 1]^k``.

    ``U`` (n, k+m) has orthonormal columns (a random rotation, or the first axes when
    ``axis_aligned``), ``m = min(k, n - k)`` curved coordinates with random frequencies
    ``W`` (rows of norm ``frequency``) and phases ``b``. ``amplitude = 0`` gives a flat
    k-dim subspace.
    """

    def __init__(
        self,
        n: int,
        k: int,
        amplitude: float = 0.0,
        frequency: float = math.pi,
        *,
        axis_aligned: bool = False,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        if not 1 <= k < n:
            raise ParameterError(f"manifold dimension must satisfy 1 <= k < n, got k={k}, n={n}")
        if amplitude < 0:
            raise ParameterError(f"parameter 'amplitude' must be >= 0, got {amplitude}")
        m = min(k, n - k)
        if axis_aligned:
            u = torch.eye(n, k + m, dtype=torch.float64)
        else:
            u, r = torch.linalg.qr(torch.randn(n, k + m, generator=generator, dtype=torch.float64))
            u = u * torch.sign(torch.diagonal(r))
        w = torch.randn(m, k, generator=generator, dtype=torch.float64)
        w = frequency * w / w.norm(dim=1, keepdim=True)
        b = torch.rand(m, generator=generator, dtype=torch.float64) * 2 * math.pi
        self.n, self.k, self.amplitude = n, k, float(amplitude)
        self.register_buffer("u", u.float())
        self.register_buffer("w", w.float())
        self.register_buffer("b", b.float())

    def forward(self, c: torch.Tensor) -> torch.Tensor:
        h = torch.cat([c, self.amplitude * torch.sin(c @ self.w.T + self.b)], dim=1)
        return h @ self.u.T


def checkerboard(c: torch.Tensor, cells: int) -> torch.Tensor:
    """Labels 0/1 of a checkerboard with ``cells`` cells per axis on ``[-1, 1]^k``."""
    idx = ((c + 1) / 2 * cells).floor().clamp(0, cells - 1).long()
    return idx.sum(dim=1) % 2


def manifold_points(
    phi: SineManifold, count: int, *, cells: int = 2, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``count`` points ``phi(c)`` with c uniform in ``[-1, 1]^k``, checkerboard labels, and the codes c."""
    c = torch.rand(count, phi.k, generator=generator) * 2 - 1
    c = c.to(phi.u.device)
    with torch.no_grad():
        x = phi(c)
    return x, checkerboard(c, cells), c


# ---------------------------------------------------------------- the learned manifold's parameters
# Chapter 2's manifold of natural images, and chapter 5's lens 2 (the same manifold, the same parameters).
LEARNED_PARAMS: dict[str, Param] = {
    "latent_dim": Param(
        int,
        0,
        0,
        check="nonnegative",
        help="autoencoder latent (manifold) dimension k; 0 = 8 for 8x8 images, 16 for 28x28",
    ),
    "ae_kind": Param(str, "conv", "conv", choices=AE_KINDS, help="autoencoder: convolutional or MLP"),
    "ae_channels": Param(
        (list, int), [16, 32], [32, 64], check="positive", max=MAX_WIDTH, help="conv autoencoder channels (two stages)"
    ),
    "ae_widths": Param(
        (list, int), [128], [512, 256], check="positive", max=MAX_WIDTH, help="MLP autoencoder hidden widths"
    ),
    "ae_epochs": Param(int, 30, 40, check="positive", help="autoencoder training epochs"),
    "ae_lr": Param(float, 3e-3, 1e-3, check="positive", help="Adam learning rate of the autoencoder"),
}
DEFAULT_LATENT = {64: 8, 784: 16}  # the book's k for 8x8 images; k = 16 as the reproductions used for 28x28


def check_learned(cfg) -> None:
    """Checks of the learned manifold's parameters against the image size; fills ``latent_dim`` 0 by it."""
    n_pixels = math.prod(IMAGE_SHAPES[cfg.dataset])
    if cfg.latent_dim == 0:
        cfg.latent_dim = DEFAULT_LATENT[n_pixels]
    if cfg.latent_dim >= n_pixels:
        raise ParameterError(
            f"parameter 'latent_dim' must be < {n_pixels} (pixels of {cfg.dataset}), got {cfg.latent_dim}"
        )
    if len(cfg.ae_channels) != 2:
        raise ParameterError(f"parameter 'ae_channels' needs exactly two entries, got {cfg.ae_channels}")


def autoencoder_for(cfg, image_shape: tuple[int, int]) -> nn.Module:
    """The untrained autoencoder of ``cfg``'s learned-manifold parameters for images of ``image_shape``, on ``cfg.device``."""
    return make_autoencoder(
        cfg.ae_kind, image_shape, cfg.latent_dim, widths=cfg.ae_widths, channels=cfg.ae_channels
    ).to(cfg.device)
