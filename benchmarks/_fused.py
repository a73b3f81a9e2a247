"""PGD updates as compiled one-pass C++ kernels: how low a fused update goes (``attack_step.py --fused``).

Not part of ``lib``: a book library cannot ask its readers for a C++ compiler, and this
kernel runs on CPU float32 only. It answers one question for the attack-step target:
how much of an update's cost is the number of eager operations, and how much is the
memory every update has to read after a forward and backward pass, whatever runs it.

* L-inf: one pass that reads the iterate, the gradient and the clean input (the box is
  computed on the fly, so the bounds are not read at all) and writes the iterate.
* L2: the two per-sample norms stay ``torch.linalg.vector_norm`` (its summation order is
  what makes the iterates equal), and the elementwise work around them is two passes.

The kernels round every operation as the eager ones do (``-ffp-contract=off``: no fused
multiply-add where PyTorch has none), so their iterates are ``lib.attacks.pgd``'s bit for
bit; ``attack_step.fused_floor`` runs them, and ``attack_step.py`` checks that before timing them.
"""

from __future__ import annotations

SOURCE = r"""
#include <torch/extension.h>
#include <algorithm>

// x <- clamp(x + step * sign(g), max(x0 - eps, 0), min(x0 + eps, 1)), one pass.
void linf_update(torch::Tensor x, torch::Tensor g, torch::Tensor x0, double step, double eps) {
  float* xp = x.data_ptr<float>();
  const float* gp = g.data_ptr<float>();
  const float* x0p = x0.data_ptr<float>();
  const float s = (float)step, e = (float)eps;
  const int64_t n = x.numel();
  #pragma omp simd
  for (int64_t i = 0; i < n; i++) {
    const float gi = gp[i];
    const float sg = (float)((gi > 0.f) - (gi < 0.f));
    const float lo = std::min(std::max(x0p[i] - e, 0.f), 1.f);
    const float hi = std::min(std::max(x0p[i] + e, 0.f), 1.f);
    float v = xp[i] + s * sg;
    v = v < lo ? lo : v;
    xp[i] = v > hi ? hi : v;
  }
}

// x <- (x + (step * g) / max(gn, 1e-12)) - x0: the L2 step, then the offset from x0, one pass.
void l2_step(torch::Tensor x, torch::Tensor g, torch::Tensor gn, torch::Tensor x0, double step) {
  float* xp = x.data_ptr<float>();
  const float* gp = g.data_ptr<float>();
  const float* np = gn.data_ptr<float>();
  const float* x0p = x0.data_ptr<float>();
  const float s = (float)step;
  const int64_t rows = x.size(0), cols = x.numel() / rows;
  for (int64_t r = 0; r < rows; r++) {
    const float d = std::max(np[r], 1e-12f);
    const int64_t o = r * cols;
    #pragma omp simd
    for (int64_t i = o; i < o + cols; i++) xp[i] = (xp[i] + (s * gp[i]) / d) - x0p[i];
  }
}

// out <- clamp(x0 + (eps * delta) / max(dn, max(eps, 1e-12)), 0, 1): the projection onto the ball, one pass.
void l2_project(torch::Tensor out, torch::Tensor delta, torch::Tensor dn, torch::Tensor x0, double eps) {
  float* op = out.data_ptr<float>();
  const float* dp = delta.data_ptr<float>();
  const float* np = dn.data_ptr<float>();
  const float* x0p = x0.data_ptr<float>();
  const float e = (float)eps, floor_ = (float)std::max(eps, 1e-12);
  const int64_t rows = out.size(0), cols = out.numel() / rows;
  for (int64_t r = 0; r < rows; r++) {
    const float d = std::max(np[r], floor_);
    const int64_t o = r * cols;
    #pragma omp simd
    for (int64_t i = o; i < o + cols; i++) {
      const float v = x0p[i] + (e * dp[i]) / d;
      op[i] = v < 0.f ? 0.f : (v > 1.f ? 1.f : v);
    }
  }
}
"""


def load():
    """The compiled kernels (built once, then cached by torch under ~/.cache/torch_extensions)."""
    from torch.utils.cpp_extension import load_inline

    return load_inline(
        "pgd_fused_update",
        cpp_sources=SOURCE,
        functions=["linf_update", "l2_step", "l2_project"],
        extra_cflags=["-O3", "-march=native", "-ffp-contract=off", "-fopenmp-simd"],
        verbose=False,
    )
