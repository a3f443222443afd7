import json
import re

import pytest

from adcore import book


@pytest.mark.slow
def test_deep_sad_notebook_runs_under_smoke(tmp_path):
    """Execute the chapter with papermill under the smoke profile into a fresh results store (as
    ``adcore.book.execute`` does), then check that every number the prose quotes was glued."""
    pm = pytest.importorskip("papermill")
    target = tmp_path / "deep_sad.ipynb"
    pm.execute_notebook(str(book.ROOT / "notebooks" / "deep_sad.ipynb"), str(target), cwd=str(book.ROOT),
                        parameters={"profile": "smoke", "results_dir": str(tmp_path / "results")},
                        progress_bar=False, kernel_name="python3")
    nb = json.loads(target.read_text())
    errors = [o for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors
    glued = {o["metadata"]["scrapbook"]["name"] for c in nb["cells"] if c["cell_type"] == "code"
             for o in c.get("outputs", []) if "scrapbook" in o.get("metadata", {})}
    prose = "".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    quoted = set(re.findall(r"\{glue:text\}`([^`]+)`", prose))
    assert quoted and quoted <= glued, quoted - glued
    assert len(list((tmp_path / "results").glob("*.json"))) > 10
