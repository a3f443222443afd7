"""Run profiles: named parameter sets for the book's notebooks, and the grids of runs they expand to.

A profile fixes everything a notebook needs (dataset, classes, seeds, epochs, OE ...); any papermill parameter
that is not ``None`` overrides it. ``parts`` lets one notebook combine datasets: each part overrides the base
settings (the laptop table adds a few CIFAR-10 classes to Fashion-MNIST), and explicit overrides apply to all.
``grid(notebook, settings)`` turns settings into the list of ``RunConfig`` the notebook runs.
"""
from __future__ import annotations

import copy
from typing import Any

from .experiment import RunConfig

# The seed's (lukasruff/Classification-AD) training settings per dataset, used by the paper profile.
PAPER_TRAINING: dict[str, dict[str, Any]] = {
    "cifar10": dict(net="cifar10_lenet", rep_dim=256, epochs=200, milestones=(100, 150), lr=1e-3,
                    weight_decay=5e-7, batch_size=128, oe="tinyimages"),
    "imagenet30": dict(net="resnet18_cbam", rep_dim=256, epochs=150, milestones=(100, 125), lr=1e-3,
                       weight_decay=5e-7, batch_size=128, oe="imagenet22k"),
    "mnist": dict(net="mnist_lenet", rep_dim=32, epochs=150, milestones=(50, 100), lr=1e-3,
                  weight_decay=5e-7, batch_size=128, oe="emnist-letters"),
}

# Table methods: label -> the run settings that define the method.
METHODS: dict[str, dict[str, Any]] = {
    "Deep SVDD (no OE)": dict(objective="deepsvdd", oe=None),
    "Deep SAD + OE": dict(objective="deepsad"),
    "HSC (no OE)": dict(objective="hsc", oe=None),
    "HSC + OE": dict(objective="hsc"),
    "Focal + OE": dict(objective="focal"),
    "BCE + OE": dict(objective="bce"),
}

NOTEBOOKS = ("cifar10_table", "oe_size_curves", "imagenet_blurring", "deep_sad", "clad")

_SMOKE = dict(dataset="fmnist", classes=[0, 1], seeds=1, epochs=1, n_train=128, n_test=256, oe="natural",
              oe_size=256, batch_size=64, lr=1e-3, milestones=[], parts=[])
_LAPTOP = dict(dataset="fmnist", classes=list(range(10)), seeds=1, oe="natural", batch_size=128, lr=1e-3,
               milestones=[], parts=[])
_PAPER_CIFAR = dict(dataset="cifar10", classes=list(range(10)), seeds=10, oe_size=None, n_train=None,
                    n_test=None, parts=[], **{k: v for k, v in PAPER_TRAINING["cifar10"].items()})

# The CLAD chapter (adcore.clad): CLAD vs Deep SVDD, OC-SVM and HSC + natural-image OE on super-category splits.
# Its settings: groups (None = every super-category of the dataset), the CLAD stages' budgets (ae_epochs,
# dec_max_rounds, clf_epochs, clf_lr, clf_width, ...; unset ones take CLADConfig's defaults, the seed's values),
# the deep baselines' budget (baseline_*) and the OC-SVM's (ocsvm_*).
_CLAD_METHODS = ["CLAD", "Deep SVDD", "OC-SVM", "HSC + OE"]
_CLAD_SMOKE = dict(dataset="fmnist", groups=["SHOE", "MIX"], seeds=1, methods=_CLAD_METHODS, n_train=128,
                   n_test=128, ae_epochs=1, dec_max_rounds=2, clf_epochs=1, clf_lr=1e-3, clf_width=8,
                   baseline_epochs=1, oe="natural", oe_size=256, parts=[])
