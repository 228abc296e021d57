"""GradNorm task weighting (Chen et al. 2018; HyCoVAD Eq. 5-6).

Convention (one update, :func:`gradnorm_step`), for ``T`` tasks with weights ``w_i``, current
unweighted losses ``L_i``, first-step losses ``L_i(0)`` and ``g_i = ||grad_W L_i||_2`` (the
gradient norm of the *unweighted* loss with respect to the last shared layer ``W``):

* ``G_i = w_i * g_i`` (the weighted task's gradient norm), ``G_bar = mean_i G_i``;
* ``r_i = (L_i / L_i(0)) / mean_j (L_j / L_j(0))`` (relative inverse training rate);
* ``target_i = G_bar * r_i ** alpha``, treated as a constant;
* ``L_grad = sum_i |G_i - target_i|``; ``dL_grad / dw_i = sign(G_i - target_i) * g_i``;
* ``w <- w - lr * dL_grad/dw`` (plain gradient descent), clamped to ``>= min_weight``, then
  renormalised so that ``sum_i w_i = T``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch


def gradnorm_step(weights: np.ndarray, losses: np.ndarray, initial_losses: np.ndarray,
                  grad_norms: np.ndarray, alpha: float, lr: float,
                  min_weight: float = 1e-3) -> np.ndarray:
    """One GradNorm update (module docstring). All arrays ``(T,)``; returns the new ``(T,)``
    float64 weights (summing to ``T``)."""
    w = np.asarray(weights, dtype=np.float64)
    loss = np.asarray(losses, dtype=np.float64)
    loss0 = np.maximum(np.asarray(initial_losses, dtype=np.float64), 1e-12)
    g = np.asarray(grad_norms, dtype=np.float64)
    big_g = w * g
    ratio = loss / loss0
    rate = ratio / max(float(ratio.mean()), 1e-12)
    target = big_g.mean() * rate ** alpha
    grad = np.sign(big_g - target) * g
    new = np.maximum(w - lr * grad, min_weight)
    return np.asarray(new * len(new) / new.sum())


class GradNorm:
    """Keeps GradNorm's state: task names, weights, ``L_i(0)`` (the losses of the first
    :meth:`update`). :meth:`grad_norms` computes ``g_i`` by ``torch.autograd.grad`` of each
    unweighted loss with respect to the shared layer."""

    def __init__(self, tasks: Sequence[str], alpha: float = 1.5, lr: float = 0.025,
                 min_weight: float = 1e-3) -> None:
        self.tasks = list(tasks)
        self.alpha, self.lr, self.min_weight = alpha, lr, min_weight
        self.weights = np.ones(len(self.tasks))
        self.initial: np.ndarray | None = None

    def weight_dict(self) -> dict[str, float]:
        return {t: float(w) for t, w in zip(self.tasks, self.weights, strict=True)}

    @staticmethod
    def grad_norms(losses: dict[str, torch.Tensor], shared: torch.Tensor,
                   tasks: Sequence[str]) -> np.ndarray:
        """``(T,)`` ``||d L_i / d shared||_2`` (graphs retained; a loss that does not reach
        ``shared`` gets 0)."""
        out = []
        for t in tasks:
            (g,) = torch.autograd.grad(losses[t], shared, retain_graph=True, allow_unused=True)
            out.append(0.0 if g is None else float(g.norm()))
        return np.asarray(out)

    def update(self, losses: dict[str, float], grad_norms: np.ndarray) -> dict[str, float]:
        """Record ``L_i(0)`` on the first call, then one :func:`gradnorm_step`; returns the new
        weights by task."""
        loss = np.asarray([losses[t] for t in self.tasks], dtype=np.float64)
        if self.initial is None:
            self.initial = loss.copy()
        self.weights = gradnorm_step(self.weights, loss, self.initial, grad_norms, self.alpha,
                                     self.lr, self.min_weight)
        return self.weight_dict()
