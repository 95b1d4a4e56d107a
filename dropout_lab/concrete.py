"""Concrete dropout (Gal, Hron and Kendall 2017, "Concrete Dropout", NeurIPS): a drop
probability learned per unit layer, as formulas in NumPy (the reference; the torch backend
gets the same numbers by autograd, and the conformance suite holds the two together).

A unit layer l (0 = the input, 1..H the hidden layers) that feeds weight matrix W_l (K_l =
its width, the input dimension of W_l) has a learned logit theta_l, its drop probability

    p_l = sigmoid(theta_l)                      (so log p - log(1 - p) = theta_l exactly)

Training noise, per unit and example, from u ~ U[0, 1) (drawn through the ``uniform``
primitive of the variant registry, host or device):

    s = log(u + eps) - log(1 - u + eps)         (logistic noise; eps = 1e-7 as their code)
    z = sigmoid((theta_l + s) / t)              (the relaxed DROP indicator, temperature t)
    r = (1 - z) / (1 - p_l)                     (a_l = h_l * r: inverted scaling, E[r] ~ 1)

As t -> 0, z -> 1[u > 1 - p_l]: a unit is dropped with probability p_l exactly (at u = 1/2,
s = 0 and z = sigmoid(theta_l / t): z > 1/2 iff p_l > 1/2). Nothing is dropped at test time.

Its derivative with respect to the logit (dz/dtheta = z (1 - z) / t, dp/dtheta = p (1 - p)):

    dr/dtheta = r (p - z / t)
    dL/dtheta_l (data) = sum_{n,k} (dL/da_l)[n,k] * a_l[n,k] * (p_l - z[n,k] / t)

The regulariser added to the mean cross-entropy, per learned layer (the paper's KL term as
their reference code writes it, yaringal/ConcreteDropout, concrete-dropout-keras.ipynb):

    R_l = wr * |W_l|^2 / (1 - p_l)  +  dr * K_l * (p_l log p_l + (1 - p_l) log(1 - p_l))

The second term is minus dr K_l times the entropy H(p_l): adding it to the loss SUBTRACTS
the entropy, which rewards p near 1/2; the first makes weights behind a high drop rate cost
more. Its gradients:

    dR_l/dW_l = 2 wr W_l / (1 - p_l)
    dR_l/dtheta_l = wr |W_l|^2 p_l / (1 - p_l)  +  dr K_l theta_l p_l (1 - p_l)

(d/dp [p log p + (1 - p) log(1 - p)] = log p - log(1 - p) = theta.) Only W_l of a learned
layer is penalised (not the biases, as their code), so without input dropout W_0 has no
weight term (use train.weight_decay for that).

Defaults, derived as the paper's code derives them for N training examples and a prior
length-scale l: their weight_regularizer = l^2 / (tau N) and dropout_regularizer =
2 / (tau N) are for a Euclidean loss with model precision tau, and their note says the
factor 2 goes for a cross-entropy loss. Keeping their ratio wr / dr = l^2 / 2 (the KL term
(l^2 (1 - p) / 2) |M|^2 - K H(p), divided by N, with W = (1 - p) M under inverted scaling):

    wr = l^2 / (2 N),   dr = 1 / N,   l = 1e-4 and t = 0.1 by default (their notebook's).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

EPS = 1e-7  # inside the logs of the logistic noise, as the paper's code (K.epsilon())
DEFAULT_TEMPERATURE = 0.1
DEFAULT_LENGTH_SCALE = 1e-4


@dataclass(frozen=True)
class ConcreteSpec:
    """What a network needs to learn p: per unit layer (input, hidden...) whether its p is
    learned and where it starts, the temperature and the two regulariser weights."""

    learned: tuple[bool, ...]
    init_p: tuple[float, ...]
    temperature: float = DEFAULT_TEMPERATURE
    weight_regularizer: float = 0.0
    dropout_regularizer: float = 0.0

    def init_logits(self) -> np.ndarray:
        """theta_l = log p - log(1 - p) of each unit layer's initial p (0 where not learned)."""
        return np.array([np.log(p) - np.log1p(-p) if on else 0.0
                         for p, on in zip(self.init_p, self.learned, strict=True)])


def regularizer_weights(n_train: int, length_scale: float = DEFAULT_LENGTH_SCALE
                        ) -> tuple[float, float]:
    """(wr, dr) = (l^2 / (2 N), 1 / N): the defaults for a mean cross-entropy loss."""
    return length_scale**2 / (2.0 * n_train), 1.0 / n_train


def probability(theta: np.ndarray | float) -> np.ndarray:
    """p = sigmoid(theta), in float64."""
    out: np.ndarray = 1.0 / (1.0 + np.exp(-np.asarray(theta, dtype=np.float64)))
    return out


def _sigmoid_(x: np.ndarray) -> np.ndarray:
    """sigmoid(x) in place, without overflow: exp(-|x|) never exceeds 1."""
    e = np.exp(-np.abs(x))
    pos = x >= 0
    np.divide(1.0, 1.0 + e, out=x, where=pos)
    np.divide(e, 1.0 + e, out=x, where=~pos)
    return x


def relax(u: np.ndarray, theta: float, temperature: float) -> tuple[np.ndarray, np.ndarray]:
    """(r, z) of one layer from its uniforms u (in u's dtype): z = sigmoid((theta + s) / t)
    with s = log(u + eps) - log(1 - u + eps), and r = (1 - z) / (1 - p)."""
    dt = u.dtype.type
    z = np.log(u + dt(EPS)) - np.log(dt(1.0) - u + dt(EPS))  # s
    z += dt(theta)
    z *= dt(1.0 / temperature)
    _sigmoid_(z)
    p = float(probability(theta))
    r = dt(1.0) - z
    r *= dt(1.0 / (1.0 - p))
    return r, z


def logit_grad(g_a: np.ndarray, a: np.ndarray, z: np.ndarray, theta: float,
               temperature: float) -> float:
    """The data term of dL/dtheta: sum (dL/da) * a * (p - z / t), in float64."""
    p = float(probability(theta))
    w = np.multiply(g_a, a, dtype=np.float64)
    return float(np.sum(w * p) - np.sum(w * z) / temperature)


def penalty(w_sq: float, theta: float, width: int, wr: float, dr: float) -> float:
    """R_l = wr |W_l|^2 / (1 - p) + dr K (p log p + (1 - p) log(1 - p)), with |W_l|^2 =
    ``w_sq`` and K = ``width``."""
    p = float(probability(theta))
    neg_entropy = p * np.log(p) + (1.0 - p) * np.log1p(-p)
    return float(wr * w_sq / (1.0 - p) + dr * width * neg_entropy)


def penalty_logit_grad(w_sq: float, theta: float, width: int, wr: float, dr: float) -> float:
    """dR_l/dtheta = wr |W_l|^2 p / (1 - p) + dr K theta p (1 - p)."""
    p = float(probability(theta))
    return float(wr * w_sq * p / (1.0 - p) + dr * width * theta * p * (1.0 - p))
