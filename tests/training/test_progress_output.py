"""Training's progress bars go to a terminal only: in a log file or a pipe they are thousands of
carriage-return lines (the demo's log once held 3,090), and the per-epoch line says enough."""

from __future__ import annotations

import torch
from torch import nn

from training.engine import train_one_epoch


class _Tiny(nn.Module):
    """The smallest model with the ``(images, mask)`` call of the real nets."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(4, 1)

    def forward(self, images: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.linear(images.flatten(1))


def test_an_epoch_draws_no_bar_when_stderr_is_not_a_terminal(capsys):
    model = _Tiny()
    optimiser = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda step: 1.0)
    batches = [{"image": torch.rand(2, 4), "mask": torch.ones(2, 4), "target": torch.tensor([0.0, 1.0])}] * 3
    loss, complete = train_one_epoch(model, batches, nn.BCEWithLogitsLoss(), optimiser, scheduler,
                                     torch.amp.GradScaler("cpu", enabled=False), torch.device("cpu"), show=True)
    assert complete and loss > 0
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""
