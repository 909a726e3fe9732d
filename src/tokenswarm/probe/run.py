"""Run texts through a model and record hidden states, attention maps and per-layer metrics.

Each text is tokenised and run on its own (batch of one, so no padding enters any token's
attention), with all special tokens the tokenizer adds. Hugging Face's
``output_hidden_states`` gives ``layers + 1`` states: the embedding output (the input of the
first layer, "state 0") and the output of every layer; ``output_attentions`` gives the
attention probabilities of every layer, ``(heads, n, n)``, rows summing to one.

Metrics (definitions in docs/probe.md):

* ``mean_cosine[l]``: for hidden state ``l`` of one text, the mean over token pairs ``i < j``
  of ``cos(h_i, h_j)``; the list reported is the mean of the per-text values (every text
  weighs the same), the per-text lists are ``mean_cosine_per_text``.
* ``attention_row_sum_error``: ``max |Σ_j A_ij − 1|`` over texts, layers, heads and rows.

Metrics are computed in float64 whatever the model's precision.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import pathlib
from collections.abc import Sequence
from typing import Any

import torch

from tokenswarm.probe.loading import ProbeError, load_model

__all__ = [
    "ProbeResult",
    "run_probe",
    "probe_metrics",
    "mean_pair_cosine",
    "save_probe",
    "load_saved_probe",
    "TENSORS_FILE",
    "SUMMARY_FILE",
]

TENSORS_FILE = "probe.safetensors"
SUMMARY_FILE = "probe.json"
FORMAT = "tokenswarm-probe/1"


@dataclasses.dataclass
class ProbeResult:
    """What :func:`run_probe` recorded.

    Attributes:
        texts: the input texts.
        tokens: per text, the token strings (special tokens included).
        hidden_states: per text, a tensor ``(layers + 1, n_tokens, d)`` on the CPU: state 0
            is the embedding output, state ``l`` the output of layer ``l``.
        attentions: per text, a tensor ``(layers, heads, n_tokens, n_tokens)`` on the CPU;
            ``attentions[t][l - 1, h, i, j]`` is the weight of token ``j`` in token ``i``'s
            update by head ``h`` of layer ``l``.
        metrics: see :func:`probe_metrics`.
        model: the model directory (or a description of the loaded model object).
        model_type: ``config.model_type`` (e.g. ``"bert"``).
    """

    texts: list[str]
    tokens: list[list[str]]
    hidden_states: list[torch.Tensor]
    attentions: list[torch.Tensor]
    metrics: dict[str, Any]
    model: str = ""
    model_type: str = ""

    def to_json_dict(self, outputs: Sequence[str] = ()) -> dict[str, Any]:
        """The JSON summary printed by ``tokenswarm probe --json`` (tensors excluded)."""
        return {
            "model": self.model,
            "model_type": self.model_type,
            "texts": list(self.texts),
            "tokens": [list(tokens) for tokens in self.tokens],
            "metrics": _jsonable(self.metrics),
            "outputs": [str(output) for output in outputs],
        }


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def mean_pair_cosine(states: torch.Tensor) -> torch.Tensor:
    """Mean over token pairs ``i < j`` of ``cos(h_i, h_j)``, in float64.

    Args:
        states: ``(*batch, n, d)`` with ``n >= 2``.

    Returns:
        ``(*batch,)`` float64.
    """
    n = states.shape[-2]
    if n < 2:
        raise ProbeError(f"mean cosine needs at least 2 tokens, got {n}")
    x = states.to(torch.float64)
    x = x / x.norm(dim=-1, keepdim=True)
    # Sum of all entries of the Gram matrix = n (diagonal) + 2 * sum over pairs i < j.
    total = (x.sum(-2) ** 2).sum(-1)
    return (total - n) / (n * (n - 1))


def probe_metrics(hidden_states: Sequence[torch.Tensor], attentions: Sequence[torch.Tensor]) -> dict[str, Any]:
    """Per-layer metrics of several texts' hidden states and attention maps.

    Args:
        hidden_states: per text ``(layers + 1, n, d)``.
        attentions: per text ``(layers, heads, n, n)``.

    Returns:
        ``layers``, ``heads``, ``hidden_size``, ``texts``, ``n_tokens`` (per text),
        ``mean_cosine`` (per state, mean over texts), ``mean_cosine_per_text``,
        ``mean_norm`` (per state: mean token norm, averaged over texts),
        ``attention_row_sum_error`` (max over everything), ``attention_row_sum_error_per_layer``,
        ``attention_entropy`` (per layer: mean row entropy ``−Σ_j A_ij log A_ij`` in nats over
        texts, heads and rows; ``log n`` for uniform rows, 0 for one-hot rows).
    """
    if not hidden_states:
        raise ProbeError("no texts to compute metrics on")
    states = [h.detach().to(torch.float64) for h in hidden_states]
    maps = [a.detach().to(torch.float64) for a in attentions]
    per_text = [mean_pair_cosine(h).tolist() for h in states]
    norms = [h.norm(dim=-1).mean(-1).tolist() for h in states]
    layers = states[0].shape[0] - 1
    row_error = [(a.sum(-1) - 1.0).abs().amax(dim=(-2, -1)) for a in maps]  # per text (layers,)
    entropy = [-torch.special.xlogy(a, a).sum(-1).mean(dim=(-2, -1)) for a in maps]
    per_layer_error = torch.stack(row_error).amax(0).tolist() if layers else []
    return {
        "layers": layers,
        "heads": int(maps[0].shape[1]) if maps and maps[0].ndim == 4 else 0,
        "hidden_size": int(states[0].shape[-1]),
        "texts": len(states),
        "n_tokens": [int(h.shape[-2]) for h in states],
        "mean_cosine": torch.tensor(per_text, dtype=torch.float64).mean(0).tolist(),
        "mean_cosine_per_text": per_text,
        "mean_norm": torch.tensor(norms, dtype=torch.float64).mean(0).tolist(),
        "attention_row_sum_error": max(per_layer_error) if per_layer_error else 0.0,
        "attention_row_sum_error_per_layer": per_layer_error,
        "attention_entropy": torch.stack(entropy).mean(0).tolist() if layers else [],
    }


def _max_tokens(model, tokenizer) -> int | None:
    limits = []
    tokenizer_limit = getattr(tokenizer, "model_max_length", None)
    if isinstance(tokenizer_limit, int) and 0 < tokenizer_limit < 1_000_000:
        limits.append(tokenizer_limit)
    config = getattr(model, "config", None)
    for name in ("max_position_embeddings", "n_positions"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            limits.append(value)
    return min(limits) if limits else None


def run_probe(
    path_or_loaded: str | os.PathLike[str] | tuple[Any, Any],
    texts: Sequence[str],
    *,
    allow_pickle: bool = False,
    device: str = "cpu",
) -> ProbeResult:
    """Run ``texts`` through a model and record states, attention maps and metrics.

    Args:
        path_or_loaded: a model directory (loaded with :func:`load_model`) or an already
            loaded ``(model, tokenizer)`` pair (then ``allow_pickle`` and ``device`` are
            ignored; the model's own device is used).
        texts: one or more non-empty strings. Texts longer than the model's context are
            truncated; their indices are listed in ``metrics["truncated"]``.
        allow_pickle: permit pickle checkpoints (see :func:`load_model`).
        device: where to load the model when a path is given.

    Returns:
        :class:`ProbeResult` with CPU tensors in the model's precision.

    Raises:
        ProbeError: unusable directory, no texts, an empty text, a text with fewer than two
            tokens, or a model whose forward pass fails or returns no attention maps.
    """
    if isinstance(texts, str):
        texts = [texts]
    texts = list(texts)
    if not texts:
        raise ProbeError("no texts given")
    for index, text in enumerate(texts):
        if not isinstance(text, str) or not text.strip():
            raise ProbeError(f"text {index} is empty; every text must contain something to tokenise")
    if isinstance(path_or_loaded, tuple):
        model, tokenizer = path_or_loaded
        source = str(getattr(getattr(model, "config", None), "_name_or_path", "") or type(model).__name__)
    else:
        model, tokenizer = load_model(path_or_loaded, allow_pickle=allow_pickle, device=device)
        source = str(pathlib.Path(path_or_loaded).expanduser().resolve())
    model_device = next(iter(model.parameters())).device
    max_tokens = _max_tokens(model, tokenizer)
    tokens, hidden, attention, truncated = [], [], [], []
    for index, text in enumerate(texts):
        full = tokenizer(text)["input_ids"]
        encoded = tokenizer(
            text, return_tensors="pt", truncation=max_tokens is not None, max_length=max_tokens
        )
        if max_tokens is not None and len(full) > max_tokens:
            truncated.append(index)
        ids = encoded["input_ids"]
        if ids.shape[-1] < 2:
            raise ProbeError(f"text {index} gives {ids.shape[-1]} token(s); pair metrics need at least 2")
        inputs = {key: value.to(model_device) for key, value in encoded.items()}
        try:
            with torch.no_grad():
                output = model(**inputs, output_hidden_states=True, output_attentions=True, return_dict=True)
        except Exception as error:  # noqa: BLE001 - e.g. encoder-decoder models need decoder inputs
            first = (str(error).strip().splitlines() or [""])[0]
            raise ProbeError(
                f"the forward pass of {source} failed on text {index}: {type(error).__name__}: {first} "
                "(the probe runs encoder-only and decoder-only base models)"
            ) from None
        states = getattr(output, "hidden_states", None)
        maps = getattr(output, "attentions", None)
        if states is None or maps is None or any(a is None for a in maps) or len(maps) != len(states) - 1:
            raise ProbeError(f"{source} does not return hidden states and attention probabilities for every layer")
        tokens.append(tokenizer.convert_ids_to_tokens(ids[0].tolist()))
        hidden.append(torch.stack([s[0] for s in states]).detach().cpu())
        attention.append(torch.stack([a[0] for a in maps]).detach().cpu())
    metrics = probe_metrics(hidden, attention)
    metrics["truncated"] = truncated
    config = getattr(model, "config", None)
    return ProbeResult(
        texts=texts,
        tokens=tokens,
        hidden_states=hidden,
        attentions=attention,
        metrics=metrics,
        model=source,
        model_type=str(getattr(config, "model_type", "") or ""),
    )


def save_probe(result: ProbeResult, out_dir: str | os.PathLike[str]) -> list[str]:
    """Write ``probe.safetensors`` (tensors) and ``probe.json`` (summary) into ``out_dir``.

    Tensor names: ``text{k}.hidden_states`` ``(layers + 1, n_k, d)`` and
    ``text{k}.attentions`` ``(layers, heads, n_k, n_k)`` for text ``k = 0, 1, ...``;
    ``probe.json`` is :meth:`ProbeResult.to_json_dict` plus ``"format"`` and ``"tensors"``.

    Returns:
        The absolute paths written, the JSON summary last.
    """
    from safetensors.torch import save_file

    from tokenswarm.io.results import atomic_write_text

    directory = pathlib.Path(out_dir).expanduser().resolve()
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {}
    for index, (states, maps) in enumerate(zip(result.hidden_states, result.attentions)):
        tensors[f"text{index}.hidden_states"] = states.contiguous()
        tensors[f"text{index}.attentions"] = maps.contiguous()
    tensors_path = directory / TENSORS_FILE
    temporary = directory / f".{TENSORS_FILE}.tmp"
    save_file(tensors, str(temporary), metadata={"format": FORMAT})
    os.replace(temporary, tensors_path)
    summary_path = directory / SUMMARY_FILE
    summary = result.to_json_dict([str(tensors_path), str(summary_path)])
    summary["format"] = FORMAT
    summary["tensors"] = sorted(tensors)
    atomic_write_text(summary_path, json.dumps(summary, ensure_ascii=False, allow_nan=False, indent=1) + "\n")
    return [str(tensors_path), str(summary_path)]


def load_saved_probe(out_dir: str | os.PathLike[str]) -> ProbeResult:
    """Read back what :func:`save_probe` wrote."""
    from safetensors.torch import load_file

    directory = pathlib.Path(out_dir)
    summary = json.loads((directory / SUMMARY_FILE).read_text(encoding="utf-8"))
    tensors = load_file(str(directory / TENSORS_FILE))
    count = len(summary["texts"])
    return ProbeResult(
        texts=summary["texts"],
        tokens=summary["tokens"],
        hidden_states=[tensors[f"text{k}.hidden_states"] for k in range(count)],
        attentions=[tensors[f"text{k}.attentions"] for k in range(count)],
        metrics=summary["metrics"],
        model=summary.get("model", ""),
        model_type=summary.get("model_type", ""),
    )
