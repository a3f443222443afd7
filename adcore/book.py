"""Build the book: papermill executes the notebooks with a profile, jupyter-book renders the executed copies.

``python -m adcore.book --profile laptop`` executes every notebook of ``notebooks/`` into
``_build/executed/<profile>/`` (never in place), stages them with the prose chapters, and renders
``_build/html`` with execution off. ``--only NAME`` runs one notebook, ``-p KEY VALUE`` overrides a parameter,
``--no-render`` skips jupyter-book. Results of every run land in the results store (``results/`` by default),
so an interrupted build resumes where it stopped.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

from .config import parse_value

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "_build"


def notebooks(only: list[str] | None = None) -> list[Path]:
    found = sorted((ROOT / "notebooks").glob("*.ipynb"))
    if only:
        names = {p.stem for p in found}
        unknown = [o for o in only if o not in names]
        if unknown:
            raise SystemExit(f"unknown notebook(s) {unknown}; available: {sorted(names)}")
        found = [p for p in found if p.stem in only]
    return found


def execute(profile: str, only: list[str] | None = None, params: dict | None = None,
            results: str | None = None, out_dir: Path | None = None) -> list[Path]:
    """Execute notebooks with papermill into ``out_dir`` and return the executed paths."""
    import papermill as pm

    out_dir = out_dir or BUILD / "executed" / profile
    out_dir.mkdir(parents=True, exist_ok=True)
    done = []
    for nb in notebooks(only):
        t0 = time.perf_counter()
        p = {"profile": profile, **(params or {})}
        if results:
            p["results_dir"] = str(Path(results).resolve())
        target = out_dir / nb.name
        print(f"[book] executing {nb.name} (profile {profile}) -> {target}", flush=True)
        pm.execute_notebook(str(nb), str(target), parameters=p, cwd=str(ROOT), progress_bar=False,
                            kernel_name="python3")
        print(f"[book] {nb.name} done in {time.perf_counter() - t0:.0f} s", flush=True)
        done.append(target)
    return done


def stage(executed: list[Path], stage_dir: Path | None = None) -> Path:
    """A book source tree: config, toc, prose chapters and the executed notebooks (not the sources)."""
    stage_dir = stage_dir or BUILD / "stage"
    if stage_dir.exists():
        shutil.rmtree(stage_dir)
    shutil.copytree(ROOT / "book", stage_dir / "book")
    for f in ("_config.yml", "references.bib"):
        shutil.copy(ROOT / f, stage_dir / f)
    (stage_dir / "_toc.yml").write_text(yaml.safe_dump(_toc_for({nb.stem for nb in executed}), sort_keys=False))
    (stage_dir / "notebooks").mkdir()
    for nb in executed:
        shutil.copy(nb, stage_dir / "notebooks" / nb.name)
    return stage_dir


def _toc_for(present: set[str]) -> dict:
    """The book's table of contents without the notebooks that were not executed (a partial build)."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    for part in toc.get("parts", []):
        part["chapters"] = [c for c in part["chapters"] if not c["file"].startswith("notebooks/")
                            or c["file"].split("/", 1)[1] in present]
    toc["parts"] = [p for p in toc.get("parts", []) if p["chapters"]]
    return toc


def render(stage_dir: Path, strict: bool = True, out: Path = ROOT) -> Path:
    """jupyter-book build of the staged tree with execution off into ``out``/_build/html; warnings are errors
    when ``strict``."""
    cmd = [str(Path(sys.executable).with_name("jupyter-book")), "build", str(stage_dir), "--path-output", str(out)]
    if strict:
        cmd += ["-W", "-n", "--keep-going"]
    subprocess.run(cmd, check=True)
    html = Path(out) / "_build" / "html"
    print(f"[book] rendered {html}/index.html", flush=True)
    return html


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m adcore.book", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="laptop", help="smoke | laptop | paper")
    ap.add_argument("--only", action="append", help="notebook name (repeatable), e.g. cifar10_table")
    ap.add_argument("-p", nargs=2, action="append", metavar=("KEY", "VALUE"), default=[],
                    help="override a notebook parameter, e.g. -p seeds 3")
    ap.add_argument("--results", default=None, help="results store folder (default: results/)")
    ap.add_argument("--no-render", action="store_true", help="execute only")
    ap.add_argument("--lenient", action="store_true", help="render without treating warnings as errors")
    a = ap.parse_args(argv)
    params = {k: parse_value(v) for k, v in a.p}
    executed = execute(a.profile, a.only, params, a.results)
    if not a.no_render:
        if a.only:  # render what was asked together with any other executed copies of this profile
            executed = sorted((BUILD / "executed" / a.profile).glob("*.ipynb"))
        render(stage(executed), strict=not a.lenient)
    return 0


if __name__ == "__main__":
    sys.exit(main())
