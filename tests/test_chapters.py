"""The one chapter interface: every chapter satisfies :class:`adcore.chapters.Chapter`; a notebook's parameters
reach every column of its chapter; an unknown override, or one that no run reads, is an error naming it; the
notebooks follow one template (no copied cells)."""
import dataclasses
import inspect
import json
from pathlib import Path

import pytest

from adcore import chapters
from adcore.clad import CLADConfig, OCSVMConfig
from adcore.config import ConfigError, RunSpec
from adcore.deepsad import SADConfig
from adcore.experiment import RunConfig

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", chapters.NOTEBOOKS)
def test_every_chapter_satisfies_the_protocol(name):
    ch = chapters.chapter(name)
    assert isinstance(ch, chapters.Chapter) and ch.name == name and (ROOT / "notebooks" / f"{name}.ipynb").is_file()
    assert issubclass(ch.Settings, chapters.Settings) and dataclasses.is_dataclass(ch.Settings)
    assert ch.Settings.__dataclass_params__.frozen
    for method, params in (("runs", ["settings"]), ("card", ["settings", "frame", "device", "wall"]),
                           ("claims", ["frame"]), ("profile", ["name"])):
        got = [p for p in inspect.signature(getattr(ch, method)).parameters if p not in ("self", "where")]
        assert got[1:len(params)] == params[1:], method  # the first may be called s
    for p in chapters.PROFILES:
        s = ch.profile(p)
        assert isinstance(s, ch.Settings) and s.profile == p
        with pytest.raises(dataclasses.FrozenInstanceError):
            s.profile = "x"
        runs = ch.runs(s)
        assert runs and all(isinstance(lab, dict) and isinstance(c, RunSpec) for lab, c in runs)


def _parameters_and_open(notebook: str, **values):
    """Executes the notebook's parameters cell with ``values`` set (as papermill would), then its first code cell
    (imports and ``chapters.open``): the opened chapter."""
    cells = [c for c in json.loads((ROOT / "notebooks" / f"{notebook}.ipynb").read_text())["cells"]
             if c["cell_type"] == "code"]
    ns: dict = {}
    exec("".join(cells[0]["source"]), ns)
    assert "parameters" in cells[0]["metadata"]["tags"] and set(values) <= set(ns)
    ns.update(values)
    exec("".join(cells[1]["source"]), ns)
    return ns["ch"]


@pytest.mark.parametrize("name", chapters.NOTEBOOKS)
def test_epochs_follows_from_the_notebook_parameter_to_every_column(name):
    ch = _parameters_and_open(name, profile="smoke", epochs=5)
    assert ch.chapter is chapters.chapter(name)
    columns = {lab.get("method", lab.get("objective")) for lab, _ in ch.runs}
    trained = [c for _, c in ch.runs if isinstance(c, (RunConfig, SADConfig))]
    geo = [c for c in trained if getattr(c, "objective", "").startswith("geo")]
    assert trained and {c.epochs for c in trained if getattr(c, "method", "deep").startswith("deep")
                        and c not in geo} == {5}
    # GEO counts its budget as its authors do: ceil(epochs / T) epochs over the T-fold expanded set
    assert {(c.objective, c.epochs) for c in geo} <= {("geo8", 1), ("geo", 1)}
    if geo:  # 17 epochs of the design: ceil(17 / 8) = 3 over the 8-fold set
        more = _parameters_and_open(name, profile="smoke", epochs=17).runs
        assert {(c.epochs, c.milestones) for _, c in more if getattr(c, "objective", "") == "geo8"} == {(3, ())}
    if name == "cifar10_table":  # the Deep SVDD column (a SADConfig with its own schedule) included
        assert {c.epochs for c in trained if isinstance(c, SADConfig)} == {5} and "Deep SVDD (no OE)" in columns
    if name == "clad":  # CLAD's networks name their own epochs (ae_epochs, clf_epochs); the OC-SVM has none
        assert {lab["method"] for lab, c in ch.runs if isinstance(c, RunConfig)} == {"HSC + OE"}
        assert {lab["method"] for lab, c in ch.runs if isinstance(c, SADConfig)} == {"Deep SVDD"}
        assert not any(hasattr(c, "epochs") for _, c in ch.runs if isinstance(c, (CLADConfig, OCSVMConfig)))
    before = _parameters_and_open(name, profile="smoke")
    assert [lab for lab, _ in before.runs] == [lab for lab, _ in ch.runs]  # the same design, other epochs


