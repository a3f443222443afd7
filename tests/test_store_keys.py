"""The results store's keys do not move: a fixed set of configurations hashes as it did before the chapter layer
was rebuilt (issue 21), and every notebook and named grid asks, under each profile, for the very runs (labels and
config hashes) it asked for then. A store filled before a change is read by the code after it, nothing retrained.

The fixed configurations' hashes were computed by the code at 8aded39, before any change; a change that moves
them must bump the store's key version with a migration instead of editing these numbers. The run sets were
computed there too and updated once, by issue 22, which only added runs (GEO, the OE size 32, BCE on the
Fashion-MNIST contrast, HSC without OE beside the blur curves) and dropped the contrast's HSC without OE and the
smoke sizes 16 and 256: every other run of 644dc6a kept its hash (checked then against its full list). Issue 22
then gave CLAD's Deep SVDD rival the ICML 2018 method's pretraining (its runs are SADConfigs now): CLAD's and the
book's run sets moved by those runs alone (``test_clad_moves_only_its_deep_svdd``, digests computed at b051136)."""
import hashlib
import json

import pytest

from adcore import chapters
from adcore.clad import CLADConfig, OCSVMConfig
from adcore.deepsad import SADConfig
from adcore.experiment import RunConfig
from adcore.runner import config_hash

FIXED = {
 "run_default": RunConfig(),
 "run_cifar_hsc": RunConfig(dataset="cifar10", normal_class=3, objective="hsc", oe="natural", oe_size=4096, epochs=4,
                            batch_size=32, n_train=256, n_test=1000, seed=2),
 "run_blur": RunConfig(dataset="cifar10", objective="bce", oe_size=128, blur=8.0, seed=1, milestones=(100, 150)),
 "run_noe": RunConfig(dataset="fmnist", objective="hsc", oe=None, normal_class=(1, 2)),
 "sad_deepsad": SADConfig(dataset="fmnist", method="deepsad", ratio_known_outlier=0.05).canonical(),
 "sad_svdd_icml": SADConfig(dataset="cifar10", method="deepsvdd", preprocess="gcn", pretrain=True, transfer="full",
                            ae_epochs=10, epochs=20, lr=1e-4).canonical(),
 "sad_ocsvm": SADConfig(dataset="fmnist", method="ocsvm", selection="test10").canonical(),
 "sad_ssad_hybrid": SADConfig(dataset="fmnist", method="ssad", hybrid=True, ratio_known_outlier=0.05).canonical(),
 "sad_tabular": SADConfig(dataset="sk-wine", method="semidgm", ratio_known_outlier=0.05).canonical(),
 "clad": CLADConfig(dataset="fmnist", normal_class=(5, 7, 9), clf_width=8),
 "ocsvm": OCSVMConfig(dataset="fmnist", normal_class=(5, 7, 9)),
}

FIXED_HASHES = {
    'run_default': '6f90494cc79487bf',
    'run_cifar_hsc': 'd528260ec476ff56',
    'run_blur': 'd6fa56bd3ce8286d',
    'run_noe': 'b0e58110a8b1d150',
    'sad_deepsad': 'ad162b6178e01a1d',
    'sad_svdd_icml': '2d67ba4ab661fe24',
    'sad_ocsvm': '8e3bac3195c03bb5',
    'sad_ssad_hybrid': '36891d22045dce56',
    'sad_tabular': 'b89135e083c11fb3',
    'clad': 'a32af2a3bb65cac8',
    'ocsvm': '1d3584f0bffd576c'
}

NOTEBOOK_RUNS = {
    'cifar10_table/smoke': ('3c82ad7654a9ed52', 17),
    'cifar10_table/laptop': ('5d8e6d2bbf0f54a2', 108),
    'cifar10_table/paper': ('e027fc99f3cd183b', 500),
    'oe_size_curves/smoke': ('433e3652be98ce31', 19),
    'oe_size_curves/laptop': ('c1d566568769db6b', 66),
    'oe_size_curves/paper': ('bd49e9f4292bf5ca', 4600),
    'imagenet_blurring/smoke': ('24a77e60ced51793', 13),
    'imagenet_blurring/laptop': ('ca78cd6edf9140ed', 75),
    'imagenet_blurring/paper': ('74f5688480c46437', 1500),
    'deep_sad/smoke': ('3f053aae0c4f4ae5', 32),
    'deep_sad/laptop': ('a43947564069fa7e', 121),
    'deep_sad/paper': ('140e1d0f8f08a4ce', 7860),
    'clad/smoke': ('69360583817dd0db', 8),
    'clad/laptop': ('3abfb9473f10fef2', 12),
    'clad/paper': ('ce2fae7f07de2704', 160),
}

