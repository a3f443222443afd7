"""adcore: a small, fast, tested reproduction of deep anomaly detection (HSC, Deep SAD, Deep SVDD, BCE, Focal
with Outlier Exposure) behind the deep anomaly-detection book."""
from ._version import __version__  # noqa: F401


def __getattr__(name: str):
    """``adcore.Detector``, imported on first use (``import adcore`` stays light for the command line)."""
    if name == "Detector":
        from .detector import Detector
        return Detector
    raise AttributeError(f"module 'adcore' has no attribute {name!r}")
