"""Eigen-spectrum, power-law exponent and participation ratio on data with known answers."""

import numpy as np
import pytest
import torch

from lib import spectrum
from lib.spectrum import SpectrumError


def planted(alpha, n_samples=20000, p=200, seed=0):
    """Gaussian samples whose covariance has eigenvalues n^-alpha in a random basis."""
    rng = np.random.default_rng(seed)
    lam = np.arange(1, p + 1, dtype=float) ** -alpha
    q, _ = np.linalg.qr(rng.standard_normal((p, p)))
    return (rng.standard_normal((n_samples, p)) * np.sqrt(lam)) @ q.T


@pytest.mark.parametrize("alpha", [0.8, 1.0, 2.0])
def test_exact_power_law_recovered_exactly(alpha):
    eigs = 3.0 * np.arange(1, 101, dtype=float) ** -alpha
    for weighting in spectrum.WEIGHTINGS:
        fit = spectrum.fit_power_law(eigs, (5, 80), weighting=weighting)
        assert fit.alpha == pytest.approx(alpha, rel=1e-10)
        assert fit.intercept == pytest.approx(np.log(3.0), rel=1e-10)
        assert fit.r2 == pytest.approx(1.0)


@pytest.mark.parametrize("alpha", [1.0, 1.5])
def test_planted_exponent_from_samples_within_two_percent(alpha):
    fit = spectrum.analyse(planted(alpha), (5, 50)).fit
    assert abs(fit.alpha - alpha) / alpha < 0.02
    assert fit.r2 > 0.99


def test_eigenspectrum_matches_numpy_and_accepts_tensors():
    x = np.random.default_rng(1).standard_normal((50, 8))
    want = np.sort(np.linalg.eigvalsh(np.cov(x, rowvar=False)))[::-1]
    np.testing.assert_allclose(spectrum.eigenspectrum(x), want, rtol=1e-10)
    np.testing.assert_allclose(spectrum.eigenspectrum(torch.tensor(x)), want, rtol=1e-10)


def test_more_units_than_samples_gives_descending_spectrum_with_zero_tail():
    x = np.random.default_rng(2).standard_normal((20, 60))
    eigs = spectrum.eigenspectrum(x)
    assert eigs.shape == (60,)
    assert np.all(np.diff(eigs) <= 1e-12)
    assert spectrum.numerical_rank(eigs) == 19  # n - 1 after centring
    np.testing.assert_allclose(eigs[:19], np.sort(np.linalg.eigvalsh(np.cov(x, rowvar=False)))[::-1][:19], rtol=1e-8)


def test_window_is_one_based_and_inclusive():
    eigs = np.arange(1, 11, dtype=float) ** -1.0
    eigs[0] = 100.0  # an outlier at rank 1 must be outside window (2, 10)
    assert spectrum.fit_power_law(eigs, (2, 10)).alpha == pytest.approx(1.0)
    assert spectrum.fit_power_law(eigs, (2, 10)).window == (2, 10)
    assert spectrum.fit_power_law(eigs, (1, 10)).alpha > 1.5


@pytest.mark.parametrize(
    "window, message",
    [
        ((0, 5), "1-based"),
        ((4, 5), "at least 3"),
        ((2, 11), "beyond the 10 eigenvalues"),
        ((5, 3), "at least 3"),
        (("a", 3), "two integer ranks"),
        ((1, 2, 3), "two integer ranks"),
    ],
)
def test_bad_windows_raise_clear_errors(window, message):
    eigs = np.arange(1, 11, dtype=float) ** -1.0
    with pytest.raises(SpectrumError, match=message):
        spectrum.fit_power_law(eigs, window)


def test_window_beyond_numerical_rank_raises():
    x = np.random.default_rng(3).standard_normal((100, 3)) @ np.random.default_rng(4).standard_normal((3, 20))
    eigs = spectrum.eigenspectrum(x)  # rank 3 in 20 units
    assert spectrum.numerical_rank(eigs) == 3
    with pytest.raises(SpectrumError, match="numerical rank 3"):
        spectrum.fit_power_law(eigs, (1, 5))


@pytest.mark.parametrize(
    "x, message",
    [
        (np.zeros((10, 4)), "constant"),
        (np.ones((1, 4)), "at least 2 samples"),
        (np.ones(5), "2-D"),
        (np.array([[1.0, np.nan], [0.0, 1.0]]), "NaN"),
    ],
)
def test_degenerate_activations_raise(x, message):
    with pytest.raises(SpectrumError, match=message):
        spectrum.eigenspectrum(x)


def test_participation_ratio_known_values():
    assert spectrum.participation_ratio(np.ones(7)) == pytest.approx(7.0)
    assert spectrum.participation_ratio(np.array([5.0, 0, 0])) == pytest.approx(1.0)
    iso = spectrum.eigenspectrum(np.random.default_rng(5).standard_normal((20000, 10)))
    assert spectrum.participation_ratio(iso) == pytest.approx(10.0, rel=0.02)
    with pytest.raises(SpectrumError, match="^participation ratio of an all-zero spectrum is undefined$"):
        spectrum.participation_ratio(np.zeros(3))
    with pytest.raises(SpectrumError, match="negative"):
        spectrum.participation_ratio(np.array([1.0, -1.0]))


def test_unknown_weighting_raises():
    with pytest.raises(SpectrumError, match="weighting"):
        spectrum.fit_power_law(np.arange(1, 11.0) ** -1, (1, 10), weighting="log")


