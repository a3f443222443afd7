"""adcore: a small, fast, tested reproduction of deep anomaly detection (HSC, Deep SAD, Deep SVDD, BCE, Focal
with Outlier Exposure) behind the deep anomaly-detection book."""
__version__ = "0.1.0"
