"""The randomized SVD of a cluster's S_j, run as passes of linear sums.

S_j = G_j + D_j^{-1} Σ_i p_ij diag(m_i) B_i A_i is never formed. The plan
(Halko–Martinsson–Tropp, exactly torch.svd_lowrank's sequence) needs only two
products with S_j, each linear in every client's factors:

- ``Op.LEFT``  S X   (X: in x q):  client sends diag(m_i) B_i (A_i X)           (out x q)
- ``Op.RIGHT`` S^T Y (Y: out x q): client sends A_i^T B_i^T diag(m_i) D^{-1} Y   (in x q)

and the server only ever needs Σ_i p_ij (client vector): a SecureSum. The
server adds G_j's part and the D^{-1} scaling itself. For a wide S (out < in),
torch transposes; so does the plan (roles of LEFT and RIGHT swap), and since
RIGHT needs D first, a wide layer starts one pass later than a tall one.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import torch

__all__ = ["Op", "LayerPlan", "plan_layer", "omega", "client_product", "inverse_counts"]


class Op(enum.Enum):
    LEFT = "L"
    RIGHT = "R"


def omega(seed: int, n: int, q: int) -> torch.Tensor:
    """The public Gaussian test matrix: torch.randn(n, q) after manual_seed(seed)."""
    return torch.randn(n, q, generator=torch.Generator().manual_seed(seed))


def inverse_counts(counts: torch.Tensor) -> torch.Tensor:
    """D^{-1} with rows that nobody holds left at 0."""
    return torch.where(counts > 0, 1.0 / counts.clamp_min(1e-30), torch.zeros_like(counts))


def client_product(op: Op, B: torch.Tensor, A: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
    """A client's contribution to one product; ``B`` has its unkept rows already zero.

    For RIGHT, ``X`` is D^{-1} Y (the server applies the row scaling first).
    """
    if op is Op.LEFT:
        return B @ (A @ X)
    return A.T @ (B.T @ X)


@dataclass(slots=True, kw_only=True)
class LayerPlan:
    """The state of one layer's randomized SVD for one cluster."""

    out: int
    inp: int
    q: int
    niter: int
    G: torch.Tensor | None  # out x in, the cluster's accumulated update (None = 0)
    counts: torch.Tensor | None = None  # out, Σ_i p_ij m_i
    Q: torch.Tensor | None = None
    step: int = 0
    pending: tuple[Op, torch.Tensor] | None = None
    result: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = field(default=None)

    @property
    def tall(self) -> bool:
        return self.out >= self.inp

    @property
    def ops(self) -> list[Op]:
        first, second = (Op.LEFT, Op.RIGHT) if self.tall else (Op.RIGHT, Op.LEFT)
        return [first] + [second, first] * self.niter + [second]

    @property
    def offset(self) -> int:
        """Pass at which this layer's first product is asked for."""
        return 0 if self.tall else 1

    @property
    def num_passes(self) -> int:
        return self.offset + len(self.ops)

    def op_at(self, pass_idx: int) -> Op | None:
        k = pass_idx - self.offset
        return self.ops[k] if 0 <= k < len(self.ops) and k == self.step else None

    def request(self, pass_idx: int, omega_seed: int) -> tuple[Op, torch.Tensor] | None:
        """What the clients multiply by at this pass (None: nothing for this layer).

        For RIGHT the matrix sent is D^{-1} X; the plan keeps X for G's part.
        """
        op = self.op_at(pass_idx)
        if op is None:
            return None
        if self.step == 0:
            X = omega(omega_seed, self.inp if self.tall else self.out, self.q)
        else:
            assert self.Q is not None
            X = self.Q
        self.pending = (op, X)
        if op is Op.RIGHT:
            assert self.counts is not None, "counts arrive with pass 0"
            return op, inverse_counts(self.counts).unsqueeze(1) * X
        return op, X

    def absorb(self, summed: torch.Tensor) -> None:
        """Fold Σ_i p_ij (client product) for the pending request into the plan."""
        assert self.pending is not None, "absorb without a request"
        op, X = self.pending
        self.pending = None
        if op is Op.LEFT:
            assert self.counts is not None
            Y = inverse_counts(self.counts).unsqueeze(1) * summed
            if self.G is not None:
                Y = Y + self.G @ X
        else:
            Y = summed if self.G is None else summed + self.G.T @ X
        self.step += 1
        if self.step < len(self.ops):
            self.Q = torch.linalg.qr(Y).Q
            return
        Z = Y.T  # Q^T S (tall) or Q^T S^T (wide)
        U, S, Vh = torch.linalg.svd(Z, full_matrices=False)
        left = self.Q @ U
        right = Vh.T
        self.result = (left, S, right) if self.tall else (right, S, left)

    def factors(self, r: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Rank-r (B, A) = (U_r diag(s_r), V_r^T), the reference code's convention."""
        assert self.result is not None, "plan not finished"
        U, S, V = self.result
        return U[:, :r] * S[:r], V[:, :r].T


def plan_layer(*, out: int, inp: int, q: int, niter: int, G: torch.Tensor | None) -> LayerPlan:
    if q > min(out, inp):
        q = min(out, inp)
    return LayerPlan(out=out, inp=inp, q=q, niter=niter, G=G)
