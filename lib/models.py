"""Models used across the book: an MLP exposing its hidden layers, a small conv net,
and the two-layer ReLU network of chapter 4."""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from .config import ParameterError

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU}


def check_widths(widths: Sequence[int], name: str = "widths") -> list[int]:
    widths = list(widths)
    if not widths or any(int(w) != w or w < 1 for w in widths):
        raise ParameterError(f"parameter {name!r} must be a non-empty list of positive integers, got {widths}")
    return [int(w) for w in widths]


class MLP(nn.Module):
    """Fully connected classifier ``in_dim -> widths... -> n_classes``.

    ``forward(x, return_hidden=True)`` also returns the list of post-activation hidden
    representations, one tensor per hidden layer (what the spectra and SOMs look at).
    """

    def __init__(self, in_dim: int, widths: Sequence[int], n_classes: int, activation: str = "relu"):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ParameterError(
                f"parameter 'activation' is {activation!r}; allowed values: " + ", ".join(map(repr, ACTIVATIONS))
            )
        widths = check_widths(widths)
        dims = [in_dim, *widths]
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.act = ACTIVATIONS[activation]()
        self.head = nn.Linear(dims[-1], n_classes)
        self.widths = widths

    def forward(self, x: torch.Tensor, return_hidden: bool = False):
        x = x.flatten(1)
        hs = []
        for layer in self.hidden:
            x = self.act(layer(x))
            hs.append(x)
        out = self.head(x)
        return (out, hs) if return_hidden else out


class SmallConvNet(nn.Module):
    """Two conv blocks (conv-ReLU-maxpool) and a linear head; takes flat or image input.

    Hidden representations (with ``return_hidden``) are the two pooled feature maps,
    flattened, and the penultimate dense layer.
    """

    def __init__(
        self, image_shape: tuple[int, int], n_classes: int, channels: Sequence[int] = (16, 32), hidden: int = 64
    ):
        super().__init__()
        channels = check_widths(channels, "channels")
        if len(channels) != 2:
            raise ParameterError(f"parameter 'channels' needs exactly two entries, got {channels}")
        c1, c2 = channels
        self.image_shape = tuple(image_shape)
        self.conv1 = nn.Conv2d(1, c1, 3, padding=1)
        self.conv2 = nn.Conv2d(c1, c2, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        h, w = self.image_shape
        flat = c2 * (h // 4) * (w // 4)
        if flat == 0:
            raise ParameterError(f"image_shape {image_shape} is too small for two 2x2 poolings")
        self.fc = nn.Linear(flat, hidden)
        self.head = nn.Linear(hidden, n_classes)

    def forward(self, x: torch.Tensor, return_hidden: bool = False):
        x = x.reshape(-1, 1, *self.image_shape)
        h1 = self.pool(torch.relu(self.conv1(x)))
        h2 = self.pool(torch.relu(self.conv2(h1)))
        h3 = torch.relu(self.fc(h2.flatten(1)))
        out = self.head(h3)
        return (out, [h1.flatten(1), h2.flatten(1), h3]) if return_hidden else out


class TwoLayerReLU(nn.Module):
    """``f(x) = sum_j v_j relu(w_j . x + b_j)`` with a scalar output (chapter 4).

    First-layer weights are drawn N(0, init_scale^2 / d) and output weights
    N(0, init_scale^2 / width) (PyTorch-style fan-in scaling times ``init_scale``).
    ``train_output=False`` freezes ``v`` at its initial value.
    """

    def __init__(
        self,
        d: int,
        width: int,
        init_scale: float = 1.0,
        bias: bool = True,
        train_output: bool = True,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        if d < 1 or width < 1:
            raise ParameterError(f"d and width must be positive, got d={d}, width={width}")
        if not init_scale > 0:
            raise ParameterError(f"parameter 'init_scale' must be > 0, got {init_scale}")
        self.w = nn.Parameter(torch.randn(width, d, generator=generator) * (init_scale / math.sqrt(d)))
        self.b = nn.Parameter(torch.zeros(width)) if bias else None
        v = torch.randn(width, generator=generator) * (init_scale / math.sqrt(width))
        self.v = nn.Parameter(v, requires_grad=train_output)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = x @ self.w.T
        if self.b is not None:
            pre = pre + self.b
        return torch.relu(pre) @ self.v


def n_params(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
