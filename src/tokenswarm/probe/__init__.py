"""Probe real Transformers: hidden states, attention maps and per-layer metrics.

``tokenswarm probe PATH`` and this API load any local Hugging Face model directory
(``config.json`` + safetensors weights + tokenizer files), offline, with
``trust_remote_code`` off and pickle checkpoints refused unless explicitly allowed.

Example::

    from tokenswarm.probe import minilm_path, load_corpus, run_probe

    result = run_probe(minilm_path(), load_corpus()[:4])
    result.hidden_states[0].shape   # (layers + 1, n_tokens, d) = (7, n, 384)
    result.metrics["mean_cosine"]   # one value per hidden state

Transformers and safetensors are imported only when a model is loaded (the ``probe``
extra: ``pip install 'tokenswarm[probe]'``); importing this package needs neither.
"""

from tokenswarm.data import load_corpus
from tokenswarm.probe.loading import (
    MINILM_ALIAS,
    ModelDirectory,
    ProbeError,
    check_model_directory,
    load_model,
    minilm_path,
    resolve_model_path,
)
from tokenswarm.probe.run import (
    SUMMARY_FILE,
    TENSORS_FILE,
    ProbeResult,
    load_saved_probe,
    mean_pair_cosine,
    probe_metrics,
    run_probe,
    save_probe,
)

__all__ = [
    "MINILM_ALIAS",
    "ModelDirectory",
    "ProbeError",
    "ProbeResult",
    "SUMMARY_FILE",
    "TENSORS_FILE",
    "check_model_directory",
    "load_corpus",
    "load_model",
    "load_saved_probe",
    "mean_pair_cosine",
    "minilm_path",
    "probe_metrics",
    "resolve_model_path",
    "run_probe",
    "save_probe",
]
