"""The book under the smoke profile: every notebook executes with papermill, the book renders with warnings as
errors, and re-execution reads finished runs from the results store instead of training again."""
import json
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


def test_every_notebook_executes_under_smoke(smoke_build):
    results, executed = smoke_build
    assert {p.stem for p in executed} == {p.stem for p in book.notebooks()}
    for nb in executed:
        cells = json.loads(nb.read_text())["cells"]
        errors = [o for c in cells if c["cell_type"] == "code" for o in c.get("outputs", [])
                  if o.get("output_type") == "error"]
        assert not errors, (nb, errors)
    assert len(list(Path(results).glob("*.json"))) > 0


def test_book_renders_strictly(smoke_build, tmp_path):
    _, executed = smoke_build
    html = book.render(book.stage(executed, tmp_path / "stage"), strict=True, out=tmp_path)
    assert (html / "notebooks" / "cifar10_table.html").exists()
    page = (html / "notebooks" / "cifar10_table.html").read_text()
    assert "Run card" in page and "smoke" in page


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
