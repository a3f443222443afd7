"""Build the book: papermill executes the notebooks with a profile, jupyter-book renders the executed copies.

``python -m adcore book --profile laptop`` executes every notebook of ``notebooks/`` into
``_build/executed/<profile>/`` (never in place), stages them with the prose chapters, and renders
``_build/html`` with execution off. ``--only NAME`` runs one notebook, ``-p KEY VALUE`` overrides a parameter,
``--no-render`` skips jupyter-book. Results of every run land in the results store (``results/`` by default),
so an interrupted build resumes where it stopped. It builds the checkout that holds the working directory (any
folder of it), else the one adcore was imported from, and says so when there is none.

While a notebook executes, the terminal shows its runs done / total and an ETA (the runner writes its progress to
the file named by ``$ADCORE_PROGRESS``, which this process reads); the build ends with a one-line summary, and the
measured times go into the book's "Reproducing" chapter. Formulas are typeset by a MathJax copied into the built
book (``make setup`` installs it with npm), so the book needs no network; without a local copy it falls back to
the CDN.
"""
from __future__ import annotations

import argparse
import ast
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import yaml

from .config import ConfigError, check_results, parse_value
from .environment import env



def checkout(start: Path | None = None, package: Path = Path(__file__)) -> Path | None:
    """The checkout the book is built from: the folder with ``_toc.yml`` and ``notebooks/`` that holds ``start``
    (the working directory), else the one this package was imported from; None outside any (an installed package
    has no notebooks to build)."""
    here = Path(start or Path.cwd()).resolve()
    return next((d for d in (here, *here.parents, package.resolve().parents[1])
                 if (d / "_toc.yml").is_file() and (d / "notebooks").is_dir()), None)


ROOT = checkout() or Path(__file__).resolve().parents[1]  # main() says so when this is no checkout
BUILD = ROOT / "_build"
MATHJAX = "tex-mml-chtml.js"
# Where a local MathJax 3 may lie: what `make setup` installs with npm, then Debian's node-mathjax-full.
MATHJAX_DIRS = (ROOT / ".cache" / "mathjax" / "node_modules" / "mathjax" / "es5",
                Path("/usr/share/nodejs/mathjax-full/es5"))
# Cells of the executed notebooks a reader need not see: papermill's copy of the parameters (the parameters cell
# shows them already) and cells tagged so in the sources.
HIDDEN = {"injected-parameters": "remove-cell"}


def notebooks(only: list[str] | None = None) -> list[Path]:
    found = sorted((ROOT / "notebooks").glob("*.ipynb"))
    if only:
        names = {p.stem for p in found}
        unknown = [o for o in only if o not in names]
        if unknown:
            raise SystemExit(f"unknown notebook(s) {unknown}; available: {sorted(names)}")
        found = [p for p in found if p.stem in only]
    return found


class _Watch:
    """Prints a notebook's runs done / total and an ETA while it executes, from the lines the runner appends to
    the progress file ("done total" per line)."""

    def __init__(self, name: str, path: Path, every: float = 5.0, quiet: float = 60.0):
        self.name, self.path, self.every, self.quiet = name, path, every, quiet
        self.stop, self.t0, self.last, self.printed = threading.Event(), time.perf_counter(), None, 0.0
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def state(self) -> tuple[int, int] | None:
        try:
            lines = self.path.read_text().split()
        except OSError:
            return None
        return (int(lines[-2]), int(lines[-1])) if len(lines) >= 2 else None

    def line(self, done: int, total: int) -> str:
        elapsed = time.perf_counter() - self.t0
        eta = f", ETA {elapsed / done * (total - done) / 60:.1f} min" if 0 < done < total else ""
        return f"[book] {self.name}: {done}/{total} runs, {elapsed / 60:.1f} min{eta}"

    def _loop(self) -> None:
        """A line when the count changes, else one a minute (so a long run still shows the build is alive)."""
        while not self.stop.wait(self.every):
            state, now = self.state(), time.perf_counter()
            if state is not None and (state != self.last or now - self.printed > self.quiet):
                print(self.line(*state), flush=True)
                self.last, self.printed = state, now

    def close(self) -> tuple[int, int] | None:
        self.stop.set()
        self.thread.join()
        return self.state()


