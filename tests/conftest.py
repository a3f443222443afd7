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


@pytest.fixture
def one_thread():
    """One torch thread, for the modules of tiny models (``pytestmark = pytest.mark.usefixtures("one_thread")``):
    they run fastest so, much faster when other processes share the cores, and a Ray task with one CPU computes
    the same way."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="session")
def toy():
    """A separable toy AD task: normal = horizontal bars, anomalies = vertical bars (other draws),
    OE = vertical bars and uniform noise."""
    g = torch.Generator().manual_seed(99)
    oe = torch.cat([bars(256, True, 11), (torch.rand(256, 1, 28, 28, generator=g) * 255).to(torch.uint8)])
    test_x = torch.cat([bars(100, False, 2), bars(100, True, 3)])
    test_y = torch.cat([torch.zeros(100), torch.ones(100)]).long()
    return {"train": bars(384, False, 1), "oe": oe, "test_x": test_x, "test_y": test_y}


def many(nets, objectives, xs, oes=None, *, seeds=None, generators=None, blur=0.0, targets=None, **kw):
    """``adcore.train.train_many`` called with per-model lists (one tensor: the same for every model), as the tests
    of K-model training write their cases; ``kw``: the Schedule's fields and train_many's options."""
    from adcore.train import SCHEDULE_FIELDS, Model, Schedule, train_many

    k = len(nets)
    each = lambda v: list(v) if isinstance(v, (list, tuple)) else [v] * k  # noqa: E731
    if len(each(xs)) != k or len(each(oes)) != k:
        raise ValueError(f"{len(each(xs))} training sets / {len(each(oes))} OE sets for {k} models")
    per = zip(nets, objectives, each(xs), each(oes), each(targets), each(blur), each(seeds), each(generators))
    plan = Schedule(**{f: kw.pop(f) for f in SCHEDULE_FIELDS if f in kw})
    return train_many([Model(*m) for m in per], plan, **kw)