# Laptop: the three Fashion-MNIST groups, subsampled, a quarter-width ResNet-18 (clf_width 16) and a 10x larger
# learning rate than the seed's 1e-4 so that a few epochs suffice; <= 10 minutes on 2 CPU cores.
_CLAD_LAPTOP = dict(dataset="fmnist", groups=None, seeds=1, methods=_CLAD_METHODS, n_train=2000, n_test=2000,
                    ae_epochs=30, dec_max_rounds=10, clf_epochs=5, clf_lr=1e-3, clf_width=16, baseline_epochs=10,
                    oe="natural", oe_size=2048, parts=[])
# Paper: the seed's CLAD settings (k 10, code 10 / 200, classifier 100 epochs at lr 1e-4, T 1000, eps 1e-4 / 0.01,
# full-width ResNet-18); autoencoder epochs are not given by the seed, 100 is our choice. Deep SVDD and HSC + OE
# with the Rethinking seed's per-dataset budgets. MNIST and CIFAR-10 (JPEG copy) as in the paper, plus the
# Fashion-MNIST groups with MNIST's settings.
_CLAD_PAPER = dict(groups=None, seeds=5, methods=_CLAD_METHODS, n_train=None, n_test=None, ae_epochs=100,
                   dec_max_rounds=200, clf_epochs=100, clf_lr=1e-4, clf_width=64, oe="natural", oe_size=None,
                   parts=[dict(dataset=ds, baseline_epochs=PAPER_TRAINING[t]["epochs"],
                               baseline_milestones=list(PAPER_TRAINING[t]["milestones"]))
                          for ds, t in (("mnist", "mnist"), ("fmnist", "mnist"), ("cifar10", "cifar10"))])
# The Deep SVDD / Deep SAD chapter (adcore.deepsad.chapter_runs): training settings shared by the image sections,
# then one entry per section. The paper profile uses the Deep SAD seed's settings (Adam, lr 1e-4, 150 epochs with
# lr x 0.1 after 50; autoencoder 150 epochs, weight decay 5e-4) on all training data, 10 classes, 10 seeds.
_SAD_ALL = ["Deep SAD", "Deep SVDD", "SSAD", "SSAD (hybrid)", "SemiDGM"]
_SAD_UNSUP = ["Deep SVDD", "Deep SVDD (soft-boundary)", "Autoencoder", "OC-SVM", "KDE", "Isolation Forest"]
_SAD_TAB = ["Deep SAD", "Deep SVDD", "OC-SVM", "KDE", "Isolation Forest", "SSAD", "SSAD (hybrid)", "SemiDGM"]
_SAD_RATIOS = [0.0, 0.01, 0.05, 0.1, 0.2]
_SAD_TAB_TRAIN = dict(datasets=["sk-wdbc", "sk-wine"], labelled=0.05, pollution=0.0, n_train=None, n_test=None,
                      batch_size=32, ae_lr=1e-3, lr=1e-3, ae_milestones=[], milestones=[])