def execute(profile: str, only: list[str] | None = None, params: dict | None = None,
            results: str | None = None, out_dir: Path | None = None) -> list[Path]:
    """Execute notebooks with papermill into ``out_dir`` and return the executed paths; the times and run counts
    go to ``out_dir/timings.json`` (merged with earlier partial builds of the same profile)."""
    import papermill as pm

    out_dir = out_dir or BUILD / "executed" / profile
    out_dir.mkdir(parents=True, exist_ok=True)
    timings_file = out_dir / "timings.json"
    timings = json.loads(timings_file.read_text()) if timings_file.is_file() else {}
    done, t_all = [], time.perf_counter()
    for nb in notebooks(only):
        t0 = time.perf_counter()
        p = {"profile": profile, **(params or {})}
        if results:
            p["results_dir"] = str(Path(results).resolve())
        target = out_dir / nb.name
        print(f"[book] executing {nb.name} (profile {profile}) -> {target}", flush=True)
        with tempfile.NamedTemporaryFile("w", suffix=".progress", delete=False) as f:
            progress = Path(f.name)
        old = env("ADCORE_PROGRESS")
        os.environ["ADCORE_PROGRESS"] = str(progress)  # the kernel inherits the environment
        watch = _Watch(nb.stem, progress)
        try:
            pm.execute_notebook(str(nb), str(target), parameters=p, cwd=str(ROOT), progress_bar=False,
                                kernel_name="python3")
        finally:
            state = watch.close()
            progress.unlink(missing_ok=True)
            if old is None:
                os.environ.pop("ADCORE_PROGRESS", None)
            else:
                os.environ["ADCORE_PROGRESS"] = old
        minutes = (time.perf_counter() - t0) / 60
        trained = state[0] if state else 0
        timings[nb.stem] = {"minutes": round(minutes, 2), "trained": trained}
        print(f"[book] {nb.name} done in {minutes:.1f} min ({trained} runs trained)", flush=True)
        done.append(target)
    timings_file.write_text(json.dumps(timings, indent=1))
    if done:
        parts = ", ".join(f"{nb.stem} {timings[nb.stem]['minutes']:.1f} min" for nb in done)
        print(f"[book] {len(done)} notebook(s) in {(time.perf_counter() - t_all) / 60:.1f} min: {parts}", flush=True)
    return done


