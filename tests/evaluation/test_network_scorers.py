"""``network_scorers``: a network in memory (an untrained architecture, say) behind the Scorer
interface that predict and serve use, on the same path as a trained run's model."""

from __future__ import annotations

import string

import numpy as np
import torch

from letterbench.core.runtime import Runtime
from letterbench.evaluation.inference import DEFAULT_TEMPERATURE, network_scorers, predict_probabilities
from letterbench.images import transforms
from letterbench.models import create_model

NAMES = list(string.ascii_lowercase)


def _networks() -> list:
    nets = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        nets.append(create_model("smallcnn").eval())
    return nets


def test_each_network_is_scored_by_itself_at_its_temperature():
    runtime = Runtime.create("cpu", precision="float32")
    first, second = _networks()
    images = np.random.default_rng(0).integers(0, 256, (6, 28, 28), dtype=np.uint8)
    plain, warm = network_scorers(
        [
            (first, {"name": "first", "model": "smallcnn", "class_names": NAMES}),
            (second, {"name": "second", "model": "smallcnn", "class_names": NAMES, "temperature": 2.0}),
        ],
        runtime,
    )
    assert (plain.name, plain.model, plain.temperature) == ("first", "smallcnn", DEFAULT_TEMPERATURE)
    assert (warm.temperature, warm.trained_on, warm.not_useful) == (2.0, None, None)
    batch = torch.from_numpy(images)
    np.testing.assert_allclose(plain.probabilities(images), predict_probabilities(first, batch, runtime))
    np.testing.assert_allclose(warm.probabilities(images), predict_probabilities(second, batch, runtime, 2.0))
    assert not np.allclose(plain.probabilities(images), warm.probabilities(images))


def test_test_time_views_are_averaged_where_given():
    runtime = Runtime.create("cpu", precision="float32")
    net = _networks()[0]
    images = np.random.default_rng(1).integers(0, 256, (4, 28, 28), dtype=np.uint8)
    views = transforms.test_time_views()
    (scorer,) = network_scorers(
        [(net, {"name": "n", "model": "smallcnn", "class_names": NAMES})], runtime, views
    )
    expected = predict_probabilities(net, torch.from_numpy(images), runtime, views=views)
    np.testing.assert_allclose(scorer.probabilities(images), expected)
    assert scorer.probabilities(images).shape == (4, 26)
