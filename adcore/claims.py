"""Rules that decide a paper's claim from paired runs: each verdict is a stated test that can fail.

A claim compares methods (or settings) run on the same units, a unit being one (normal class, seed): the runs of
one unit share their data, their OE subset and their initial seed, so the per-unit difference removes what the
units have in common and leaves the effect plus the runs' own noise. :func:`contrast` forms those per-unit
values, from the one frame of runs, for any weighted sum of settings (a - b, or "the gain at 32 OE samples minus
70 % of the gain at the largest size"); its standard error comes from the same runs, never from a spread
measured elsewhere. Three rules decide:

* :func:`greater` ("a beats b"): a one-sided paired t-test of mean > 0 at level :data:`ALPHA`;
* :func:`at_least` ("a matches or beats b"): non-inferiority, mean > -margin, one-sided at :data:`ALPHA`;
* :func:`equal` ("a and b are equal"): two one-sided tests (TOST), the (1 - 2 ALPHA) interval inside
  ± margin. More noise widens the interval, so a noisy build passes *less* often.

When a rule fails, the verdict is "not reproduced" where the data contradict the claim (significant at ALPHA
the other way, or an interval outside the margin) or where the test could have seen the paper's effect; if the
smallest effect it detects with probability :data:`POWER` is larger than the effect the paper reports (or, for
``equal``, the interval's half-width alone exceeds the margin) the verdict is "not testable" and says so. A setting that was not run makes the rule "not testable (... not run)".
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

ALPHA = 0.05  # one-sided level of every test (the Deep SAD paper's Wilcoxon tests use 0.05 as well)
POWER = 0.8  # the power at which the detectable effect is quoted
MARGIN = 2.0  # AUC points: the equivalence / non-inferiority margin of "equal", "on par", "competitive" (ours)
UNITS = ("normal_class", "seed")
VERDICTS = ("reproduced", "partly", "not reproduced", "not testable")

Selector = Mapping[str, Any]  # column -> value: the rows of one setting (floats compared with isclose)


def _rows(frame: pd.DataFrame, sel: Selector) -> pd.DataFrame:
    keep = np.ones(len(frame), bool)
    for col, val in sel.items():
        if col not in frame:
            return frame.iloc[:0]
        v = frame[col]
        keep &= np.isclose(v.astype(float), float(val)) if isinstance(val, float) else (v == val).to_numpy()
    return frame[keep]


def name(sel: Selector) -> str:
    return ", ".join(str(v) for v in sel.values())


@dataclass(frozen=True)
class Paired:
    """Per-unit values of a contrast: ``values`` (one per unit present in every term), its readable ``label``,
    and ``missing``: the settings that no run of the frame has."""
    values: pd.Series
    label: str
    missing: tuple[str, ...] = ()

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        return float(self.values.mean()) if self.n else float("nan")

    @property
    def se(self) -> float:
        return float(self.values.std(ddof=1) / np.sqrt(self.n)) if self.n >= 2 else float("nan")

    def t(self, q: float) -> float:
        return float(stats.t.ppf(q, self.n - 1)) if self.n >= 2 else float("nan")

    def p_above(self, bound: float) -> float:
        """One-sided p-value of mean > bound (paired t-test); 0 or 1 when every unit agrees exactly."""
        if self.n < 2:
            return float("nan")
        if self.se == 0:
            return 0.0 if self.mean > bound else 1.0
        return float(stats.t.sf((self.mean - bound) / self.se, self.n - 1))

    def detectable(self) -> float:
        """The smallest true effect the one-sided test at ALPHA finds with probability POWER, at this SE."""
        return (self.t(1 - ALPHA) + self.t(POWER)) * self.se

    def text(self) -> str:
        if self.missing:
            return f"{self.label}: {' and '.join(self.missing)} not run"
        if self.n < 2:
            return f"{self.label}: {self.mean:+.1f} (n = {self.n}: no standard error)"
        return f"{self.label}: {self.mean:+.1f} (SE {self.se:.1f}, n = {self.n})"


def contrast(frame: pd.DataFrame, terms: Sequence[tuple[float, Selector]], label: str,
             value: str = "auc", units: Sequence[str] = UNITS) -> Paired:
    """Σ weight · value over ``terms``, per unit (the units present in every term; a unit's repeated runs of one
    setting are averaged). ``label`` names it in the claims table."""
    parts, missing = [], []
    for w, sel in terms:
        rows = _rows(frame, sel)
        if not len(rows):
            missing.append(name(sel))
            continue
        parts.append(w * rows.groupby(list(units))[value].mean())
    if missing:
        return Paired(pd.Series(dtype=float), label, tuple(dict.fromkeys(missing)))
    total = pd.concat(parts, axis=1).dropna().sum(axis=1)
    return Paired(total, label)


def diff(frame: pd.DataFrame, a: Selector, b: Selector, label: str | None = None, **kw: Any) -> Paired:
    """a - b per unit."""
    return contrast(frame, [(1.0, a), (-1.0, b)], label or f"{name(a)} − {name(b)}", **kw)


@dataclass(frozen=True)
class Decision:
    """A rule's verdict on one contrast and the sentence that says how it was reached."""
    verdict: str
    because: str
    absent: bool = False  # not testable because a setting was not run (or its data are absent)

    def __str__(self) -> str:
        return self.verdict if self.verdict != "not testable" else f"not testable ({self.because})"


def _untestable(p: Paired) -> Decision | None:
    if p.missing:
        return Decision("not testable", f"{' and '.join(p.missing)} not run in this build", absent=True)
    if p.n < 2:
        return Decision("not testable", f"{p.n} paired run{'s' if p.n != 1 else ''}: no standard error")
    return None