def stage(executed: list[Path], stage_dir: Path | None = None) -> Path:
    """A book source tree: config (with a local MathJax when one is installed), toc, prose chapters, the
    measured build times, and the executed notebooks (not the sources), their boilerplate cells hidden."""
    stage_dir = stage_dir or BUILD / "stage"
    if stage_dir.exists():
        shutil.rmtree(stage_dir)
    shutil.copytree(ROOT / "book", stage_dir / "book")
    shutil.copy(ROOT / "references.bib", stage_dir / "references.bib")
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    local = next((d for d in MATHJAX_DIRS if (d / MATHJAX).is_file()), None)
    if local is not None:  # not in _static/: jupyter-book would add every .js there to every page
        shutil.copytree(local, stage_dir / "assets" / "mathjax")
        config.setdefault("sphinx", {}).setdefault("config", {}).update(
            mathjax_path=f"mathjax/{MATHJAX}", html_static_path=["assets"])
    (stage_dir / "_config.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    (stage_dir / "_toc.yml").write_text(yaml.safe_dump(_toc_for({nb.stem for nb in executed}), sort_keys=False))
    timings = [nb.parent / "timings.json" for nb in executed]
    (stage_dir / "book" / "build_times.md").write_text(build_times(
        json.loads(timings[0].read_text()) if timings and timings[0].is_file() else {}))
    (stage_dir / "book" / "claims.md").write_text(claims_page(executed))
    (stage_dir / "notebooks").mkdir()
    for nb in executed:
        _hide_boilerplate(nb, stage_dir / "notebooks" / nb.name)
    return stage_dir


def _glued(cells: list[dict], name: str) -> Any:
    for c in cells:
        for o in c.get("outputs", []):
            if o.get("metadata", {}).get("scrapbook", {}).get("name") == name:
                data = o.get("data", {})  # glue's mime type carries scrapbook's prefix
                text = "".join(next((v for k, v in data.items() if k.endswith("text/plain")), ""))
                try:
                    return ast.literal_eval(text)
                except (ValueError, SyntaxError):
                    return text
    return None


def claims_page(executed: list[Path]) -> str:
    """The intro page's verdicts: every executed chapter's claims table (glued as "claims"), in book order, each
    with the build that decided it; a note when the chapters come from different builds (``--only``)."""
    order = [c["file"].split("/", 1)[1] for part in yaml.safe_load((ROOT / "_toc.yml").read_text())["parts"]
             for c in part["chapters"] if c["file"].startswith("notebooks/")]
    out, builds = [], {}
    for nb in sorted(executed, key=lambda p: order.index(p.stem) if p.stem in order else len(order)):
        cells = json.loads(nb.read_text())["cells"]
        if _glued(cells, "claims") is None:
            continue
        title = next(("".join(c["source"]).split("\n", 1)[0].lstrip("# ") for c in cells
                      if c["cell_type"] == "markdown"), nb.stem)
        b = _glued(cells, "claims_build")  # {profile, executed, adcore}; anything else: an older build's
        b = b if isinstance(b, dict) and {"profile", "executed", "adcore"} <= set(b) else None
        builds[nb.stem] = (b["profile"], b["adcore"], b["executed"][:10]) if b else None
        text = f"profile {b['profile']}, executed {b['executed']}, adcore {b['adcore']}" if b else \
            "build not recorded"
        out += [f"**[{title}](../notebooks/{nb.stem}.ipynb)** ({text})", "", "```{glue} claims",
                f":doc: ../notebooks/{nb.name}", "```", ""]
    if not out:
        return "*No chapter of this build has checked its claims yet.*\n"
    if len(set(builds.values())) > 1 or None in builds.values():  # profile, commit and day must all agree
        out = ["```{note}", "These verdicts come from different builds (chapters executed separately, e.g. with "
               "`--only`): each chapter's line says its profile, time and commit.", "```", ""] + out
    return "\n".join(out)


def build_times(timings: dict) -> str:
    """The "Reproducing" chapter's table of this build's measured times per chapter."""
    if not timings:
        return "*No times were measured for this build (its notebooks were executed elsewhere).*\n"
    rows = [f"| `{nb}` | {t['minutes']:.1f} min | {t['trained']} |" for nb, t in timings.items()]
    total = sum(t["minutes"] for t in timings.values())
    return "\n".join(["| notebook | execution time | runs trained |", "|---|---|---|", *rows,
                      f"| all | {total:.1f} min | {sum(t['trained'] for t in timings.values())} |", ""])


def _hide_boilerplate(src: Path, dst: Path) -> None:
    nb = json.loads(src.read_text())
    for cell in nb["cells"]:
        tags = cell.setdefault("metadata", {}).setdefault("tags", [])
        for tag, hide in HIDDEN.items():
            if tag in tags and hide not in tags:
                tags.append(hide)
    dst.write_text(json.dumps(nb))


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
    """``python -m adcore book`` (or ``python -m adcore.book``): a bad input (unknown notebook, a results path
    that is a file, a bad layout) is one line ``adcore: error: ...`` and exit status 2, before anything runs."""
    from .train import LAYOUT_ENV, LAYOUTS, check_layout

    ap = argparse.ArgumentParser(prog="python -m adcore book", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="laptop", choices=("smoke", "laptop", "paper"),
                    help="smoke | laptop | paper")
    ap.add_argument("--only", action="append", help="notebook name (repeatable), e.g. cifar10_table")
    ap.add_argument("-p", nargs=2, action="append", metavar=("KEY", "VALUE"), default=[],
                    help="override a notebook parameter, e.g. -p seeds 3")
    ap.add_argument("--results", default=None, help="results store folder (default: results/)")
    ap.add_argument("--channels-last", default=None, choices=LAYOUTS,
                    help=f"CPU memory layout of every run (sets ${LAYOUT_ENV}; default auto: NHWC for the LeNets)")
    ap.add_argument("--no-render", action="store_true", help="execute only")
    ap.add_argument("--lenient", action="store_true", help="render without treating warnings as errors")
    ap.error = lambda message: ap.exit(2, f"adcore: error: {message} (see python -m adcore book --help)\n")
    a = ap.parse_args(argv)
    try:
        if checkout() is None:
            raise ConfigError(f"{Path.cwd()} is not in a checkout of adcore (no _toc.yml and notebooks/ there or "
                              "above, nor where adcore was imported from): run it from a clone of the repository")
        check_results(a.results)
        notebooks(a.only)  # an unknown name fails here, before the first notebook executes
        params = {k: parse_value(v) for k, v in a.p}
        if a.channels_last is not None:
            check_layout(a.channels_last)
            os.environ[LAYOUT_ENV] = a.channels_last  # the kernels inherit the environment
    except (ConfigError, SystemExit) as e:
        if isinstance(e, SystemExit) and not isinstance(e.code, str):
            raise
        print(f"adcore: error: {e.code if isinstance(e, SystemExit) else e}", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    executed = execute(a.profile, a.only, params, a.results)
    if not a.no_render:
        if a.only:  # render what was asked together with any other executed copies of this profile
            executed = sorted((BUILD / "executed" / a.profile).glob("*.ipynb"))
        render(stage(executed), strict=not a.lenient)
    print(f"[book] done in {(time.perf_counter() - t0) / 60:.1f} min", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
