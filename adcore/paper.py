"""Published numbers, kept in one place with their source, so notebooks can set ours beside them.

Ruff, Vandermeulen, Franks, Müller, Kloft. "Rethinking Assumptions in Deep Anomaly Detection."
ICML 2021 Workshop on Uncertainty & Robustness in Deep Learning (arXiv:2006.00339), Table 1:
CIFAR-10 one-vs-rest, mean AUC (%) over 10 seeds. Columns marked * were taken from the literature by the authors.
"""
from __future__ import annotations

import pandas as pd

CITATION = ("Ruff, L., Vandermeulen, R. A., Franks, B. J., Müller, K.-R., Kloft, M. (2021). Rethinking "
            "Assumptions in Deep Anomaly Detection. arXiv:2006.00339, Table 1.")

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
# Column groups: unsupervised; unsupervised with OE; supervised with OE.
CIFAR10_COLUMNS = ("SVDD*", "Deep SVDD*", "Geo*", "IT*", "Geo+*", "Geo+* OE", "Deep SAD", "HSC", "Focal*", "Focal",
                   "BCE")
_ROWS = {
    "airplane": (65.6, 61.7, 74.7, 78.5, 77.5, 90.4, 94.2, 96.3, 87.6, 95.9, 96.4),
    "automobile": (40.9, 65.9, 95.7, 89.8, 96.9, 99.3, 98.1, 98.7, 93.9, 98.7, 98.8),
    "bird": (65.3, 50.8, 78.1, 86.1, 87.3, 93.7, 89.8, 92.7, 78.6, 92.3, 93.0),
    "cat": (50.1, 59.1, 72.4, 77.4, 80.9, 88.1, 87.4, 89.8, 79.9, 88.8, 90.0),
    "deer": (75.2, 60.9, 87.8, 90.5, 92.7, 97.4, 95.0, 96.6, 81.7, 96.6, 97.1),
    "dog": (51.2, 65.7, 87.8, 84.5, 90.2, 94.3, 93.0, 94.2, 85.6, 94.1, 94.2),
    "frog": (71.8, 67.7, 83.4, 89.2, 90.9, 97.1, 96.9, 97.9, 93.3, 97.8, 98.0),
    "horse": (51.2, 67.3, 95.5, 92.9, 96.5, 98.8, 96.8, 97.6, 87.9, 97.6, 97.6),
    "ship": (67.9, 75.9, 93.3, 92.0, 95.2, 98.7, 97.1, 98.2, 92.6, 98.0, 98.1),
    "truck": (48.5, 73.1, 91.3, 85.5, 93.3, 98.5, 96.2, 97.4, 92.1, 97.5, 97.7),
    "mean": (58.8, 64.8, 86.0, 86.6, 90.1, 95.6, 94.5, 95.9, 87.3, 95.8, 96.1),
}
# Our table methods -> the paper's column that reports the same method.
METHOD_COLUMN = {"Deep SVDD (no OE)": "Deep SVDD*", "GEO (no OE)": "Geo*", "GEO-8 (no OE)": "Geo*",
                 "HSC (no OE)": None, "Deep SAD + OE": "Deep SAD", "HSC + OE": "HSC",
                 "Focal + OE": "Focal", "BCE + OE": "BCE"}


def cifar10_table() -> pd.DataFrame:
    """The paper's CIFAR-10 table: rows = normal class (and 'mean'), columns = methods, AUC in %."""
    return pd.DataFrame.from_dict(_ROWS, orient="index", columns=list(CIFAR10_COLUMNS))


# ------------------------------------------------------------------------------------------------------ CLAD

CLAD_CITATION = ("Park, J., Moon, J.-H., Ahn, N., Sohn, K.-A. (2021). What is Wrong with One-Class Anomaly "
                 "Detection? ICLR 2021 Workshop on Security and Safety in Machine Learning Systems "
                 "(arXiv:2104.09793).")
# Super-category AUROC (%) as published: normal = the union of the group's classes (adcore.data.SUPER_CATEGORIES).
_CLAD_ROWS = {
    ("mnist", "CUR"): {"CLAD": 94.0, "Deep SVDD": 81.7, "OC-SVM": 69.9},
    ("mnist", "STR"): {"CLAD": 96.1, "Deep SVDD": 82.2, "OC-SVM": 87.4},
    ("mnist", "MIX"): {"CLAD": 92.6, "Deep SVDD": 69.7, "OC-SVM": 54.8},
    ("cifar10", "THG"): {"CLAD": 74.9, "Deep SVDD": 65.0, "OC-SVM": 51.9},
    ("cifar10", "LIV"): {"CLAD": 72.8, "Deep SVDD": 52.7, "OC-SVM": 67.7},
}


