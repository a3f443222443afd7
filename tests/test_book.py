"""The book under the smoke profile: every notebook executes with papermill, the book renders with warnings as
errors, and re-execution reads finished runs from the results store instead of training again."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from adcore import book

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def smoke_build(tmp_path_factory):
    results = tmp_path_factory.mktemp("results")
    out = tmp_path_factory.mktemp("executed")
    executed = book.execute("smoke", results=str(results), out_dir=out)
    return results, executed


def test_notebooks_in_git_carry_no_outputs():
    for nb in book.notebooks():
        cells = json.loads(nb.read_text())["cells"]
        assert all(not c.get("outputs") and c.get("execution_count") is None for c in cells if c["cell_type"] == "code"), nb
        assert "parameters" in cells[1]["metadata"].get("tags", []) or any(
            "parameters" in c["metadata"].get("tags", []) for c in cells[:3]), nb
        ids = [c.get("id") for c in cells]  # nbformat 4.5: a missing id is to become an error
        assert None not in ids and len(set(ids)) == len(ids), nb


def test_every_notebook_executes_under_smoke(smoke_build):
    results, executed = smoke_build
    assert {p.stem for p in executed} == {p.stem for p in book.notebooks()}
    for nb in executed:
        cells = json.loads(nb.read_text())["cells"]
        errors = [o for c in cells if c["cell_type"] == "code" for o in c.get("outputs", [])
                  if o.get("output_type") == "error"]
        assert not errors, (nb, errors)
    assert len(list(Path(results).glob("*.json"))) > 0


@pytest.fixture(scope="module")
def rendered(smoke_build, tmp_path_factory):
    _, executed = smoke_build
    out = tmp_path_factory.mktemp("html")
    return book.render(book.stage(executed, out / "stage"), strict=True, out=out)


def test_book_renders_strictly(rendered):
    assert (rendered / "notebooks" / "cifar10_table.html").exists()
    page = (rendered / "notebooks" / "cifar10_table.html").read_text()
    assert "Run card" in page and "smoke" in page


def _needed(what: str, ok: bool) -> None:
    """CI installs Chromium and MathJax (.ci/run, make setup): there a missing one fails; elsewhere it skips."""
    if not ok:
        (pytest.fail if os.environ.get("CI") else pytest.skip)(f"{what} is not installed")


def test_math_is_typeset_offline(rendered, tmp_path):
    """The methods page loads the MathJax copied into the book and, in headless Chromium with no network, every
    formula is typeset: no raw \\( ... \\) is left in the rendered DOM."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    _needed("chromium", chromium is not None)
    _needed("a local MathJax (make setup)", any((d / book.MATHJAX).is_file() for d in book.MATHJAX_DIRS))
    page = rendered / "book" / "methods.html"
    assert f"_static/mathjax/{book.MATHJAX}" in page.read_text() and "cdn.jsdelivr" not in page.read_text()
    dom = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                          "--disable-background-networking", "--disable-component-update", "--disable-sync",
                          f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=20000", "--dump-dom",
                          page.as_uri()], capture_output=True, text=True, timeout=180).stdout
    assert dom.count("<mjx-container") > 20, dom[:2000]
    assert "\\(" not in dom and "\\[" not in dom


def test_reexecution_runs_nothing_new(smoke_build, tmp_path):
    results, _ = smoke_build
    before = {p.name: p.stat().st_mtime_ns for p in Path(results).glob("*.json")}
    book.execute("smoke", only=["oe_size_curves"], results=str(results), out_dir=tmp_path)
    after = {p.name: p.stat().st_mtime_ns for p in Path(results).glob("*.json")}
    assert after == before


def test_parameter_values_parse_like_papermill():
    assert book.parse_value("3") == 3 and book.parse_value("[0, 1]") == [0, 1]
    assert book.parse_value("cifar100") == "cifar100"
    with pytest.raises(SystemExit, match="unknown notebook"):
        book.notebooks(["nope"])


def test_the_book_builds_from_any_folder_of_a_checkout_and_says_so_elsewhere(tmp_path, monkeypatch, capsys):
    assert book.checkout(ROOT / "book") == ROOT == book.checkout(ROOT / "notebooks")
    assert book.checkout(tmp_path, package=tmp_path / "site-packages" / "adcore" / "book.py") is None  # installed
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-m", "adcore", "book", "--only", "nope"], cwd=ROOT / "book", env=env,
                       capture_output=True, text=True)
    assert r.returncode == 2 and "unknown notebook(s) ['nope']; available: [" in r.stderr and "'clad'" in r.stderr
    monkeypatch.setattr(book, "checkout", lambda *a, **k: None)
    monkeypatch.chdir(tmp_path)
    assert book.main(["--only", "cifar10_table", "--no-render"]) == 2
    assert capsys.readouterr().err.startswith(f"adcore: error: {tmp_path} is not in a checkout of adcore")


def _executed(path, build):
    """A stand-in executed notebook: a title and the two glued outputs the claims page reads."""
    glued = lambda name, text: {"output_type": "display_data",  # noqa: E731 - as myst_nb.glue writes it
                                "data": {"application/papermill.record/text/plain": repr(text)},
                                "metadata": {"scrapbook": {"name": name,
                                                           "mime_prefix": "application/papermill.record/"}}}
    nb = {"cells": [{"cell_type": "markdown", "metadata": {}, "source": ["# A chapter\n"]},
                    {"cell_type": "code", "metadata": {}, "source": [], "outputs": [glued("claims", "table"),
                                                                                  glued("claims_build", build)]}]}
    path.write_text(json.dumps(nb))
    return path


def test_claims_page_names_each_chapters_build_and_says_when_builds_differ(tmp_path):
    one = {"profile": "laptop", "executed": "2026-12-07 16:00 UTC", "adcore": "abc"}
    a = _executed(tmp_path / "cifar10_table.ipynb", one)
    b = _executed(tmp_path / "clad.ipynb", {**one, "executed": "2026-12-07 16:09 UTC"})  # same build, minutes on
    page = book.claims_page([b, a])
    assert page.index("cifar10_table") < page.index("clad.ipynb")  # book order
    assert "(profile laptop, executed 2026-12-07 16:00 UTC, adcore abc)" in page and "different builds" not in page
    for other in ({"profile": "smoke"}, {"adcore": "def"}, {"executed": "2026-12-08 09:00 UTC"}):
        page = book.claims_page([a, _executed(tmp_path / "clad.ipynb", {**one, **other})])
        assert "These verdicts come from different builds" in page and next(iter(other.values())) in page
    # an executed notebook of an older build (its build glued as a sentence) is said to be another build
    page = book.claims_page([a, _executed(tmp_path / "clad.ipynb", "profile laptop, executed 2026-12-07 16:00")])
    assert "(build not recorded)" in page and "different builds" in page
    bare = tmp_path / "deep_sad.ipynb"
    bare.write_text(json.dumps({"cells": [{"cell_type": "markdown", "metadata": {}, "source": ["# x"]}]}))
    assert book.claims_page([bare]).startswith("*No chapter")
