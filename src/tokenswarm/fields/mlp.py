"""Token-wise MLP term ``w σ(a x + b)`` of eq. (2.8) (docs/theory/attention_ode.md §2.1)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Union

import torch
import torch.nn.functional as F

from tokenswarm import checks
from tokenswarm.fields.base import Field

__all__ = ["MLP", "ACTIVATIONS"]

ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "relu": torch.relu,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "silu": F.silu,
    "gelu": F.gelu,
    "identity": lambda z: z,
}

Weight = Union[torch.Tensor, Callable[[float], torch.Tensor]]


class MLP(Field):
    """``y_i = W σ(A x_i + b)`` with ``A: (*batch, m, d)``, ``b: (*batch, m)``, ``W: (*batch, d, m)``.

    Any weight may be a function of ``t`` (one layer per time). Leading batch axes of the
    weights broadcast against the state's batch: one draw per system.
    """

    def __init__(self, W: Weight, A: Weight, b: Weight | None = None, *, activation: str = "relu"):
        checks.choice("activation", activation, sorted(ACTIVATIONS))
        self.W, self.A, self.b = W, A, b
        self.activation = activation

    def output(self, t, x):
        W, A, b = ((m(t) if callable(m) else m) for m in (self.W, self.A, self.b))
        pre = x @ A.mT
        if b is not None:
            pre = pre + b.unsqueeze(-2)
        return ACTIVATIONS[self.activation](pre) @ W.mT

    def __repr__(self) -> str:
        return f"MLP({self.activation})"
