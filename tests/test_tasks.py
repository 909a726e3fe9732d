"""Data helpers and small trained Transformers (nets/tasks.py); tiny training runs only."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tokenswarm.nets.tasks import (
    TransformerClassifier,
    digits_dataset,
    digits_patches,
    digits_vit,
    fit,
    sequence_task,
    text_model,
    train_digits_vit,
    train_text_model,
)
from tokenswarm.nets.transformer import TransformerConfig, TransformerOutput
from tokenswarm.runtime.threads import torch_threads

TINY = TransformerConfig(dim=16, depth=1, heads=2, mlp_ratio=2.0)


def test_digits_dataset_split_and_values():
    train_images, train_labels = digits_dataset("train")
    test_images, test_labels = digits_dataset("test")
    assert train_images.shape == (1257, 8, 8) and test_images.shape == (540, 8, 8)
    assert train_images.dtype == torch.float32 and train_labels.dtype == torch.long
    assert 0 <= float(train_images.min()) and float(train_images.max()) == 1.0
    # stratified: every class holds 30% +- a few images out
    counts = np.bincount(test_labels.numpy(), minlength=10)
    assert counts.min() >= 50 and counts.max() <= 56
    # the split is fixed: same call, same images; train and test disjoint
    again, _ = digits_dataset("test")
    assert torch.equal(again, test_images)
    flat_train = {tuple(x) for x in train_images.flatten(1).numpy().round(4).tolist()}
    overlap = sum(tuple(x) in flat_train for x in test_images.flatten(1).numpy().round(4).tolist())
    assert overlap < 5  # (a handful of digit images occur twice in the data set itself)
    with pytest.raises(ValueError, match="split"):
        digits_dataset("validation")


def test_digits_patches_are_the_image_blocks():
    images = torch.arange(2 * 64, dtype=torch.float32).reshape(2, 8, 8)
    patches = digits_patches(images, 2)
    assert patches.shape == (2, 16, 4)
    # patch (row 1, column 2) = pixels rows 2-3, columns 4-5, row-major
    assert patches[1, 1 * 4 + 2].tolist() == images[1, 2:4, 4:6].flatten().tolist()
    big = digits_patches(images, 4)
    assert big.shape == (2, 4, 16) and big[0, 3].tolist() == images[0, 4:, 4:].flatten().tolist()
    with pytest.raises(ValueError):
        digits_patches(images, 3)


def test_sequence_task_labels_are_repeats():
    symbols, labels = sequence_task(2000, length=10, vocabulary=16, generator=torch.Generator().manual_seed(0))
    assert symbols.shape == (2000, 10) and labels.shape == (2000,)
    assert symbols.min() >= 0 and symbols.max() < 16
    distinct = torch.tensor([len(set(row)) for row in symbols.tolist()])
    assert torch.equal(labels, (distinct < 10).long())  # label 1 iff some symbol repeats
    assert set(distinct[labels == 1].tolist()) == {9}  # exactly one repeated pair
    assert abs(labels.float().mean().item() - 0.5) < 4 * 0.5 / np.sqrt(2000)
    again, _ = sequence_task(2000, length=10, vocabulary=16, generator=torch.Generator().manual_seed(0))
    assert torch.equal(again, symbols)
    with pytest.raises(ValueError, match="vocabulary"):
        sequence_task(5, length=10, vocabulary=8)


def test_model_api_embed_and_forward_tokens():
    model = digits_vit(TINY, seed=0, cls_token=True, pool="cls")
    images, _ = digits_dataset("test")
    tokens = model.embed(images[:5])
    assert tokens.shape == (5, 17, 16)  # CLS + 16 patches
    out = model.forward_tokens(images[:5])
    assert isinstance(out, TransformerOutput)
    assert len(out.hidden) == 2 and torch.equal(out.hidden[0], tokens)
    assert out.attention[0].shape == (5, 2, 17, 17)
    assert torch.allclose(model(images[:5]), model.classify(out.output))
    text = text_model(TINY, seed=0)
    symbols, _ = sequence_task(3)
    assert text.embed(symbols).shape == (3, 10, 16) and text(symbols).shape == (3, 2)
    assert isinstance(text, TransformerClassifier)


def test_fit_stops_at_the_first_nonfinite_step():
    model = digits_vit(TINY, seed=0)
    images, labels = digits_dataset("test")
    images = images.clone()
    images[:] = float("nan")
    log = fit(model, (images, labels), epochs=2, batch_size=32, generator=torch.Generator().manual_seed(0))
    assert log.first_nonfinite_step == 0 and len(log.loss) == 1


def test_tiny_digits_vit_learns_and_is_deterministic():
    trained = train_digits_vit(TINY, seed=0, epochs=6, learning_rate=1e-2)
    # 540 test images: chance is 0.1 (s.e. 0.013); measured 0.67 for this run
    assert trained.test_accuracy > 0.4
    assert len(trained.history) == 6 * 20  # 1257 images / 64 per batch = 20 steps per epoch
    assert sum(trained.history[-20:]) < sum(trained.history[:20])
    assert trained.test_inputs.shape == (540, 8, 8) and trained.test_labels.shape == (540,)
    assert not trained.model.training
    first, second = (train_digits_vit(TINY, seed=0, epochs=1, learning_rate=1e-2) for _ in range(2))
    assert first.history == second.history and first.test_accuracy == second.test_accuracy
    assert first.history[0] == trained.history[0]  # same init and first batch (the cosine schedule differs later)
    other = train_digits_vit(TINY, seed=1, epochs=1, learning_rate=1e-2)
    assert other.history != first.history


def test_tiny_text_model_learns_and_is_deterministic():
    config = TransformerConfig(dim=32, depth=2, heads=2, mlp_ratio=2.0)
    options = dict(seed=0, train_size=2000, test_size=600, learning_rate=5e-3)
    trained = train_text_model(config, epochs=12, **options)
    # 600 fresh test sequences: chance 0.5 with s.e. 0.02; measured 0.668 for this run
    assert trained.test_accuracy > 0.58
    first, second = (train_text_model(config, epochs=1, **options) for _ in range(2))
    assert first.history == second.history and first.test_accuracy == second.test_accuracy
    assert first.history[0] == trained.history[0]


def test_torch_threads_restores_the_setting():
    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with pytest.raises(ValueError):
        with torch_threads(0):
            pass
