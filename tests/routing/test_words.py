"""The word-count learner and the feature guards: hashed TF-IDF terms, a ridge on them that finds a word the
embedding cannot see, text statistics clipped to the training range."""

from __future__ import annotations

import numpy as np
import pytest

from tokenomy.routing.features import FeatureConfig, featurize, fit_config
from tokenomy.routing.words import BUCKETS, WordsModel, count_matrix, terms


def test_terms_are_words_and_pairs_of_a_capped_text() -> None:
    assert terms("Which is NOT true?") == ["which", "is", "not", "true", "which is", "is not", "not true"]
    long = "alpha " * 2000 + "omega"
    kept = terms(long)
    assert kept[-1] == "alpha omega" and len(kept) < 2 * 2000  # head and tail of the text only
    counts = count_matrix(["a b a", ""])
    assert counts.shape == (2, BUCKETS) and counts[0].sum() == 5 and counts[1].nnz == 0  # a, b, a, a b, b a


def test_words_model_learns_a_word_and_ignores_rare_ones() -> None:
    rng = np.random.default_rng(0)
    vocabulary = [f"w{i}" for i in range(200)]
    prompts, residual = [], []
    for i in range(400):
        words = list(rng.choice(vocabulary, 8))
        hard = i % 2 == 0
        prompts.append(" ".join(words + (["except"] if hard else []) + [f"unique{i}"]))
        residual.append([-0.3 if hard else 0.3, 0.0])
    y = np.array(residual)
    model = WordsModel.fit(count_matrix(prompts), y, alpha=1.0)
    predicted = model.predict(count_matrix(["w1 w2 w3 except", "w1 w2 w3", "unique3 unique5"]))
    assert predicted[0, 0] < -0.1 < 0.1 < predicted[1, 0]
    assert predicted[2, 0] == pytest.approx(model.bias[0])  # words seen once in training carry no weight
    assert np.abs(predicted[:, 1]).max() < 1e-6


def test_text_statistics_are_clipped_to_the_training_range() -> None:
    prompts = [f"What is {i} plus {i + 1}?" for i in range(30)]
    config = fit_config(prompts, [None] * 30, FeatureConfig())
    far = "line\n" * 500 + "x" * 20000
    features = featurize(config, [far, prompts[0]], [None, None], lambda texts: np.zeros((len(texts), 4)))
    assert np.all(features.text[0] <= np.array(config.text_high) + 1e-12)
    assert np.all(features.text >= np.array(config.text_low) - 1e-12)
    assert features.text[0, 0] == pytest.approx(config.text_high[0])  # log_chars: far longer than any prompt seen
