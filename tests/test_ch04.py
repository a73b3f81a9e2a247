"""Chapter 4 helpers: parameter checks, planted scaling exponents, paired data, the affine invariant."""
import numpy as np
import pandas as pd
import pytest
import torch

from lib import config, ensemble
from lib.chapters import ch04
from lib.config import ParameterError


def test_chapter_parameters_fail_before_compute():
    with pytest.raises(ParameterError, match="'k'"):  # resolve runs ch04.validate
        config.resolve(ch04.PARAMS, {"profile": "quick"}, k=64, d=64)
    with pytest.raises(ParameterError, match="sweep_k"):
        config.resolve(ch04.PARAMS, {"profile": "quick"}, sweep_k=[2, 200])
    with pytest.raises(ParameterError, match="margin"):
        config.resolve(ch04.PARAMS, {"profile": "quick"}, margin=-1.0)


def test_exponents_recover_planted_slopes():
    rng = np.random.default_rng(0)
    rows = []
    for seed in range(8):
        for v in (1.0, 2.0, 4.0, 8.0):
            S = 3.0 * v ** 0.4  # output mass growing like v^0.4: adds 0.2 to the slope
            pred = v ** 0.5 * np.sqrt(S)
            rows.append({"seed": seed, "value": v, "decay": 1.0, "S": S, "pred_perp": pred,
                         "g_perp": pred * np.exp(rng.normal(0, 0.01)), "delta_perp": 1 / pred, "f": 1.0,
                         "reached": True, "sweep": "width"})
    out = ch04.exponents(pd.DataFrame(rows))
    assert out["structural"] == pytest.approx(0.5, abs=1e-9)
    assert out["predicted"] == pytest.approx(0.7, abs=1e-9)
    assert out["measured_lo"] < 0.7 < out["measured_hi"]
    assert out["delta_measured"] == pytest.approx(-0.7, abs=1e-9)
    assert ch04.agreement_verdict(out["diff_lo"], out["diff_hi"]) == "holds"
    assert ch04.agreement_verdict(0.2, 0.3) == "does not hold"
    assert ch04.agreement_verdict(-0.05, 0.2) == "inconclusive at this scale"


def test_mean_ci_known_values():
    m, lo, hi = ch04.mean_ci([1.0, 2.0, 3.0])
    assert m == 2.0 and lo == pytest.approx(2 - 4.302653 / np.sqrt(3), rel=1e-5) and hi == pytest.approx(4 - lo)


def test_paired_batches_share_data_and_pad_dimensions():
    g = torch.Generator().manual_seed(0)
    b = ch04.make_batch(8, [6, 6, 6, 6], [2, 2, 2, 2], rule="xor", radius=3.0, generator=g, device="cpu", shared=2)
    assert torch.equal(b.x[0], b.x[2]) and not torch.equal(b.x[0], b.x[1])
    torch.testing.assert_close(b.x.norm(dim=-1), torch.full((4, 8), 3.0))
    p = ch04.make_batch(5, [3, 7], [2, 4], rule="random", radius=1.0, generator=g, device="cpu")
    assert p.x.shape == (2, 5, 7) and p.x[0, :, 3:].abs().max() == 0 and p.basis[0, :, 2:].abs().max() == 0
    torch.testing.assert_close(p.basis[1].T @ p.basis[1], torch.eye(4), atol=1e-6, rtol=0)


def test_off_plane_weights_move_with_the_biases_on_an_affine_plane():
    x, y = ch04.chessboard_data(0.5)
    g = torch.Generator().manual_seed(1)
    ens = ensemble.init(2, 3, 30, generator=g, dtype=torch.float64)
    w0, b0 = ens.w.clone(), ens.b.clone()
    ensemble.fit(ens, x.double(), y, lr=0.05, steps=200, progress=False)
    torch.testing.assert_close(ens.w[..., 2] - w0[..., 2], 0.5 * (ens.b - b0), atol=1e-12, rtol=0)
    assert (ens.b - b0).abs().max() > 1e-2
