"""The chapter "Your own data": a detector trained on a folder of PNG files (Fashion-MNIST images written out as
a practitioner's data would arrive), saved, reloaded and used to score new images. Its profiles and figures.

Not a reproduction: it reads no results store and checks no paper claim, so it is not in the registry of run
grids (``adcore.chapters.NOTEBOOKS``); ``python -m adcore book --only own_data`` executes it like the others.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from .. import report
from ..config import ConfigError
from .interface import Settings as _Base
from ..metrics import NAMES
from ..stamp import stamp_lines


@dataclass(frozen=True)
class Settings(_Base):
    normal_class: int
    n_train: int
    n_test: int
    epochs: int
    oe_size: int
    objective: str = "hsc"
    profile: str = "custom"


PROFILES: dict[str, Settings] = {
    "smoke": Settings(7, 300, 200, epochs=1, oe_size=512, profile="smoke"),
    # Measured: 18 s for the whole notebook on 2 shared CPU cores (fit 2,000 images for 5 epochs, score 1,000).
    "laptop": Settings(7, 2000, 1000, epochs=5, oe_size=4096, profile="laptop"),
    "paper": Settings(7, 6000, 2000, epochs=30, oe_size=16384, profile="paper"),
}


def settings(profile: str = "laptop", **params: Any) -> Settings:
    """The profile's settings with the notebook's parameters (None: the profile's value)."""
    if profile not in PROFILES:
        raise ConfigError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    return PROFILES[profile].replace(**{k: v for k, v in params.items() if v is not None})


def metrics_table(m: dict[str, float]) -> pd.DataFrame:
    """The detection metrics in %, with the convention each one uses."""
    sides = {"auc": "anomaly positive", "aupr_in": "normal positive (scores negated)",
             "aupr_out": "anomaly positive", "fpr95": "normals flagged when 95 % of anomalies are",
             "detection_error": "min over thresholds of (miss rate + false alarm rate) / 2"}
    return pd.DataFrame({"metric": [NAMES[k] for k in m], "value (%)": [round(100 * v, 1) for v in m.values()],
                         "convention": [sides[k] for k in m]}).set_index("metric")


def card(profile: str, s: Settings, det: Any, wall: str) -> pd.DataFrame:
    """The run card: the data, the budget, the fit's numbers and the reproducibility stamp of the model file."""
    f, t = det.fit_, det.transform_
    rows = {"profile": profile, "data": f"Fashion-MNIST as PNG files, normal class {report.class_label('fmnist', s.normal_class)}",
            "images": f"{f['n_train']:,} train, {f['n_holdout']:,} held out for the threshold, {s.n_test:,} test",
            "network": f"{t['net']} on {t['channels']} x {t['size']} x {t['size']}",
            "objective": f"{det.objective}, {report.counted([det.epochs], 'epochs')}, {f['n_oe']:,} OE images",
            "fit time": f"{f['fit_time']:.1f} s", "device": f["device"], **stamp_lines(f),
            "wall time of this execution": wall}
    return pd.DataFrame({"setting": list(rows), "value": [str(v) for v in rows.values()]}).set_index("setting")


def montage(axes: Sequence[Any], files: Sequence[str], scores: np.ndarray, labels: np.ndarray | None,
            threshold: float) -> None:
    """One image per axis with its score, "anomalous"/"normal" from the file's folder, red when flagged."""
    from PIL import Image
    for ax, f, s, i in zip(axes, files, scores, range(len(files))):
        ax.imshow(np.asarray(Image.open(f).convert("L")), cmap="gray", vmin=0, vmax=255)
        truth = "" if labels is None else (" anom." if labels[i] else " normal")
        ax.set_title(f"{s:.3g}{truth}", fontsize=8, color="tab:red" if s > threshold else "black")
        ax.set_xticks([]), ax.set_yticks([])


def relative(files: Sequence[str], root: Path) -> list[str]:
    return [str(Path(f).relative_to(root)) for f in files]