PROFILES: dict[str, dict[str, dict[str, Any]]] = {
    "smoke": {
        "cifar10_table": dict(_SMOKE, methods=[m for m in METHODS if m != "HSC (no OE)"]),
        "oe_size_curves": dict(_SMOKE, objectives=["hsc", "bce"], oe_sizes=[1, 4, 16], baseline=True),
        "imagenet_blurring": dict(_SMOKE, objectives=["hsc", "bce"], sigmas=[0, 2], oe_size=16),
        "clad": _CLAD_SMOKE,
        "deep_sad": dict(
            dataset="fmnist", classes=[0], seeds=1, n_train=64, n_test=200, preprocess="minmax", ae_epochs=1,
            ae_lr=1e-3, ae_milestones=[], epochs=1, lr=1e-3, milestones=[], batch_size=32, dgm_epochs=1,
            gammas=[2 ** -5, 2 ** -1],
            unsupervised=dict(methods=_SAD_UNSUP, warm_up=0),
            labelled=dict(methods=_SAD_ALL, ratios=[0.0, 0.05], pollution=0.0),
            pollution=dict(methods=["Deep SAD", "Deep SVDD"], ratios=[0.0, 0.1], labelled=0.05),
            tabular=dict(_SAD_TAB_TRAIN, datasets=["sk-wine"], methods=_SAD_TAB, seeds=1, ae_epochs=2, epochs=2,
                         dgm_epochs=2)),
    },
    "laptop": {
        # Fashion-MNIST, all classes, subsampled to fit ~10 minutes on 2 CPU cores; plus three CIFAR-10 (JPEG
        # copy) classes for HSC with and without OE, where the paper's main effect shows.
        "cifar10_table": dict(_LAPTOP, methods=[m for m in METHODS if m != "HSC (no OE)"], epochs=3, n_train=800,
                              n_test=2000, oe_size=4096,
                              parts=[{}, dict(dataset="cifar10", classes=[0, 1, 8], methods=["HSC (no OE)",
                                              "HSC + OE"], epochs=5, n_train=640, n_test=2000)]),
        "oe_size_curves": dict(_LAPTOP, objectives=["hsc", "bce"], oe_sizes=[1, 8, 64, 512, 4096],
                               classes=[0, 2, 4, 6, 8], epochs=3, n_train=800, n_test=2000, baseline=True),
        "imagenet_blurring": dict(_LAPTOP, objectives=["hsc", "bce"], sigmas=[0, 1, 2, 4, 8, 16, 32],
                                  classes=[0, 4, 8], epochs=3, n_train=800, n_test=2000, oe_size=128),
        "clad": _CLAD_LAPTOP,
        # Fashion-MNIST, subsampled to fit 10 minutes on 2 CPU cores: 500 normal training images per class,
        # 1,000 test images, 10 autoencoder + 10 network epochs at lr 1e-3 in batches of 64, a 5-value RBF grid;
        # the unsupervised and labelled-anomaly sections on 5 classes, the pollution section on 2 classes,
        # 3 methods and 3 pollution levels.
        "deep_sad": dict(
            dataset="fmnist", classes=[0, 1, 2, 3, 4, 5, 6, 7, 8, 9], seeds=1, n_train=500, n_test=1000,
            preprocess="minmax", ae_epochs=10, ae_lr=1e-3, ae_milestones=[], epochs=10, lr=1e-3, milestones=[],
            batch_size=64, dgm_epochs=15, gammas=[2 ** -7, 2 ** -5, 2 ** -3, 2 ** -1, 2 ** 1],
            unsupervised=dict(methods=_SAD_UNSUP, max_classes=5, warm_up=2),
            labelled=dict(methods=_SAD_ALL, max_classes=5, ratios=_SAD_RATIOS, pollution=0.0),
            pollution=dict(methods=["Deep SAD", "Deep SVDD", "SSAD (hybrid)"], max_classes=2,
                           ratios=[0.0, 0.1, 0.2], labelled=0.05),
            tabular=dict(_SAD_TAB_TRAIN, methods=_SAD_TAB, seeds=3, ae_epochs=50, epochs=50, dgm_epochs=50)),
    },
    "paper": {
        # The paper's Deep SVDD column is taken from the literature, so the paper grid trains the 4 OE methods
        # (10 classes x 10 seeds x 4 = 400 runs); sigma 0 at OE size 128 is also a point of the OE-size grid.
        "cifar10_table": dict(_PAPER_CIFAR, methods=["Deep SAD + OE", "HSC + OE", "Focal + OE", "BCE + OE"]),
        "oe_size_curves": dict(_PAPER_CIFAR, objectives=["hsc", "bce"], oe_sizes=[2 ** k for k in range(22)],
                               baseline=False),
        "imagenet_blurring": dict(_PAPER_CIFAR, objectives=["hsc", "bce"], sigmas=[0, 1, 2, 4, 8, 16, 32],
                                  oe_size=128),
        "clad": _CLAD_PAPER,
        "deep_sad": dict(
            dataset="fmnist", classes=list(range(10)), seeds=10, n_train=None, n_test=None, preprocess="minmax",
            ae_epochs=150, ae_lr=1e-4, ae_milestones=[], ae_weight_decay=5e-4, epochs=150, lr=1e-4,
            milestones=[50], weight_decay=5e-7, batch_size=128, dgm_epochs=150, gammas=None,
            unsupervised=dict(methods=_SAD_UNSUP, preprocess="gcn"),  # the Deep SVDD paper's preprocessing
            labelled=dict(methods=_SAD_ALL, ratios=_SAD_RATIOS, pollution=0.0),
            pollution=dict(methods=_SAD_ALL, ratios=_SAD_RATIOS, labelled=0.05),
            tabular=dict(_SAD_TAB_TRAIN, methods=_SAD_TAB, seeds=10, ae_epochs=150, epochs=150, dgm_epochs=150)),
    },
}