def test_blur_follows_from_the_notebook_parameter_to_every_run():
    ch = _parameters_and_open("imagenet_blurring", profile="smoke", blur=[0, 3])
    assert {c.blur for _, c in ch.runs} == {0.0, 3.0}
    assert {lab["blur"] for lab, _ in ch.runs if "blur" in lab} == {0.0, 3.0}
    # HSC without OE: 2 classes and a spread seed
    assert [lab for lab, c in ch.runs if "blur" not in lab] == [{"objective": "hsc", "oe_size": 0}] * 3
    assert {(c.objective, c.blur) for _, c in ch.runs if c.seed == 1 and c.oe} == {(o, b) for o in ("hsc", "bce")
                                                                         for b in (0.0, 3.0)}  # the spread points
    assert ch.settings.blur == (0, 3) and ch.settings.spread.blur == (0, 3)


def test_none_is_the_profiles_value_and_wrong_overrides_fail_naming_the_setting():
    assert chapters.open("cifar10_table", "smoke", epochs=None).settings == chapters.open("cifar10_table", "smoke").settings
    with pytest.raises(ConfigError, match=r"^unknown setting epochz=3 for 'deep_sad'; known: .*epochs"):
        chapters.open("deep_sad", "smoke", epochz=3)
    with pytest.raises(ConfigError, match=r"^svdd_epochs=3: no run of 'oe_size_curves' reads it"):
        chapters.open("oe_size_curves", "smoke", svdd_epochs=3)  # it has no Deep SVDD column
    with pytest.raises(ConfigError, match=r"^svdd_epochs=3: no run of 'cifar10_table' reads it"):
        chapters.open("cifar10_table", "smoke", methods=["HSC + OE"], svdd_epochs=3)
    assert chapters.open("cifar10_table", "paper", methods=["Deep SVDD (no OE)"], classes=[3], seeds=1,
                         svdd_epochs=3).runs[0][1].epochs == 3  # read once combined with the other overrides
    with pytest.raises(ConfigError, match=r"^epochs='ten' must be an integer"):
        chapters.open("clad", "smoke", epochs="ten")
    with pytest.raises(ConfigError, match=r"^unknown method 'HSC'"):
        chapters.open("cifar10_table", "smoke", methods=["HSC"])
    with pytest.raises(ConfigError, match=r"^profile='paper' is set by the chapter"):
        chapters.open("clad", "smoke").settings.replace(profile="paper")


@pytest.mark.parametrize("name", chapters.NOTEBOOKS)
def test_notebooks_follow_the_template(name):
    """A parameters cell, then one cell that opens the chapter with every parameter of the design, one collect;
    the spread, claims and card cells are one call each."""
    cells = [c for c in json.loads((ROOT / "notebooks" / f"{name}.ipynb").read_text())["cells"]
             if c["cell_type"] == "code"]
    source = ["".join(c["source"]) for c in cells]
    ns: dict = {}
    exec(source[0], ns)
    design = [k for k in ns if not k.startswith("__") and k not in ("profile", "results_dir", "executor", "address",
                                                                      "device")]
    assert f'chapters.open("{name}", profile, ' in source[1]
    assert all(f"{k}={k}" in source[1] for k in design), design
    assert sum("ch.collect(results_dir, executor=executor, address=address, device=device)" in s for s in source) == 1
    for call in ("ch.claims(df)", "ch.card(df)"):
        assert sum(call in s for s in source) == 1, call
    for gone in ("report.collect", "report.given", "chapters.settings", "spread_table", "glue_card", "check_execution"):
        assert not any(gone in s for s in source), gone
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in cells)  # committed without outputs