GRID_RUNS = {
    'cifar10_table/smoke': ('4737c4436ef9931b', 17),
    'cifar10_table/laptop': ('e115306ecd108a21', 108),
    'cifar10_table/paper': ('5ed71f18ba439cf8', 500),
    'cifar10_oe_sizes/smoke': ('e785eb649b266c7b', 19),
    'cifar10_oe_sizes/laptop': ('4d141ef5c313eb1c', 66),
    'cifar10_oe_sizes/paper': ('2eb10718afa69e5b', 4600),
    'cifar10_blur/smoke': ('63b722d070f811f3', 10),
    'cifar10_blur/laptop': ('e565dc3c2c29e2c0', 60),
    'cifar10_blur/paper': ('2eeb32012626b23e', 1200),
    'cifar100_oe_classes/smoke': ('e838eff15ef0030c', 4),
    'cifar100_oe_classes/laptop': ('7f63306bdadc5d31', 40),
    'cifar100_oe_classes/paper': ('7348493397c23aa5', 1600),
    'cifar10_hsc_sensitivity/smoke': ('efaad68d9a32069f', 4),
    'cifar10_hsc_sensitivity/laptop': ('4de534f386457c7e', 40),
    'cifar10_hsc_sensitivity/paper': ('f83916c4e994811b', 800),
    'focal_sensitivity/smoke': ('fd710ecdc128f34f', 4),
    'focal_sensitivity/laptop': ('f59ce81628409d72', 28),
    'focal_sensitivity/paper': ('ea045d9b7e90ba32', 800),
    'imagenet30_table/smoke': ('a55e17d857e7be0b', 4),
    'imagenet30_table/laptop': ('4db620e567bf8870', 12),
    'imagenet30_table/paper': ('6e98c117a2ca525d', 1200),
    'imagenet30_oe_sizes/smoke': ('db60e69428b18def', 5),
    'imagenet30_oe_sizes/laptop': ('e3416e7c501f5ae8', 39),
    'imagenet30_oe_sizes/paper': ('05e7180647bca3d6', 5850),
    'imagenet30_blur/smoke': ('9e4de07e27de5653', 2),
    'imagenet30_blur/laptop': ('9521ca62b4bc1322', 36),
    'imagenet30_blur/paper': ('c2f2b16978178af5', 1800),
    'mnist_emnist_classes/smoke': ('e12e9c4afcffe8c1', 4),
    'mnist_emnist_classes/laptop': ('1f815df6362ef99d', 40),
    'mnist_emnist_classes/paper': ('3f24edbf8cf8ae56', 1600),
    'mnist_blur/smoke': ('a957e4f0d9e0219b', 2),
    'mnist_blur/laptop': ('b468920703146ba3', 60),
    'mnist_blur/paper': ('b0a24d77640536d8', 600),
    'book/smoke': ('d28d722af45c5f62', 77),
    'book/laptop': ('eec91a408c5e73cd', 321),
    'book/paper': ('186a9aacd274dda7', 12520),
    'all/smoke': ('424401db040b7440', 72),
    'all/laptop': ('299b4d5915c3c20e', 507),
    'all/paper': ('9c4f8c76312029c5', 20150),
}


LABELS_THEN = {"blur": "sigma"}  # the blur axis' label was "sigma" at 8aded39 (one name since: blur)


def _digest(items: list[str]) -> tuple[str, int]:
    items = sorted(items)
    return hashlib.sha1("\n".join(items).encode()).hexdigest()[:16], len(items)


@pytest.mark.parametrize("name", sorted(FIXED))
def test_fixed_config_keeps_its_key(name):
    assert config_hash(FIXED[name]) == FIXED_HASHES[name]


@pytest.mark.parametrize("key", sorted(NOTEBOOK_RUNS))
def test_notebook_asks_for_the_same_runs(key):
    nb, profile = key.split("/")
    runs = chapters.open(nb, profile).runs
    got = _digest([json.dumps([sorted((LABELS_THEN.get(k, k), v) for k, v in lab.items()), config_hash(c)],
                              default=str) for lab, c in runs])
    assert got == NOTEBOOK_RUNS[key]


@pytest.mark.parametrize("key", sorted(GRID_RUNS))
def test_grid_has_the_same_runs(key):
    name, profile = key.split("/")
    assert _digest([config_hash(c) for c in chapters.grid(name, profile)]) == GRID_RUNS[key]


CLAD_OTHERS_THEN = {"smoke": ("5576c167e4166eaf", 6), "laptop": ("8caaaa0561025082", 9),
                    "paper": ("13875d86524c2c1d", 120)}  # CLAD's runs but Deep SVDD, at b051136


@pytest.mark.parametrize("profile", sorted(CLAD_OTHERS_THEN))
def test_clad_moves_only_its_deep_svdd(profile):
    runs = chapters.open("clad", profile).runs
    others = [json.dumps([sorted(lab.items()), config_hash(c)], default=str) for lab, c in runs
              if lab["method"] != "Deep SVDD"]
    assert _digest(others) == CLAD_OTHERS_THEN[profile]
    svdd = [c for lab, c in runs if lab["method"] == "Deep SVDD"]
    assert svdd and all(isinstance(c, SADConfig) and c.method == "deepsvdd" and c.pretrain and c.transfer == "full"
                        and c.preprocess == "gcn" and isinstance(c.normal_class, tuple) for c in svdd)