_RUN_KEYS = ("dataset", "oe", "oe_size", "epochs", "lr", "milestones", "batch_size", "weight_decay", "net",
             "rep_dim", "n_train", "n_test", "augment")


def settings(notebook: str, profile: str = "laptop", **overrides: Any) -> dict[str, Any]:
    """The settings of ``notebook`` under ``profile``; overrides that are not None replace profile values
    everywhere (in the base and in every part)."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    if notebook not in PROFILES[profile]:
        raise ValueError(f"unknown notebook {notebook!r}; choose one of {', '.join(NOTEBOOKS)}")
    s = copy.deepcopy(PROFILES[profile][notebook])
    given = {k: v for k, v in overrides.items() if v is not None}
    s.update(given)
    s["parts"] = [{**p, **given} for p in s.get("parts") or [{}]]
    s["profile"] = profile
    return s


def _seeds(s: dict[str, Any]) -> list[int]:
    return list(range(s["seeds"])) if isinstance(s["seeds"], int) else list(s["seeds"])


def _base(s: dict[str, Any]) -> RunConfig:
    kw = {k: s[k] for k in _RUN_KEYS if k in s}
    if "milestones" in kw:
        kw["milestones"] = tuple(kw["milestones"])
    return RunConfig(**kw)


def _runs(notebook: str, s: dict[str, Any]) -> list[tuple[dict[str, Any], RunConfig]]:
    """(labels, config) pairs of one part: labels are what the notebook groups by (method, OE size, sigma)."""
    if notebook == "clad":  # CLAD and OC-SVM configs besides RunConfigs: expanded by the CLAD module
        from .clad import chapter_runs

        return chapter_runs(s)
    base, out = _base(s), []
    for cls in s["classes"]:
        for seed in _seeds(s):
            cfg = base.replace(normal_class=cls, seed=seed)
            if notebook == "cifar10_table":
                out += [({"method": m}, cfg.replace(**METHODS[m])) for m in s["methods"]]
            elif notebook == "oe_size_curves":
                out += [({"objective": o, "oe_size": n}, cfg.replace(objective=o, oe_size=n))
                        for o in s["objectives"] for n in s["oe_sizes"]]
                if s.get("baseline"):
                    out.append(({"objective": "deepsvdd", "oe_size": 0}, cfg.replace(objective="deepsvdd",
                                                                                      oe=None)))
            else:
                out += [({"objective": o, "sigma": sg}, cfg.replace(objective=o, blur=float(sg)))
                        for o in s["objectives"] for sg in s["sigmas"]]
    return out


def runs(notebook: str, s: dict[str, Any]) -> list[tuple[dict[str, Any], RunConfig]]:
    """Every (labels, RunConfig) of a notebook's settings, over all parts (the Deep SAD chapter: its own
    ``SADConfig`` grid, see ``adcore.deepsad.chapter_runs``)."""
    if notebook == "deep_sad":
        from .deepsad import chapter_runs

        return chapter_runs(s)  # type: ignore[return-value]
    out = []
    for part in s["parts"]:
        out += _runs(notebook, {**s, **part})
    return out


def grid(notebook: str, s: dict[str, Any]) -> list[RunConfig]:
    return [cfg for _, cfg in runs(notebook, s)]
