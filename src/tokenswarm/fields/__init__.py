"""Right-hand sides: attention (SA/USA, Q, K, V, heads, mask, backends) and the MLP term."""

from tokenswarm.fields.attention import Attention, attention_output, attention_weights
from tokenswarm.fields.base import Field, LieTrotter, SumField
from tokenswarm.fields.mlp import ACTIVATIONS, MLP

__all__ = ["Attention", "attention_output", "attention_weights", "Field", "LieTrotter", "SumField", "MLP", "ACTIVATIONS"]
