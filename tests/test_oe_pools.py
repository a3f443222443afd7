"""OE pools in training: blur in the batch pipeline for in-memory and streamed pools, virtual natural crops, the
paper's blur grid on tiny data, keyed index streams for pools beyond 2^24."""
import pickle

import numpy as np
import pytest
import torch

from adcore import chapters, experiment, oe, runner, train
from adcore.experiment import RunConfig
from adcore.nets import make_net
from adcore.objectives import make_objective
from conftest import bars


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: tiny models, one thread


@pytest.fixture(scope="module")
def tiny_cifar_and_tinyimages(tmp_path_factory):
    """CIFAR-10 python batches (class c: 48 training images of brightness ~ c) and a 300-record tiny_images.bin with
    the seed's exclusion list beside it."""
    root = tmp_path_factory.mktemp("tiny")
    rng = np.random.default_rng(0)
    folder = root / "cifar" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name, n in [(f"data_batch_{i}", 96) for i in range(1, 6)] + [("test_batch", 60)]:
        y = np.arange(n) % 10
        x = (rng.integers(0, 60, (n, 3072)) + 19 * y[:, None]).astype(np.uint8)
        with open(folder / name, "wb") as f:
            pickle.dump({"data": x, "labels": y.tolist()}, f)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": [f"c{i}" for i in range(10)]}, f)
    tiny = root / "tiny"
    tiny.mkdir()
    (tiny / "tiny_images.bin").write_bytes(rng.integers(0, 256, 300 * 3072, dtype=np.uint8).tobytes())
    (tiny / "80mn_cifar_idxs.txt").write_text("3\n17\n")
    return str(root / "cifar"), str(tiny)


def test_the_paper_blur_grid_trains_on_tiny_data(tiny_cifar_and_tinyimages, tmp_path):
    data_root, oe_root = tiny_cifar_and_tinyimages
    first = chapters.grid("cifar10_blur", "paper")[:2]
    assert {(c.oe, c.oe_size, c.net) for c in first} == {("tinyimages", 128, "cifar10_lenet")}
    assert all(c.blur > 0 for c in first)
    tiny = [c.replace(epochs=1, milestones=(), batch_size=16, n_test=30, data_root=data_root, oe_root=oe_root)
            for c in first]
    result = runner.execute(tiny, tmp_path, progress=False, retries=0)
    assert not result.failures and result.ran == 2
    assert set(result.frame["n_oe"]) == {128} and result.frame["auc"].between(0, 1).all()
    assert all("excluding the CIFAR images" in n for n in result.frame["oe_note"])


def test_a_streamed_pool_with_blur_trains(tiny_cifar_and_tinyimages, monkeypatch):
    """A pool larger than the in-memory limit is streamed from DataLoader workers, and blurred in the batch
    pipeline like an in-memory one."""
    data_root, oe_root = tiny_cifar_and_tinyimages
    monkeypatch.setattr(experiment, "IN_MEMORY_OE_BYTES", 0)
    experiment._oe_pool.cache_clear()
    cfg = RunConfig(dataset="cifar10", objective="hsc", oe="tinyimages", oe_size=200, blur=2.0, epochs=1,
                    batch_size=16, n_test=30, data_root=data_root, oe_root=oe_root)
    pool, _ = experiment._oe_pool("tinyimages", (3, 32, 32), 200, 0, None, oe_root)
    assert isinstance(pool, oe.LazyImages) and pool.heavy
    rec = cfg.run(device="cpu", progress=False)
    assert rec["n_oe"] == 200 and np.isfinite(rec["final_loss"]) and 0 <= rec["auc"] <= 1
    experiment._oe_pool.cache_clear()


def test_blur_changes_what_the_model_sees_only_for_oe():
    """The same run with and without blur: the losses differ; blur 0 equals no blur argument at all."""
    x, pool = bars(64, False, 1), bars(64, True, 2)

    def fit(**kw):
        torch.manual_seed(0)
        net, obj = make_net("mnist_lenet", rep_dim=8), make_objective("hsc")
        return train.train(net, obj, x, pool, epochs=1, batch_size=32, seed=3, progress=False, **kw).losses

    assert fit() == fit(blur=0.0) != fit(blur=4.0)


def test_virtual_natural_crops_train_like_the_materialised_pool():
    src = oe.NaturalCrops((1, 28, 28))
    virtual = src.virtual(96, seed=5)
    assert isinstance(virtual, oe.VirtualCrops) and not virtual.cache  # nothing made yet
    x = bars(64, False, 1)

    def fit(pool):
        torch.manual_seed(0)
        obj = make_objective("bce")
        net = make_net("mnist_lenet", rep_dim=8, head=True)
        return train.train(net, obj, x, pool, epochs=2, batch_size=32, seed=1, progress=False).losses

    assert fit(virtual) == fit(src.sample(96, seed=5))
    assert 0 < len(virtual.cache) <= 96  # only the drawn crops were made
    # the default run's pool: all 2^20 virtual crops, nothing made up front
    pool, _ = experiment._oe_pool("natural", (3, 32, 32), None, 0, None, None)
    assert isinstance(pool, oe.VirtualCrops) and len(pool) == oe.NATURAL_SIZE and not pool.cache


def test_keyed_index_stream_is_a_permutation_per_pass(monkeypatch):
    monkeypatch.setattr(train, "_PERMUTE_MAX", 100)
    stream = train.IndexStream(1000, "cpu", torch.Generator().manual_seed(0))
    first, second = stream.take(700), stream.take(700)
    assert sorted(torch.cat([first, second[:300]]).tolist()) == list(range(1000))  # pass 1
    assert len(set(second[300:].tolist())) == 400 and stream.keys is not None  # pass 2 begun with new keys
    again = train.IndexStream(1000, "cpu", torch.Generator().manual_seed(0)).take(700)
    assert torch.equal(again, first)
