"""Discrete Transformers built from the same fields and noise models as the continuous views."""

from tokenswarm.nets.random_init import HybridTransformer, RandomMLPTransformer, ValueNoiseTransformer

__all__ = ["ValueNoiseTransformer", "HybridTransformer", "RandomMLPTransformer"]
