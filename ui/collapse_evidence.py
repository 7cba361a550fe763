"""What the batch-norm comparison measured, in the same words on the Batch norm and the Mode collapse pages.

The Mode collapse page's BCE demo is the digits GAN with batch norm removed from G (so D wins early), and the Batch norm
page trains that GAN with and without batch norm in G. Both pages quote one sentence, built here from the server's
shared comparison (ui.comparisons) and read with the comparison's own prediction rule, so they cannot disagree.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from gan_core.lessons.comparisons import BOTH, NEITHER, get_comparison
from ui import comparisons

NAME = "batchnorm"
WITH, WITHOUT = "batch norm", "no batch norm"  # the comparison's variant labels
BN_PAGE, MC_PAGE = "app_pages/batch_norm.py", "app_pages/mode_collapse.py"


def sentence(seed: int, measured: Mapping[str, float]) -> str | None:
    """"On seed 0, without batch norm G drew 1 of 10 digits; with it, 9. ..." from the digits each run covered at its
    last snapshot; None while a number is missing."""
    prediction = get_comparison(NAME).prediction
    right = prediction.outcome(measured)
    with_bn, without = measured.get(WITH, math.nan), measured.get(WITHOUT, math.nan)
    if right is None or not (math.isfinite(with_bn) and math.isfinite(without)):
        return None
    few = f"{prediction.margin:.0f} or fewer"
    verdict = {WITHOUT: f"only the run without batch norm collapsed to {few}",
               WITH: f"only the run with batch norm collapsed to {few}",
               BOTH: f"both collapsed to {few}", NEITHER: f"neither collapsed to {few}"}[right]
    return (f"On seed {seed}, without batch norm G drew {without:.0f} of 10 digits; with it, {with_bn:.0f}: "
            f"{verdict}. One seed of one small GAN, measured on this server.")


def measured() -> str | None:
    """The sentence for the server's batch-norm comparison once both its runs have ended; None before."""
    snaps = comparisons.runs(NAME)
    if snaps is None or any(s.status.active for s in snaps.values()):
        return None
    seed = next(iter(snaps.values())).config.seed
    return sentence(seed, {label: comparisons.classes_covered(s) for label, s in snaps.items()})
