"""tokenswarm: Transformers as interacting particle systems on the sphere."""

__version__ = "0.1.0"
