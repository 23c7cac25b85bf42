"""Local training's options: seeded augmentation, and FedRS's restricted softmax."""

from __future__ import annotations

import numpy as np
import torch

from fedsparse.data import ArrayDataset
from fedsparse.sections import AugmentConfig, TrainingConfig
from fedsparse.training import augmenter, fit, model_input


def test_augmentation_flips_and_crops_reproducibly() -> None:
    batch = torch.arange(2 * 1 * 4 * 4, dtype=torch.float32).reshape(2, 1, 4, 4)
    flipped = augmenter(AugmentConfig(flip=True))(batch.repeat(50, 1, 1, 1), torch.Generator().manual_seed(0))
    kept = [bool(torch.equal(image, batch[i % 2])) for i, image in enumerate(flipped)]
    assert 30 < sum(kept) < 70  # about half flipped
    assert all(
        k or torch.equal(image, batch[i % 2].flip(2)) for i, (image, k) in enumerate(zip(flipped, kept, strict=True))
    )
    crop = augmenter(AugmentConfig(crop_padding=1))
    a, b = crop(batch, torch.Generator().manual_seed(1)), crop(batch, torch.Generator().manual_seed(1))
    assert a.shape == batch.shape and torch.equal(a, b)
    for image, original in zip(a, batch, strict=True):
        padded = torch.nn.functional.pad(original, (1, 1, 1, 1))
        windows = [padded[:, y : y + 4, x : x + 4] for y in range(3) for x in range(3)]
        assert any(torch.equal(image, window) for window in windows)  # a 4×4 window of the padded image


def _digits_of(classes: list[int]) -> ArrayDataset:
    from fedsparse.data import DATASETS

    train = DATASETS.get("digits").load(None, 0, 0.2).train
    return train.subset(np.flatnonzero(np.isin(train.y, classes)))


def test_the_restricted_softmax_leaves_absent_classes_rows_untouched() -> None:
    data = _digits_of([0, 1, 2])
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 16), torch.nn.ReLU(), torch.nn.Linear(16, 10))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    training = TrainingConfig(local_epochs=2, lr=0.1, restricted_softmax=0.0)
    fit(model, data, training, generator=torch.Generator().manual_seed(0), device=torch.device("cpu"))
    head = model[3]
    assert torch.equal(head.weight[3:], before["3.weight"][3:]) and torch.equal(head.bias[3:], before["3.bias"][3:])
    assert not torch.equal(head.weight[:3], before["3.weight"][:3])  # the present classes learned
    assert isinstance(model, torch.nn.Sequential)  # the model itself is returned to the caller unwrapped

    plain = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 16), torch.nn.ReLU(), torch.nn.Linear(16, 10))
    plain.load_state_dict(before)
    fit(plain, data, TrainingConfig(local_epochs=2, lr=0.1), generator=torch.Generator().manual_seed(0),
        device=torch.device("cpu"))  # fmt: skip
    assert not torch.equal(plain[3].bias[3:], before["3.bias"][3:])  # without it, absent classes are pushed down


def test_a_model_gets_the_same_layout_and_results_whatever_strides_its_images_arrived_with() -> None:
    """Loaded images carry a stride-0 channel axis and Ray's object store rewrites it: both
    must reach the model alike, or a seed's results would depend on the engine."""
    from fedsparse.models.registry import build_model

    images = np.random.default_rng(0).standard_normal((8, 28, 28), dtype=np.float32)
    loaded = images[:, None][np.arange(8)]  # the channel axis as loading and indexing leave it
    travelled = np.lib.stride_tricks.as_strided(images, (8, 1, 28, 28), (3136, 3136, 112, 4))  # as Ray returns it
    assert loaded.strides != travelled.strides and np.array_equal(loaded, travelled)
    first, second = model_input(loaded), model_input(travelled)
    assert first.stride() == second.stride() and first.is_contiguous(memory_format=torch.channels_last)
    torch.manual_seed(0)
    model = build_model("cnn", (1, 28, 28), 10)
    with torch.no_grad():
        assert torch.equal(model(first), model(second))
    assert model_input(np.ones((3, 4), dtype=np.float32)).shape == (3, 4)  # not images: as it is