def greater(p: Paired, effect: float | None = None) -> Decision:
    """mean > 0, one-sided paired t at ALPHA. ``effect``: the paper's effect, for the power check."""
    return _decide(p, 0.0, effect, f"the paper's effect {effect:+.1f}" if effect is not None else None)


def at_least(p: Paired, margin: float = MARGIN, effect: float | None = None) -> Decision:
    """Non-inferiority: mean > -margin, one-sided paired t at ALPHA. Its power is judged at the paper's ``effect``
    (default 0: "as good as"), which lies margin + effect above the bound."""
    e = effect if effect is not None else 0.0
    return _decide(p, -margin, margin + e, f"a mean of {e:+.1f} is {margin + e:.1f} above the bound")


def _decide(p: Paired, bound: float, effect: float | None, said: str | None) -> Decision:
    """Reproduced when mean > bound at ALPHA; not reproduced when the data say the opposite at ALPHA (mean <
    bound) or the test could have seen ``effect`` (its distance above the bound); otherwise not testable."""
    if bad := _untestable(p):
        return bad
    pv = p.p_above(bound)
    how = (f"p = {pv:.3f} for mean > {bound:+g}; detects ≥ {p.detectable():.1f} above it"
           + (f" ({said})" if said else ""))
    return _verdict(pv, p.detectable(), effect, how)


def _verdict(pv: float, detect: float, effect: float | None, how: str) -> Decision:
    """The one decision of every one-sided test: passed at ALPHA; else contradicted (significant the other way)
    or able to see ``effect``: not reproduced; else not testable for lack of power."""
    if pv < ALPHA:
        return Decision("reproduced", how)
    if pv > 1 - ALPHA or effect is None or detect <= effect:
        return Decision("not reproduced", how)
    return Decision("not testable", f"the test lacks power: {how}")


def equal(p: Paired, margin: float = MARGIN) -> Decision:
    """Equivalence (TOST): the (1 - 2 ALPHA) interval of the mean inside ± margin."""
    if bad := _untestable(p):
        return bad
    half = p.t(1 - ALPHA) * p.se
    lo, hi = p.mean - half, p.mean + half
    how = f"{100 * (1 - 2 * ALPHA):.0f} % interval [{lo:+.1f}, {hi:+.1f}], margin ± {margin:g}"
    if -margin < lo and hi < margin:
        return Decision("reproduced", how)
    if lo >= margin or hi <= -margin or half < margin:  # outside the margin, or narrow enough to have passed
        return Decision("not reproduced", how)
    return Decision("not testable", f"the test lacks power: {how}, half-width {half:.1f} ≥ margin")


def welch_greater(a: Paired, b: Paired, effect: float | None = None) -> Decision:
    """mean(a) > mean(b) for two sets of per-unit values on different units (Welch's t, one-sided at ALPHA)."""
    if bad := _untestable(a) or _untestable(b):
        return bad
    se = float(np.hypot(a.se, b.se))
    d = a.mean - b.mean
    dof = se ** 4 / ((a.se ** 4) / (a.n - 1) + (b.se ** 4) / (b.n - 1)) if se > 0 else a.n + b.n - 2
    pv = float(stats.t.sf(d / se, dof)) if se > 0 else (0.0 if d > 0 else 1.0)
    detect = (stats.t.ppf(1 - ALPHA, dof) + stats.t.ppf(POWER, dof)) * se
    how = (f"difference {d:+.1f} (SE {se:.1f}), p = {pv:.3f}; detects ≥ {detect:.1f}"
           + (f" (paper's effect {effect:+.1f})" if effect is not None else ""))
    return _verdict(pv, float(detect), effect, how)


def combine(*parts: Decision) -> Decision:
    """A claim of several parts: reproduced when every part is; partly when some are and the others were
    tested (or lack power); not testable when a part's settings were not run, or no part could be tested; not
    reproduced otherwise."""
    verdicts = [d.verdict for d in parts]
    because = "; ".join(f"part {i + 1}: {d.verdict}, {d.because}" for i, d in enumerate(parts))
    absent = [d.because for d in parts if d.absent]
    if absent:
        return Decision("not testable", "; ".join(dict.fromkeys(absent)), absent=True)
    if all(v == "reproduced" for v in verdicts):
        return Decision("reproduced", because)
    if "reproduced" in verdicts:
        return Decision("partly", because)
    if all(v == "not testable" for v in verdicts):
        return Decision("not testable", because)
    return Decision("not reproduced", because)


def row(claim: str, where: str, published: str, measured: str, rule: str, decision: Decision | str
        ) -> dict[str, str]:
    """One row of a chapter's claims table. ``claim``: the paper's statement (quote or close paraphrase; "ours:"
    when the paper does not make it); ``where``: its place in the paper; ``published``: the paper's number, or
    what is known of it; ``measured``: this build's contrast with its SE; ``rule``: the test; the verdict."""
    verdict = str(decision)
    if verdict.split(" (", 1)[0] not in VERDICTS:
        raise ValueError(f"unknown verdict {verdict!r}; choose one of {', '.join(VERDICTS)}")
    if isinstance(decision, Decision) and decision.verdict != "not testable":
        measured = f"{measured}; {decision.because}"
    return {"claim": claim, "where": where, "paper": published, "this build": measured, "rule": rule,
            "verdict": verdict}


def table(rows: list[dict[str, str]]) -> pd.DataFrame:
    out = pd.DataFrame(rows, columns=["claim", "where", "paper", "this build", "rule", "verdict"])
    out.index = range(1, len(out) + 1)
    return out
