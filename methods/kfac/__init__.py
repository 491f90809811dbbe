"""K-FAC curvature edit (Merullo et al. 2025, "From Memorization to Reasoning in the Spectrum of
Loss Curvature"): remove the low-curvature components of MLP weights.

For each edited linear layer with weight W (out x in):
  1. A = E[x x^T] over the layer's inputs, G = E[g g^T] over the loss gradient w.r.t. its outputs,
     both averaged over positions of a general text stream (no memorized examples needed).
  2. A = U_A diag(mu) U_A^T, G = U_G diag(lam) U_G^T (fp32 eigh, no damping; tiny negative
     eigenvalues from rounding are clamped to 0).
  3. C = U_G^T W U_A; component (i, j) carries curvature mass lam_i * mu_j.
  4. Keep the fewest components, largest mass first, whose mass sums to >= rho * sum(lam) * sum(mu).
  5. W' = U_G (C * M) U_A^T, written as W - U_G (C * (1 - M)) U_A^T: the same matrix, but W stays
     bit-identical when nothing is removed and rounding scales with what is removed.

One idea per file: statistics.py (hooks, the factors and the G convention), distributed.py (the
sum over torchrun ranks), cache.py (the factor files), spectrum.py (eigh and the selection),
edit.py (one matrix), method.py (the Method class and its settings).
"""

from methods.kfac.cache import FACTOR_FORMAT, factors_problem, load_factors, save_factors
from methods.kfac.distributed import distributed_world
from methods.kfac.edit import kfac_edit_weight
from methods.kfac.method import KFAC
from methods.kfac.spectrum import eigh_descending, keep_counts
from methods.kfac.statistics import (DTYPES, LABELS, Factors, check_finite, collect_kfac_factors, factors_to,
                                     label_generator, layer_of, merge_factors)

__all__ = ["DTYPES", "FACTOR_FORMAT", "KFAC", "LABELS", "Factors", "check_finite", "collect_kfac_factors",
           "distributed_world", "eigh_descending", "factors_problem", "factors_to", "keep_counts", "kfac_edit_weight",
           "label_generator", "layer_of", "load_factors", "merge_factors", "save_factors"]
