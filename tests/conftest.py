import pytest
import torch


def bars(n: int, vertical: bool, seed: int) -> torch.Tensor:
    """1x28x28 uint8 images: a bright 3-px bar (horizontal or vertical) at a random position, plus noise."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 60, (n, 1, 28, 28), generator=g)
    pos = torch.randint(2, 24, (n,), generator=g)
    for i, p in enumerate(pos.tolist()):
        if vertical:
            x[i, 0, :, p:p + 3] = 230
        else:
            x[i, 0, p:p + 3, :] = 230
    return x.to(torch.uint8)


@pytest.fixture(scope="session")
def toy():
    """A separable toy AD task: normal = horizontal bars, anomalies = vertical bars (other draws),
    OE = vertical bars and uniform noise."""
    g = torch.Generator().manual_seed(99)
    oe = torch.cat([bars(256, True, 11), (torch.rand(256, 1, 28, 28, generator=g) * 255).to(torch.uint8)])
    test_x = torch.cat([bars(100, False, 2), bars(100, True, 3)])
    test_y = torch.cat([torch.zeros(100), torch.ones(100)]).long()
    return {"train": bars(384, False, 1), "oe": oe, "test_x": test_x, "test_y": test_y}
