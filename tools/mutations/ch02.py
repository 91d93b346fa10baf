"""Mutations of chapter 2's check cells: each doubles or halves the quantity a check cell tests."""

NB = "book/ch02_generalization_mi.ipynb"


def _m(id_, find, replace, why):
    return dict(id=id_, target=NB, find=find, replace=replace, why=why, tests=[], notebooks=[NB])


MUTATIONS = [
    _m("ch02-subgaussian-sigma-half", 'worst = max(worst, float(np.max(cgf / (etas**2 / 2))))',
       'worst = max(worst, float(np.max(cgf / (etas**2 / 8))))',
       "the cosine loss checked against sigma = 1/2 instead of 1 (a factor 2 in sigma)"),
    _m("ch02-dv-kl-half", 'kl = float(np.sum(P * np.log(P / Q)))', 'kl = float(np.sum(P * np.log(P / Q))) / 2',
       "the KL divergence halved in the Donsker-Varadhan check"),
    _m("ch02-xr-value-double", 'assert sp.simplify(value - sp.sqrt(2 * sigma**2 * I / n)) == 0',
       'assert sp.simplify(value - 2 * sp.sqrt(2 * sigma**2 * I / n)) == 0',
       "the optimized bound claimed twice its value"),
    _m("ch02-psi-chi2-half", 'return eta_v - (n_v - 1) / 2 * math.log1p(2 * eta_v / n_v) - 0.5 * math.log(arg)',
       'return eta_v - (n_v - 1) / 4 * math.log1p(2 * eta_v / n_v) - 0.5 * math.log(arg)',
       "the chi-square term of the squared-loss CGF halved (Monte Carlo catches it)"),
    _m("ch02-chi2-mgf-double-exponent", 'assert sp.simplify(mgf_v - (1 + 2 * eta_ / n_) ** (-k_ / 2)) == 0',
       'assert sp.simplify(mgf_v - (1 + 2 * eta_ / n_) ** (-k_)) == 0',
       "the chi-square moment generating function with a doubled exponent"),
    _m("ch02-majority-bound-half", 'bound = infotheory.mi_bound(0.5, i_sw, n_)\n',
       'bound = infotheory.mi_bound(0.25, i_sw, n_)\n', "the majority vote's bound with sigma halved"),
    _m("ch02-majority-ratio-double", 'rows.append((n_, rho, gen, i_sw, bound, bound / gen))',
       'rows.append((n_, rho, gen, i_sw, bound, 2 * bound / gen))', "the bound-to-gen ratio doubled"),
    _m("ch02-majority-ratio-half", 'ratio_100 = float(majority.loc[at_100, "bound / gen"].iloc[0])',
       'ratio_100 = float(majority.loc[at_100, "bound / gen"].iloc[0]) / 2', "the ratio at n = 100 halved"),
    _m("ch02-isb-double", 'isb = infotheory.individual_sample_bound(0.5, np.full(n_, i_wz))',
       'isb = infotheory.individual_sample_bound(1.0, np.full(n_, i_wz))',
       "the individual-sample bound doubled (it must stay below Xu-Raginsky)"),
    _m("ch02-isb-half", 'xr = infotheory.mi_bound(0.5, i_sw, n_)\n        assert abs(gen) <= isb + 1e-12',
       'xr = infotheory.mi_bound(0.5, i_sw, n_)\n        isb = isb / 2\n        assert abs(gen) <= isb + 1e-12',
       "the individual-sample bound halved (it must stay above |gen|)"),
    _m("ch02-noisy-mean-gen-double", 'closed = 2 * sp.sinh(1 / (2 * n)) * sp.exp(-(1 + tau**2) / 2)',
       'closed = 4 * sp.sinh(1 / (2 * n)) * sp.exp(-(1 + tau**2) / 2)', "the noisy mean's gen doubled"),
    _m("ch02-noisy-mean-mc-half", 'mc_mean.append(gap.mean())', 'mc_mean.append(gap.mean() / 2)',
       "the simulated generalization error halved"),
    _m("ch02-cmi-half", 'cmi_k = float(np.mean(ent))', 'cmi_k = float(np.mean(ent)) / 2',
       "the memorizer's CMI halved (must equal k log 2)"),
    _m("ch02-memorizer-gen-double", 'closed_k = k_mem / n_cmi * math.exp(-0.5) * math.sinh(1 / (2 * k_mem))',
       'closed_k = 2 * k_mem / n_cmi * math.exp(-0.5) * math.sinh(1 / (2 * k_mem))',
       "the memorizer's generalization error doubled (Monte Carlo catches it)"),
    _m("ch02-majority-cmi-double", 'cmi_n = majority_cmi(n_, 0.3, 0.1)', 'cmi_n = 2 * majority_cmi(n_, 0.3, 0.1)',
       "the majority vote's CMI doubled (it must stay below I(S;W))"),
    _m("ch02-ratio-limit-double", 'assert tau_best == [1] and best_ratio == sp.E',
       'assert tau_best == [1] and best_ratio == 2 * sp.E', "the asymptotic ratio claimed as 2e"),
]
