"""The torch speed path of the optimizer: :meth:`MLP._update`'s formulas as ``_foreach_*`` ops.

torch._foreach_* ops update every tensor of a list in one call (as torch.optim's foreach
implementations do): no per-parameter Python loop, one dispatch per formula. The formulas are
those of :mod:`dropout_lab.backends.mlp` (coupled L2 weight decay on the weights only):

    g <- g + wd W;   sgd: W <- W - lr g;   momentum: v <- mu v + g;  W <- W - lr v
    adam: m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g^2;
          W <- W - lr / (1 - b1^t) * m / (sqrt(v / (1 - b2^t)) + eps)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from dropout_lab.backends.mlp import ADAM_BETAS, ADAM_EPS, Grads

if TYPE_CHECKING:
    from dropout_lab.backends.torch_backend import TorchNetwork


def foreach_optimizer_step(net: TorchNetwork, grads: Grads[torch.Tensor]) -> None:
    """One optimizer step of every parameter of ``net`` (step counter ``net.t`` already
    advanced), reading the current ``net.lr`` and ``net.momentum``."""
    opt, wd, lr = net.train.optimizer, net.train.weight_decay, net.lr
    params = net.W + net.b
    gs = [g for g, _ in grads] + [g for _, g in grads]
    L = net.n_layers
    # the moments of W and b (concrete dropout's theta, parameter 2L, steps after them)
    m, v = net._m[: 2 * L], net._v[: 2 * L]
    if wd:  # g <- g + wd W: the gradient of (wd/2)|W|^2, never of the biases
        torch._foreach_add_(gs[:L], net.W, alpha=wd)
    if opt == "sgd":
        torch._foreach_add_(params, gs, alpha=-lr)  # W <- W - lr g
    elif opt == "momentum":
        torch._foreach_mul_(m, net.momentum)
        torch._foreach_add_(m, gs)  # v <- mu v + g
        torch._foreach_add_(params, m, alpha=-lr)  # W <- W - lr v
    else:
        b1, b2 = ADAM_BETAS
        c1 = 1.0 - b1**net.t
        c2_sqrt = (1.0 - b2**net.t) ** 0.5
        torch._foreach_mul_(m, b1)
        torch._foreach_add_(m, gs, alpha=1 - b1)  # m <- b1 m + (1 - b1) g
        torch._foreach_mul_(v, b2)
        torch._foreach_addcmul_(v, gs, gs, value=1 - b2)  # v <- b2 v + (1 - b2) g^2
        denom = torch._foreach_sqrt(v)
        torch._foreach_div_(denom, c2_sqrt)
        torch._foreach_add_(denom, ADAM_EPS)  # sqrt(v / (1 - b2^t)) + eps
        # W <- W - lr/(1 - b1^t) * m / denom
        torch._foreach_addcdiv_(params, m, denom, value=-lr / c1)
    net._update_logits()  # concrete dropout's theta: MLP._update, the same formulas
