"""adcore's version, in a module of its own: the package imports Detector lazily, and the modules that
stamp records read the version here without importing the package (no import cycle)."""
__version__ = "0.1.0"
