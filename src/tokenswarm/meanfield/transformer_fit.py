"""The master PDE fitted to a real Transformer: the data it is fitted to, and the fit.

:class:`ModalityData` holds a Transformer's hidden states and attention maps on fitting
and held-out inputs (and the maps of the same architecture at random initialisation, a
baseline); :func:`digits_vit_modality` extracts it from a trained digits ViT, and
:func:`fit_modality_pde` fits the token-axis PDE of :mod:`tokenswarm.meanfield.token_pde`
to the fitting states. The experiments ``pde-vs-transformer`` and ``information-flow``
both build on these.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch

from tokenswarm.meanfield.token_pde import (
    FitReport,
    TokenPDE,
    TokenPDEConfig,
    fit_token_pde,
)

__all__ = ["ModalityData", "Form", "digits_vit_modality", "modality_pde_config", "fit_modality_pde"]

#: Attention forms of the fitted PDE: learned query-key matrices, or the theory's identity kernel.
Form = Literal["learned", "identity"]


@dataclass
class ModalityData:
    """Hidden states and attention maps of a Transformer on fitting and held-out inputs.

    States are lists of ``layers + 1`` tensors ``(B, n, d)`` (input first), maps lists of
    ``layers`` tensors ``(B, H, n, n)``; masks ``(B, n)`` bool or ``None``.
    """

    name: str
    fit_states: list[torch.Tensor]
    fit_mask: torch.Tensor | None
    fit_attention: list[torch.Tensor]
    eval_states: list[torch.Tensor]
    eval_mask: torch.Tensor | None
    eval_attention: list[torch.Tensor]
    random_attention: list[torch.Tensor]
    heads: int
    head_dim: int
    placement: str
    hidden: int
    info: dict = field(default_factory=dict)

    @property
    def layers(self) -> int:
        return len(self.eval_attention)

    @property
    def dim(self) -> int:
        return self.eval_states[0].shape[-1]


def digits_vit_modality(
    trained, *, fit_count: int, eval_count: int, pick_seed: int, random_init_seed: int, device=None
) -> ModalityData:
    """States and maps of a trained digits ViT (``nets.tasks.train_digits_vit``'s result).

    ``fit_count`` training images drawn with ``pick_seed`` are the fitting set, the first
    ``eval_count`` test images the held-out set; ``random_init_seed`` builds the untrained
    model of the same configuration for the random-init baseline.
    """
    from tokenswarm.nets.tasks import digits_dataset, digits_vit

    model = trained.model.eval()
    config = model.config
    train_images, _ = digits_dataset("train")
    pick = torch.randperm(len(train_images), generator=torch.Generator().manual_seed(pick_seed))
    fit_images = train_images[pick[:fit_count]].to(device)
    eval_images = trained.test_inputs[:eval_count]
    with torch.no_grad():
        fit = model.forward_tokens(fit_images)
        held = model.forward_tokens(eval_images)
        random_model = digits_vit(config, seed=random_init_seed).to(device).eval()
        random_out = random_model.forward_tokens(eval_images)
    return ModalityData(
        name="image",
        fit_states=[h.detach() for h in fit.hidden], fit_mask=None, fit_attention=[a.detach() for a in fit.attention],
        eval_states=[h.detach() for h in held.hidden], eval_mask=None, eval_attention=[a.detach() for a in held.attention],
        random_attention=[a.detach() for a in random_out.attention],
        heads=config.heads, head_dim=config.head_dim, placement=config.placement, hidden=config.mlp_width,
        info={"model": "digits ViT", "test_accuracy": trained.test_accuracy, "train_seconds": trained.seconds,
              "tokens": int(fit.hidden[0].shape[1]), "dim": config.dim, "depth": config.depth,
              "fit_examples": int(fit_images.shape[0]), "eval_examples": int(eval_images.shape[0])},
    )


def modality_pde_config(data: ModalityData, form: Form, *, diffusion: bool) -> TokenPDEConfig:
    """The PDE structure fitted to ``data``: the Transformer's heads, widths and norm placement."""
    return TokenPDEConfig(
        dim=data.dim, layers=data.layers, heads=data.heads if form == "learned" else 1, head_dim=data.head_dim,
        qk=form, value="learned", reaction="mlp", hidden=data.hidden, diffusion=diffusion, norm="affine",
        placement=data.placement, depth_dependent=True, stability="substep",
    )


def fit_modality_pde(
    data: ModalityData, form: Form, *, diffusion: bool, steps: int, lr: float, weight_decay: float,
    batch_size: int, seed: int,
) -> tuple[TokenPDE, FitReport]:
    """Fit one PDE form to ``data``'s fitting states (AdamW, ``seed`` for initialisation and batches)."""
    generator = torch.Generator().manual_seed(seed)
    states = data.fit_states
    pde = TokenPDE(modality_pde_config(data, form, diffusion=diffusion), generator=generator,
                   dtype=states[0].dtype, device=states[0].device)
    report = fit_token_pde(pde, states, data.fit_mask, steps=steps, lr=lr, weight_decay=weight_decay,
                           batch_size=batch_size, generator=generator)
    return pde, report
