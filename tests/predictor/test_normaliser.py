"""The networks' input normalisation: z-score, the rank-Gaussian (quantile) map, both side by
side, and the piecewise-linear encoding (ple)."""

from __future__ import annotations

import numpy as np
import pytest

from ftmoe.predictor.data import PLE_BINS, Normaliser


def heavy_tailed(n: int = 20000, seed: int = 0) -> np.ndarray:
    """[T, 1, 3]: a lognormal latency, a constant, and a metric at 0 nine times in ten."""
    rng = np.random.default_rng(seed)
    cols = [rng.lognormal(0, 2, n), np.full(n, 7.0), (rng.random(n) < 0.1) * rng.uniform(1, 5, n)]
    return np.stack(cols, axis=-1)[:, None, :]


def test_quantile_maps_each_feature_to_a_standard_normal() -> None:
    x = heavy_tailed()
    z = Normaliser.fit(x, "quantile")(x)[:, 0, 0]
    assert abs(z.mean()) < 0.02 and abs(z.std() - 1) < 0.02
    assert abs(np.mean(np.abs(z) < 1) - 0.683) < 0.01  # the normal's share within one sd


def test_ties_and_constants_map_to_one_value_each() -> None:
    x = heavy_tailed()
    z = Normaliser.fit(x, "quantile")(x)[:, 0]
    assert np.all(z[:, 1] == 0.0)  # a constant feature carries nothing
    zeros = z[x[:, 0, 2] == 0, 2]
    assert np.unique(zeros).size == 1  # equal inputs, one output
    assert zeros[0] < z[x[:, 0, 2] > 0, 2].min()  # and the order is kept


def test_values_beyond_the_fitted_range_map_to_its_ends() -> None:
    x = heavy_tailed()
    n = Normaliser.fit(x, "quantile")
    out = n(np.array([[[-1e12, 7.0, -1.0]], [[1e12, 7.0, 1e6]]]))
    assert out[0, 0, 0] == pytest.approx(-out[1, 0, 0]) and 3.0 < out[1, 0, 0] < 3.3
    assert np.isfinite(out).all()


def test_both_gives_quantile_and_zscore_side_by_side() -> None:
    x = heavy_tailed()
    both = Normaliser.fit(x, "both")
    out = both(x[:50])
    assert out.shape == (50, 1, 6)
    np.testing.assert_allclose(out[..., :3], Normaliser.fit(x, "quantile")(x[:50]), atol=1e-6)
    np.testing.assert_allclose(out[..., 3:], Normaliser.fit(x, "zscore")(x[:50]), atol=1e-6)


def test_ple_codes_count_the_quantile_bins_a_value_has_passed() -> None:
    x = heavy_tailed()
    codes = Normaliser.fit(x, "ple")(x)
    assert codes.shape == (len(x), 1, 3 * PLE_BINS) and codes.min() >= 0.0 and codes.max() <= 1.0
    latency = codes[:, 0, :PLE_BINS]
    # Bins of equal shares of the fitting data: code k is 1 (bin k passed) for about (bins - 1 - k) / bins of it.
    np.testing.assert_allclose((latency > 0.999).mean(axis=0), 1 - (np.arange(PLE_BINS) + 1) / PLE_BINS, atol=0.02)
    # Codes fill in order (a value has passed bin k only once it has passed every bin below).
    assert np.all(np.diff(latency, axis=-1) <= 1e-6)
    # Their sum is the value's place in the distribution: monotone in the value.
    order = np.argsort(x[:, 0, 0])
    assert np.all(np.diff(latency.sum(axis=-1)[order]) >= -1e-5)
    assert np.unique(codes[:, 0, PLE_BINS : 2 * PLE_BINS], axis=0).shape[0] == 1  # a constant: one code
    far = Normaliser.fit(x, "ple")(np.array([[[1e12, 7.0, 1e6]], [[-1e12, 7.0, -1.0]]]))
    np.testing.assert_allclose(far[0, 0, :PLE_BINS], 1.0, atol=1e-3)  # past the last bin
    np.testing.assert_allclose(far[1, 0, :PLE_BINS], 0.0, atol=1e-3)  # before the first


@pytest.mark.parametrize("method", ["zscore", "quantile", "both", "ple"])
def test_zscore_is_the_same_whatever_the_model_inputs(method: str) -> None:
    """The operator's drivers and out-of-distribution check read z-scores: the quantile map,
    bounded at +-3.3, would hide an input hundreds of standard deviations out."""
    x = heavy_tailed()
    far = np.array([[[1e30, 7.0, 0.0]]])
    z = Normaliser.fit(x, method).zscore(far)
    assert z[0, 0, 0] > 10
    np.testing.assert_allclose(z, Normaliser.fit(x, "zscore")(far))


@pytest.mark.parametrize("method", ["zscore", "quantile", "both", "ple"])
def test_a_saved_normaliser_reads_back_the_same(method: str) -> None:
    x = heavy_tailed()
    n = Normaliser.fit(x, method)
    again = Normaliser(**n.to_dict())
    assert again.method == method
    np.testing.assert_array_equal(again(x[:100]), n(x[:100]))


def test_a_model_file_without_quantile_fields_reads_as_zscore() -> None:
    """Model files written before the quantile map keep only log, mean and std."""
    old = {"log": [False], "mean": [1.0], "std": [2.0]}
    n = Normaliser(**old)
    assert n.method == "zscore"
    np.testing.assert_allclose(n(np.array([[[5.0]]])), [[[2.0]]])


def test_an_unknown_method_is_named() -> None:
    with pytest.raises(ValueError, match="normalisation 'rank' is not one of zscore, quantile, both, ple"):
        Normaliser.fit(heavy_tailed(100), "rank")


def test_a_model_file_with_a_bad_normalisation_is_named_not_guessed() -> None:
    saved = Normaliser.fit(heavy_tailed(100), "quantile").to_dict()
    with pytest.raises(ValueError, match="normalisation 'rank' is not one of"):
        Normaliser(**{**saved, "method": "rank"})
    with pytest.raises(ValueError, match="normalisation 'quantile' needs its quantile map"):
        Normaliser(**{**saved, "knots": None})