def clad_table() -> pd.DataFrame:
    """The CLAD paper's super-category AUROC (%): rows = (dataset, group), columns = CLAD, Deep SVDD, OC-SVM."""
    t = pd.DataFrame.from_dict(_CLAD_ROWS, orient="index")
    t.index = pd.MultiIndex.from_tuples(t.index, names=["dataset", "group"])
    return t


# ---------------------------------------------------------------------------------------------- Deep SAD, Deep SVDD

DEEP_SAD_CITATION = ("Ruff, L., Vandermeulen, R. A., Görnitz, N., Binder, A., Müller, E., Müller, K.-R., Kloft, M. "
                     "(2020). Deep Semi-Supervised Anomaly Detection. ICLR (arXiv:1906.02694), Table 1; secondary: "
                     "four of its columns as copied by the AGAD paper.")
# Table 1 (gamma_l: mean AUC over 90 experiments), per dataset; None: the method needs labelled anomalies.
_SAD_TABLE1 = {
    "mnist": {0.0: (None, None, 96.3, 92.8), 0.01: (83.6, 89.9, 96.8, 96.4), 0.05: (90.3, 92.2, 97.4, 96.7),
              0.1: (93.9, 91.6, 97.6, 96.9), 0.2: (96.9, 91.2, 97.8, 96.9)},
    "fmnist": {0.0: (None, None, 91.2, 89.2), 0.01: (74.4, 65.1, 89.4, 90.0), 0.05: (76.8, 71.4, 90.5, 90.5),
               0.1: (79.0, 72.9, 91.0, 91.3), 0.2: (81.4, 74.7, 89.7, 91.0)},
    "cifar10": {0.0: (None, None, 63.8, 60.9), 0.01: (55.6, 49.7, 70.5, 72.6), 0.05: (63.5, 50.8, 73.3, 77.9),
                0.1: (67.7, 52.0, 74.0, 79.8), 0.2: (80.5, 53.2, 74.5, 81.9)},
}
SAD_COLUMNS = ("supervised classifier", "SemiDGM", "SSAD (hybrid)", "Deep SAD")  # the paper's SS-DGM is our SemiDGM


def deep_sad_table1(dataset: str = "fmnist") -> pd.DataFrame:
    """Deep SAD's Table 1 (secondary) for ``dataset`` (mnist, fmnist, cifar10): rows = gamma_l, columns =
    :data:`SAD_COLUMNS`, AUC %."""
    return pd.DataFrame.from_dict(_SAD_TABLE1[dataset], orient="index", columns=list(SAD_COLUMNS)).rename_axis("γ_l")


DEEP_SVDD_CITATION = ("Ruff, L., Vandermeulen, R. A., Görnitz, N., Deecke, L., Siddiqui, S. A., Binder, A., Müller, "
                      "E., Kloft, M. (2018). Deep One-Class Classification. ICML, Table 1; secondary: the rows as the "
                      "CLAD paper's Tables 3-4 copy them.")
# Deep SVDD (ICML 2018) Table 1, per normal class, mean AUC % (secondary): OC-SVM/SVDD and one-class Deep SVDD.
_SVDD_2018 = {
    "mnist": {"OC-SVM": (98.6, 99.5, 82.5, 88.1, 94.9, 77.1, 96.5, 93.7, 88.9, 93.1),
              "Deep SVDD": (98.0, 99.7, 91.7, 91.9, 94.9, 88.5, 98.3, 94.6, 93.9, 96.5)},
    "cifar10": {"OC-SVM": (61.6, 63.8, 50.0, 55.9, 66.0, 62.4, 74.7, 62.6, 74.9, 75.9),
                "Deep SVDD": (61.7, 65.9, 50.8, 59.1, 60.9, 65.7, 67.7, 67.3, 75.9, 73.1)},
}


def deep_svdd_table1() -> pd.DataFrame:
    """Deep SVDD's (2018) per-class AUC % (secondary): index (dataset, normal class), columns OC-SVM (the paper's
    OC-SVM/SVDD) and Deep SVDD (one-class)."""
    rows = {(ds, c): {m: v[c] for m, v in cols.items()} for ds, cols in _SVDD_2018.items() for c in range(10)}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis(["dataset", "normal_class"])