def test_inverse_rank_weights_count_from_rank_one_on_a_bent_spectrum():
    """A spectrum that is no power law (its slope steepens from 0.8 to 1.6 at rank 30), so the weights matter.

    The weighted fit is done by hand: numpy's polyfit minimises sum (w_i r_i)^2, so w_i = 1/sqrt(n)
    gives Stringer et al.'s 1/n weight to rank n's squared residual (rank n, not its place in the window).
    """
    n = np.arange(1, 201, dtype=float)
    eigs = np.where(n < 30, n**-0.8, 30.0**0.8 * n**-1.6)
    lo, hi = 10, 150
    ranks = n[lo - 1 : hi]
    x, y = np.log(ranks), np.log(eigs[lo - 1 : hi])
    slope, intercept = np.polyfit(x, y, 1, w=1 / np.sqrt(ranks))
    w = 1 / ranks
    resid = y - (intercept + slope * x)
    ybar = np.sum(w * y) / np.sum(w)
    r2 = 1 - np.sum(w * resid**2) / np.sum(w * (y - ybar) ** 2)
    fit = spectrum.fit_power_law(eigs, (lo, hi))
    assert fit.alpha == pytest.approx(-slope, rel=1e-10)
    assert fit.intercept == pytest.approx(intercept, rel=1e-10)
    assert fit.r2 == pytest.approx(r2, rel=1e-10) and fit.r2 < 0.99
    assert fit.weighting == "inverse_rank" and fit.window == (lo, hi)
    uniform = spectrum.fit_power_law(eigs, (lo, hi), weighting="uniform")
    assert uniform.alpha == pytest.approx(-np.polyfit(x, y, 1)[0], rel=1e-10)
    # the weights matter here: counted from the window's start (1/(n - lo + 1)) they give another exponent
    from_start = -np.polyfit(x, y, 1, w=1 / np.sqrt(ranks - lo + 1))[0]
    assert abs(fit.alpha - uniform.alpha) > 0.05 and abs(fit.alpha - from_start) > 0.05


def test_rank_power_law_line_and_degenerate_spectra_name_their_fault():
    eigs = np.array([100.0, 1.0, 1e-7, 1e-9])
    assert spectrum.numerical_rank(eigs) == 3  # relative to the largest: 1e-9 is below 1e-10 * 100
    assert spectrum.numerical_rank(eigs, rtol=1e-8) == 2
    assert spectrum.numerical_rank(eigs, rtol=0.005) == 2 and spectrum.numerical_rank(np.zeros(3)) == 0
    for bad in (np.ones((2, 2)), np.array([]), np.array([1.0, np.nan])):
        with pytest.raises(SpectrumError, match=r"^eigenvalues must be a non-empty 1-D array of finite numbers$"):
            spectrum.numerical_rank(bad)
        with pytest.raises(SpectrumError, match=r"^eigenvalues must be a non-empty 1-D array of finite numbers$"):
            spectrum.participation_ratio(bad)
    with pytest.raises(SpectrumError, match=r"^activations contain NaN or infinite values$"):
        spectrum.eigenspectrum(np.array([[1.0, np.inf], [0.0, 1.0]]))
    fit = spectrum.PowerLawFit(alpha=1.5, intercept=np.log(2.0), r2=1.0, window=(1, 3), weighting="uniform")
    np.testing.assert_allclose(fit.line([1, 4, 9]), [2.0, 2.0 / 8, 2.0 / 27], rtol=1e-12)
    x = np.random.default_rng(7).standard_normal((50, 6)) * [10, 1, 0.1, 1e-3, 1e-3, 1e-3]
    assert spectrum.analyse(x, (1, 3), rtol=1e-6).rank == 3  # rtol reaches the rank too
    assert spectrum.analyse(x, (1, 3)).rank == 6


def test_line_of_an_integer_exponent_over_integer_ranks():
    """A reference law drawn by hand (n^-2 through 1 at rank 1) over integer ranks, as np.arange gives them:
    integers to a negative integer power, which numpy refuses for integer arrays, are evaluated in floats."""
    ref = spectrum.PowerLawFit(alpha=2, intercept=0.0, r2=1.0, window=(1, 4), weighting="uniform")
    np.testing.assert_allclose(ref.line(np.arange(1, 5)), [1.0, 1 / 4, 1 / 9, 1 / 16], rtol=1e-15)


def test_flat_spectrum_has_exponent_zero_and_no_r2():
    """Equal eigenvalues: the log-log line is flat (alpha = 0) and there is no variance to explain: r2 is NaN.

    Eigenvalue 1 makes every log exactly 0, so the total sum of squares is exactly 0 (no round-off).
    """
    for weighting in ("inverse_rank", "uniform"):
        fit = spectrum.fit_power_law(np.ones(8), (1, 8), weighting=weighting)
        assert fit.alpha == pytest.approx(0.0, abs=1e-12) and np.isnan(fit.r2)


def test_numerical_rank_compares_float32_eigenvalues_at_their_exact_value():
    """float32(0.1) = 0.10000000149... exceeds 0.1 x 1.0, so it counts; float32(0.09) does not.

    Rounding the threshold rtol x top to float32 too would make 0.1 equal to itself and miss it.
    """
    assert spectrum.numerical_rank(np.array([1.0, 0.1], dtype=np.float32), rtol=0.1) == 2
    assert spectrum.numerical_rank(np.array([1.0, 0.09], dtype=np.float32), rtol=0.1) == 1
    assert spectrum.numerical_rank(np.zeros(3)) == 0
