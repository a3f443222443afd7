"""Autoencoder pretraining for Deep SVDD / Deep SAD, and the transfer of the encoder into the network.

The autoencoder (a Deep SAD network as encoder, its mirrored decoder) is trained on squared reconstruction error
with Adam and its own learning rate, epochs, milestones and weight decay, by the same trainer as every other
objective. The loss is the Deep SAD seed's (``ae_trainer.py``: ``MSELoss(reduction='none')`` then the mean): the
squared error averaged over pixels and samples. (Summed over the 784 pixels of a Fashion-MNIST image instead, the
gradients are 784 times larger and Adam's weight decay of 5e-4 is, relative to them, 784 times weaker.) Its encoder then initialises the Deep SAD / Deep SVDD network, and the centre c is the mean output
of that initialised network on the training data (the trainer computes it when c is not set).

The transfer is a strict ``load_state_dict`` of the encoder's own state dict: every tensor (weights and the
BatchNorm running statistics) is copied, and a missing or extra key is an error. The Deep SAD seed filters the
autoencoder's state dict by the network's keys instead; its autoencoder keeps the encoder under an ``encoder.``
prefix, so no key matches and the network silently keeps its random initialisation. :func:`seed_transfer`
reproduces that filter, so the test suite can show both behaviours; ``SADConfig.transfer`` chooses between them
("full": the strict copy, "seed": what the seed's code does, i.e. nothing).
"""
from __future__ import annotations

import torch
from torch import nn

from .nets import AutoEncoder
from .objectives import Objective
from .train import TrainLog, pick_device, train


REDUCTIONS = ("mean", "sum")


class ReconstructionError(nn.Module):
    """Wraps an autoencoder so the one trainer trains it: ``forward(x)`` is the per-sample squared reconstruction
    error, averaged over features (``reduction="mean"``: MSE, the Deep SAD and CLAD seeds) or summed
    (``"sum"``). Every caller names its reduction: the two differ by the number of features, which changes how
    strongly weight decay acts, not only the loss's scale."""

    def __init__(self, ae: nn.Module, *, reduction: str):
        super().__init__()
        if reduction not in REDUCTIONS:
            raise ValueError(f"unknown reduction {reduction!r}; choose one of {', '.join(map(repr, REDUCTIONS))}")
        self.ae, self.reduction = ae, reduction

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        err = (self.ae(x) - x).pow(2).flatten(1)
        return err.sum(1) if self.reduction == "sum" else err.mean(1)


class Reconstruction(Objective):
    """The batch mean of the per-sample reconstruction errors of :class:`ReconstructionError`; the score is the
    sample's error."""

    name = "reconstruction"

    def loss(self, outputs, targets):
        return outputs.mean()

    def score(self, outputs):
        return outputs


def pretrain(ae: AutoEncoder, x: torch.Tensor, *, epochs: int = 150, lr: float = 1e-4,
             milestones: tuple[int, ...] = (), weight_decay: float = 5e-4, batch_size: int = 128,
             device: str | torch.device | None = None, seed: int | None = None, progress: bool = False,
             reduction: str = "mean") -> TrainLog:
    """Train ``ae`` in place to reconstruct ``x`` (float inputs, already preprocessed). ``reduction``: the
    per-sample error averaged over features (the Deep SAD seed's MSE) or summed (see :class:`ReconstructionError`)."""
    return train(ReconstructionError(ae, reduction=reduction), Reconstruction(), x, epochs=epochs, lr=lr,
                 milestones=milestones, weight_decay=weight_decay, batch_size=batch_size, device=device, seed=seed,
                 progress=progress)


def init_from_pretrained(net: nn.Module, ae: AutoEncoder) -> list[str]:
    """Copy every tensor of ``ae.encoder`` into ``net`` (strict: the key sets must be equal); returns the keys."""
    state = ae.encoder.state_dict()
    net.load_state_dict(state, strict=True)
    return list(state)


def seed_transfer(net: nn.Module, ae: nn.Module) -> list[str]:
    """The Deep SAD seed's ``init_network_weights_from_pretraining``: keep the autoencoder entries whose key is
    also a key of the network, load them, return them. With ``AutoEncoder``'s ``encoder.`` prefix: none."""
    net_dict = net.state_dict()
    ae_dict = {k: v for k, v in ae.state_dict().items() if k in net_dict}
    net_dict.update(ae_dict)
    net.load_state_dict(net_dict)
    return list(ae_dict)


@torch.no_grad()
def encode(encoder: nn.Module, x: torch.Tensor, device: str | torch.device | None = None,
           batch_size: int = 1024) -> torch.Tensor:
    """Codes of ``x`` under ``encoder`` in eval mode, on the CPU (for the hybrid baselines)."""
    device = pick_device(device)
    encoder.to(device).eval()
    return torch.cat([encoder(x[i:i + batch_size].to(device)).cpu() for i in range(0, len(x), batch_size)])
