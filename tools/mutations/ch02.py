"""Mutations of chapter 2's check cells: each doubles or halves the quantity a check cell tests."""

from tools.mutate import mutation

NB = "book/ch02_generalization_mi.ipynb"

MUTATIONS = [
    mutation("ch02-subgaussian-sigma-half", NB, 'worst = max(worst, float(np.max(cgf / (etas**2 / 2))))',
       'worst = max(worst, float(np.max(cgf / (etas**2 / 8))))',
       "the cosine loss checked against sigma = 1/2 instead of 1 (a factor 2 in sigma)"),
    mutation("ch02-dv-kl-half", NB, 'kl = float(np.sum(P * np.log(P / Q)))', 'kl = float(np.sum(P * np.log(P / Q))) / 2',
       "the KL divergence halved in the Donsker-Varadhan check"),
    mutation("ch02-xr-value-double", NB, 'assert sp.simplify(value - sp.sqrt(2 * sigma**2 * I / n)) == 0',
       'assert sp.simplify(value - 2 * sp.sqrt(2 * sigma**2 * I / n)) == 0',
       "the optimized bound claimed twice its value"),
    mutation("ch02-chi2-mgf-double-exponent", NB, 'assert sp.simplify(mgf_v - (1 + 2 * eta_ / n_) ** (-k_ / 2)) == 0',
       'assert sp.simplify(mgf_v - (1 + 2 * eta_ / n_) ** (-k_)) == 0',
       "the chi-square moment generating function with a doubled exponent"),
    mutation("ch02-majority-bound-half", NB, 'bound = infotheory.mi_bound(0.5, i_sw, n_)\n',
       'bound = infotheory.mi_bound(0.25, i_sw, n_)\n', "the majority vote's bound with sigma halved"),
    mutation("ch02-majority-ratio-double", NB, 'rows.append((n_, rho, gen, i_sw, bound, bound / gen))',
       'rows.append((n_, rho, gen, i_sw, bound, 2 * bound / gen))', "the bound-to-gen ratio doubled"),
    mutation("ch02-majority-ratio-half", NB, 'ratio_100 = float(majority.loc[at_100, "bound / gen"].iloc[0])',
       'ratio_100 = float(majority.loc[at_100, "bound / gen"].iloc[0]) / 2', "the ratio at n = 100 halved"),
    mutation("ch02-isb-double", NB, 'isb = infotheory.individual_sample_bound(0.5, np.full(n_, i_wz))',
       'isb = infotheory.individual_sample_bound(1.0, np.full(n_, i_wz))',
       "the individual-sample bound doubled (it must stay below Xu-Raginsky)"),
    mutation("ch02-isb-half", NB, 'xr = infotheory.mi_bound(0.5, i_sw, n_)\n        assert abs(gen) <= isb + 1e-12',
       'xr = infotheory.mi_bound(0.5, i_sw, n_)\n        isb = isb / 2\n        assert abs(gen) <= isb + 1e-12',
       "the individual-sample bound halved (it must stay above |gen|)"),
    mutation("ch02-noisy-mean-gen-double", NB, 'closed = 2 * sp.sinh(1 / (2 * n)) * sp.exp(-(1 + tau**2) / 2)',
       'closed = 4 * sp.sinh(1 / (2 * n)) * sp.exp(-(1 + tau**2) / 2)', "the noisy mean's gen doubled"),
    mutation("ch02-memorizer-gen-double", NB, 'closed_k = k_mem / n_cmi * math.exp(-0.5) * math.sinh(1 / (2 * k_mem))',
       'closed_k = 2 * k_mem / n_cmi * math.exp(-0.5) * math.sinh(1 / (2 * k_mem))',
       "the memorizer's generalization error doubled (Monte Carlo catches it)"),
    mutation("ch02-majority-cmi-double", NB, 'cmi_n = toy_learners.majority_cmi(n_, 0.3, 0.1)',
       'cmi_n = 2 * toy_learners.majority_cmi(n_, 0.3, 0.1)',
       "the majority vote's CMI doubled (it must stay below I(S;W))"),
    mutation("ch02-ratio-limit-double", NB, 'assert tau_best == [1] and best_ratio == sp.E',
       'assert tau_best == [1] and best_ratio == 2 * sp.E', "the asymptotic ratio claimed as 2e"),
]
