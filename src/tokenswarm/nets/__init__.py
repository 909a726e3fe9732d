"""Discrete Transformers built from the same fields as the continuous models.

* random-init networks of the stochastic papers (value noise, hybrid, random MLP);
* the trainable family (:mod:`tokenswarm.nets.transformer`: norm type/placement, residual
  switches) and small trained models (:mod:`tokenswarm.nets.tasks`: digits ViT, text task).
"""

from tokenswarm.nets.random_init import (
    HybridTransformer,
    RandomMLPTransformer,
    ValueNoiseTransformer,
)
from tokenswarm.nets.tasks import (
    TrainedModel,
    TransformerClassifier,
    digits_dataset,
    sequence_task,
    train_digits_vit,
    train_text_model,
)
from tokenswarm.nets.transformer import (
    Transformer,
    TransformerConfig,
    TransformerOutput,
    block_fields,
    lie_trotter_euler_step,
)

__all__ = [
    "ValueNoiseTransformer", "HybridTransformer", "RandomMLPTransformer",
    "Transformer", "TransformerConfig", "TransformerOutput", "block_fields", "lie_trotter_euler_step",
    "TrainedModel", "TransformerClassifier", "digits_dataset", "sequence_task", "train_digits_vit", "train_text_model",
]
