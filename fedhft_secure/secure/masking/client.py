"""The client side of a masking session: a pure state machine (bytes in, bytes out).

Its secrets are shared among its neighbours and itself (h = k + 1 holders, as
in SecAgg and Flower's SecAgg+): it keeps its own share, which never travels
in the share stage, and reveals only the self-mask part of it, only when the
server says it survived — then its self mask is removed anyway. Its own share
of the mask key is never kept: it would be needed only if it had dropped, and
a dropped client answers nothing.

Rules it enforces, whatever the server asks:
- it reveals, per pass slot and peer, the mask-key share (peer dropped) or the
  self-mask share (peer survived), never both; for itself, only the self-mask
  share, when listed as a survivor;
- a peer it has once been told is dropped is never treated as alive again in
  the session (the FedHFT round restarts its plan without that peer);
- signed key adverts are checked against the consortium roster when one is set;
- with signed keys (the semi-malicious threat model) it signs one survivor list
  per pass slot and unmasks only for that list, countersigned by at least t
  survivors: a server cannot tell different clients different dropout stories.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch

from ...crypto.aead import associated_data, open_share, seal_share
from ...crypto.encoding import MODULUS_BITS, FixedPoint
from ...crypto.kex import KeyPair, agree, hkdf
from ...crypto.packing import pack
from ...crypto.shamir import PRIME, SHARE_BYTES, split
from ...crypto.sign import IdentityKey, verify
from ...exceptions import MalformedMessage, PolicyViolation, ReplayedMessage, ShapeMismatch, WrongRound
from ...wire import SERVER, decode, encode, kind_of
from ..api import ClientSession, Contribution, Expected, Tensors
from ..noise import DistributedNoise
from .masks import flatten, layout, pair_seed, self_seed, stream, support
from .messages import (NEXT, ForwardedShares, KeyAdvert, KeyDirectory, KeySetup, SharesHeld, ShareBundle, Stage,
                       SurvivorList, SurvivorSignature, UnmaskReply, UnmaskRequest)
from .params import THREATS, neighbour_graph

__all__ = ["MaskingClient", "advert_message", "survivor_message", "channel_key"]

KEY_BYTES = 32


def advert_message(round: int, epoch: int, me: int, enc: bytes, masks: Sequence[bytes]) -> bytes:
    """What an identity key signs: binds the advertised keys to who, which round and epoch."""
    return b"fedhft-secure/advert" + struct.pack("<III", round, epoch, me) + enc + b"".join(masks)


def survivor_message(round: int, epoch: int, slot: int, survivors: Sequence[int]) -> bytes:
    """What a survivor signs in the consistency check: the one survivor list of this pass slot."""
    return (b"fedhft-secure/survivors" + struct.pack("<III", round, epoch, slot)
            + struct.pack(f"<{len(survivors)}I", *sorted(survivors)))


def channel_key(secret: KeyPair, peer_enc: bytes, round: int, epoch: int) -> bytes:
    return hkdf(agree(secret.secret, peer_enc), b"fedhft-secure/share-channel" + struct.pack("<II", round, epoch))


def _u8(b: bytes) -> torch.Tensor:
    return torch.frombuffer(bytearray(b), dtype=torch.uint8) if b else torch.zeros(0, dtype=torch.uint8)


class MaskingClient(ClientSession):
    def __init__(self, me: int, *, round: int, identity: IdentityKey | None = None,
                 roster: Mapping[int, bytes] | None = None, max_bytes: int = 64 * 2**20,
                 entropy: Callable[[int], bytes] = os.urandom,
                 rows: Mapping[str, np.ndarray] | None = None, noise: DistributedNoise | None = None,
                 threat: str = "honest-but-curious") -> None:
        """``entropy`` gives every secret (keys, seeds, Shamir coefficients, nonces, rounding);
        the OS by default — a deterministic source only for known-answer vectors.
        ``noise``: distributed DP (privacy.distributed_noise), None = off.
        ``threat``: the client's own threat model; it refuses a key set-up whose threshold is too
        small for it (the server chooses t, so a client that took any t would trust the server)."""
        self.noise = noise
        self.min_fraction = THREATS[threat]
        self.me, self.round = me, round
        self.identity, self.roster = identity, roster
        self.max_bytes = max_bytes
        self.entropy = entropy
        self.rows = None if rows is None else {k: np.asarray(v, dtype=bool) for k, v in rows.items()}
        # stochastic rounding: unpredictable, never a key
        self.rng = np.random.default_rng(int.from_bytes(entropy(16), "big"))
        self.stage = Stage.IDLE
        self.epoch = -1

    # -- dispatch -----------------------------------------------------------------------
    def handle(self, blob: bytes) -> bytes:
        kind = kind_of(blob)
        for cls, fn in ((KeySetup, self._setup), (KeyDirectory, self._directory),
                        (ForwardedShares, self._forwarded), (SurvivorList, self._sign_survivors),
                        (UnmaskRequest, self._unmask)):
            if kind == cls.KIND:
                msg = decode(blob, cls, round=self.round, sender=SERVER, max_bytes=self.max_bytes)
                fresh = cls is KeySetup and msg.epoch > self.epoch  # a restart opens a new epoch
                if not fresh and msg.epoch != self.epoch:
                    raise WrongRound(f"epoch {msg.epoch}, session is at epoch {self.epoch}", sender=SERVER)
                step = NEXT.get((cls.__name__, Stage.IDLE if fresh else self.stage))
                if step is None:
                    raise WrongRound(f"{cls.__name__} in stage {self.stage.value}", sender=SERVER)
                out = fn(msg)
                self.stage = step
                return encode(out, self.max_bytes)
        raise MalformedMessage(f"message kind {kind} is not part of the masking session", sender=SERVER)

    # -- stages -------------------------------------------------------------------------
    def _setup(self, m: KeySetup) -> KeyAdvert:
        if self.me not in m.cohort or len(m.participation) != len(m.cohort) or m.slots < 1:
            raise MalformedMessage("key set-up does not include this client consistently", sender=SERVER)
        if m.bits not in MODULUS_BITS:
            raise MalformedMessage(f"key set-up asks for sums mod 2^{m.bits}, outside 2^{MODULUS_BITS.start}.."
                                   f"2^{MODULUS_BITS.stop - 1}", sender=SERVER)
        neighbours = neighbour_graph(list(m.cohort), m.degree, m.graph_seed)[self.me]
        h = len(neighbours) + 1  # share holders: the neighbours and this client
        if not self.min_fraction * h < m.threshold <= h:
            raise MalformedMessage(f"key set-up asks for threshold {m.threshold} of {h} share holders; this "
                                   f"client needs more than {self.min_fraction * h:g} and at most {h}", sender=SERVER)
        self.epoch, self.setup, self.neighbours = m.epoch, m, neighbours
        self.part = {c: set(p) for c, p in zip(m.cohort, m.participation)}
        self.codec = FixedPoint(n=max(1, max(sum(j in p for p in self.part.values()) for j in range(m.clusters))),
                                clip=m.clip, bits=m.bits)
        self.enc = KeyPair.from_secret(self.entropy(KEY_BYTES))
        self.masks = [KeyPair.from_secret(self.entropy(KEY_BYTES)) for _ in range(m.slots)]
        self.selfs = [self.entropy(KEY_BYTES) for _ in range(m.slots)]
        self.peer_mask: dict[int, list[bytes]] = {}
        self.peer_rows: dict[int, dict[str, np.ndarray]] = {}
        self.channel: dict[int, bytes] = {}
        self.held: dict[int, tuple[list[bytes], list[bytes]]] = {}
        self.own_b: list[bytes] = []  # per slot: this client's own share of its self-mask seed
        self.revealed: dict[tuple[int, int], str] = {}
        self.declared_dropped: set[int] = set()
        self.signed: dict[int, tuple[int, ...]] = {}  # slot -> the survivor list this client signed
        self.unmasked: set[int] = set()  # slots whose unmask request was answered (once each)
        mask_pubs = [k.public for k in self.masks]
        sig = self.identity.sign(advert_message(self.round, m.epoch, self.me, self.enc.public, mask_pubs)) \
            if self.identity else b""
        keys = {"enc": _u8(self.enc.public), "mask": _u8(b"".join(mask_pubs)), "sig": _u8(sig)}
        if self.rows is not None:  # reveal-rows: the kept-row sets are announced (and leak)
            keys.update({f"rows/{k}": torch.from_numpy(v.copy()) for k, v in self.rows.items()})
        return KeyAdvert(round=self.round, sender=self.me, epoch=m.epoch, keys=keys)

    def _directory(self, m: KeyDirectory) -> ShareBundle:
        slots, t = self.setup.slots, self.setup.threshold
        # holders: the neighbours and this client (point me + 1); t of the k + 1 shares open a secret
        xs = [self.me + 1] + [v + 1 for v in self.neighbours]
        s_shares = [split(k.secret_bytes(), t, xs, self._coeffs(t)) for k in self.masks]
        b_shares = [split(b, t, xs, self._coeffs(t)) for b in self.selfs]
        # own share: kept here, never sent; the mask-key one is dropped at once (see the module docstring)
        self.own_b = [b_shares[p][self.me + 1] for p in range(slots)]
        out: Tensors = {}
        for v in self.neighbours:
            try:
                enc = bytes(m.peers[f"{v}/enc"].numpy())
                mask = bytes(m.peers[f"{v}/mask"].numpy())
                sig = bytes(m.peers[f"{v}/sig"].numpy())
            except KeyError:
                continue  # v dropped before advertising: no masks with v
            if len(enc) != KEY_BYTES or len(mask) != KEY_BYTES * slots:
                raise ShapeMismatch(f"keys of client {v} have the wrong size", sender=SERVER)
            masks = [mask[i * KEY_BYTES:(i + 1) * KEY_BYTES] for i in range(slots)]
            if self.roster is not None:
                if v not in self.roster:
                    raise PolicyViolation(f"client {v} is not in the consortium roster", sender=SERVER)
                verify(self.roster[v], sig, advert_message(self.round, self.epoch, v, enc, masks))
            self.peer_mask[v] = masks
            if self.rows is not None:
                self.peer_rows[v] = {k: m.peers[f"{v}/rows/{k}"].numpy().astype(bool) for k in self.rows
                                     if f"{v}/rows/{k}" in m.peers}
            self.channel[v] = channel_key(self.enc, enc, self.round, self.epoch)
            plain = b"".join(s_shares[p][v + 1] for p in range(slots)) + b"".join(b_shares[p][v + 1]
                                                                               for p in range(slots))
            ad = associated_data(self.me, v, self.round, self.epoch, b"fedhft-share")
            out[str(v)] = _u8(seal_share(self.channel[v], plain, ad, nonce=self.entropy(12)))
        return ShareBundle(round=self.round, sender=self.me, epoch=self.epoch, shares=out)

    def _coeffs(self, t: int) -> list[int]:
        return [int.from_bytes(self.entropy(SHARE_BYTES + 16), "big") % PRIME for _ in range(t - 1)]

    def _forwarded(self, m: ForwardedShares) -> SharesHeld:
        slots = self.setup.slots
        self.withheld = {k[len("withheld/"):]: t.numpy().astype(bool) for k, t in m.shares.items()
                         if k.startswith("withheld/")}
        for key, blob in m.shares.items():
            if key.startswith("withheld/"):
                continue
            try:
                u = int(key)
            except ValueError:
                raise MalformedMessage(f"share from {key!r}", sender=SERVER) from None
            if u not in self.channel:
                continue  # not a neighbour with keys: ignore
            ad = associated_data(u, self.me, self.round, self.epoch, b"fedhft-share")
            plain = open_share(self.channel[u], bytes(blob.numpy()), ad)
            if len(plain) != 2 * slots * SHARE_BYTES:
                raise MalformedMessage(f"shares from {u} have the wrong length", sender=SERVER)
            cut = [plain[i * SHARE_BYTES:(i + 1) * SHARE_BYTES] for i in range(2 * slots)]
            self.held[u] = (cut[:slots], cut[slots:])
        return SharesHeld(round=self.round, sender=self.me, epoch=self.epoch, holders=sorted(self.held))

    def _sign_survivors(self, m: SurvivorList) -> SurvivorSignature:
        if self.identity is None:
            raise WrongRound("a consistency check in a session without signed keys", sender=SERVER)
        if not 0 <= m.slot < self.setup.slots:
            raise MalformedMessage(f"slot {m.slot} out of range", sender=SERVER)
        survivors = tuple(sorted(set(m.survivors)))
        if len(survivors) != len(m.survivors) or not set(survivors) <= set(self.setup.cohort):
            raise MalformedMessage("survivor list repeats clients or names clients outside the cohort",
                                   sender=SERVER)
        if self.me not in survivors:
            raise PolicyViolation("survivor list leaves out this client, which sent its masked input",
                                  sender=SERVER)
        if m.slot in self.signed:
            if self.signed[m.slot] != survivors:
                raise PolicyViolation(f"a second, different survivor list for slot {m.slot}", sender=SERVER)
            raise ReplayedMessage(f"the survivor list of slot {m.slot} was already signed", sender=SERVER)
        self.signed[m.slot] = survivors
        sig = self.identity.sign(survivor_message(self.round, self.epoch, m.slot, survivors))
        return SurvivorSignature(round=self.round, pass_idx=m.pass_idx, sender=self.me, epoch=self.epoch,
                                 sig={"sig": _u8(sig)})

    def _check_consistency(self, m: UnmaskRequest) -> None:
        """With signed keys: unmask only for the list this client signed, countersigned by >= t survivors."""
        if self.identity is None or self.roster is None:
            return
        survivors = tuple(sorted(set(m.survivors)))
        if self.signed.get(m.slot) != survivors:
            raise PolicyViolation(f"unmask request for survivors {list(survivors)}, not the list this client "
                                  f"signed for slot {m.slot}", sender=SERVER)
        text = survivor_message(self.round, self.epoch, m.slot, survivors)
        valid = set()
        for key, sig in m.signatures.items():
            v = int(key) if key.isdigit() else -1
            if v in survivors and v in self.roster:
                try:
                    verify(self.roster[v], bytes(sig.numpy()), text)
                except MalformedMessage:
                    continue  # a forged signature counts for nothing
                valid.add(v)
        if len(valid) < self.setup.threshold:
            raise PolicyViolation(f"{len(valid)} valid signatures of the survivor list, "
                                  f"{self.setup.threshold} needed", sender=SERVER)

    def _unmask(self, m: UnmaskRequest) -> UnmaskReply:
        if not 0 <= m.slot < self.setup.slots:
            raise MalformedMessage(f"slot {m.slot} out of range", sender=SERVER)
        if m.slot in self.unmasked:
            raise ReplayedMessage(f"slot {m.slot} was already unmasked", sender=SERVER)
        self._check_consistency(m)
        dropped, alive = set(m.dropped), set(m.survivors)
        if dropped & alive:
            raise PolicyViolation(f"clients {sorted(dropped & alive)} listed as dropped and alive", sender=SERVER)
        if alive & self.declared_dropped:
            raise PolicyViolation(f"clients {sorted(alive & self.declared_dropped)} were declared dropped "
                                  "earlier in this session", sender=SERVER)
        out: Tensors = {}
        for u, (s_sh, b_sh) in self.held.items():
            kind = "s" if u in dropped else "b" if u in alive else None
            if kind is None:
                continue
            if self.revealed.setdefault((m.slot, u), kind) != kind:
                raise PolicyViolation(f"asked for both shares of client {u} at slot {m.slot}", sender=SERVER)
            out[f"{kind}/{u}"] = _u8((s_sh if kind == "s" else b_sh)[m.slot])
        if self.me in alive:  # its own self-mask share, beside its neighbours'; never its mask-key share
            self.revealed[(m.slot, self.me)] = "b"
            out[f"b/{self.me}"] = _u8(self.own_b[m.slot])
        self.declared_dropped |= dropped
        self.unmasked.add(m.slot)
        return UnmaskReply(round=self.round, pass_idx=m.pass_idx, sender=self.me, epoch=self.epoch, shares=out)

    # -- the masked input -----------------------------------------------------------------
    def payload(self, contribution: Contribution, *, slot: int, weights: Sequence[float],
                expected: Expected) -> Tensors:
        if self.stage is not Stage.READY:
            raise WrongRound(f"masked input asked in stage {self.stage.value}", sender=SERVER)
        order = layout(expected)
        mine = self._support(order, expected, self.me)
        # reveal-rows: a pairwise mask covers only the positions both neighbours send
        shared_with = {v: self._support(order, expected, v) for v in self.held} if self.rows is not None else {}
        out: Tensors = {}
        for j in sorted(self.part[self.me]):
            w = float(weights[j])
            own = contribution.per_cluster.get(j, {})
            vec = w * flatten(contribution.shared, own, order) if w > 0 else np.zeros(expected.size())
            # -- distributed DP (privacy.distributed_noise): the one call site; see secure/noise.py --
            if self.noise is None:
                y = self.codec.encode(vec, self.rng.random(vec.shape))
            else:
                y = self.noise.encode(self.codec, vec, self.rng.random(vec.shape), cluster=j,
                                      cohort=sum(j in p for p in self.part.values()))
            # -- end distributed DP --
            y = y + stream(self_seed(self.selfs[slot], self.round, self.epoch, slot, j), y.size, self.codec.bits)
            for v in self.held:
                if v in self.peer_mask and j in self.part.get(v, ()):
                    seed = pair_seed(agree(self.masks[slot].secret, self.peer_mask[v][slot]), self.round,
                                     self.epoch, slot, j)
                    pm = stream(seed, y.size, self.codec.bits)
                    if v in shared_with:
                        pm = np.where(shared_with[v], pm, 0).astype(pm.dtype)
                    y = y + pm if self.me < v else y - pm
            # bit-packed: ceil(d·bits/8) bytes (crypto/packing.py; the frame format is in protocols/secagg.md)
            out[f"c{j}"] = torch.from_numpy(pack(self.codec.reduce(y[mine]), self.codec.bits))
        return out

    def _support(self, order, expected: Expected, who: int) -> np.ndarray:  # noqa: ANN001
        if self.rows is None:
            return support(order, expected.row_layers, None)
        rows = self.rows if who == self.me else self.peer_rows.get(who, {})
        held = {k: rows.get(k, np.zeros_like(w)) & ~w for k, w in self.withheld.items()}
        return support(order, expected.row_layers, held)
