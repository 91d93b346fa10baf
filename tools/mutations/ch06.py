"""Mutations of chapter 6: lib/poprisk/linreg_studies.py and the check cells of
book/ch06_linear_regression.ipynb; each halves or doubles a quantity, drops a term or flips an inequality."""

from tools.mutate import mutation

NB = "book/ch06_linear_regression.ipynb"
LIB = "lib/poprisk/linreg_studies.py"
T = ["tests/test_linreg_studies.py"]
CH06 = [NB]

MUTATIONS = [
    mutation("ch06-ridge-drop-noise", LIB, "return model.noise_var + float(np.sum(c * (s - c) / s))",
             "return float(np.sum(c * (s - c) / s))", "the ridge risk without its irreducible noise sigma^2",
             tests=T, notebooks=CH06),
    mutation("ch06-ridge-penalty-double", LIB, "model.noise_var / model.prior_var * np.eye(d)",
             "2 * model.noise_var / model.prior_var * np.eye(d)",
             "the simulated ridge with twice the Bayes penalty", tests=T, notebooks=CH06),
    mutation("ch06-numeric-helps-flipped", LIB, "numeric < model.uncompressed().population * (1 - 1e-12)",
             "numeric > model.uncompressed().population * (1 - 1e-12)",
             "the numerical 'compression helps' with its inequality flipped", tests=T, notebooks=CH06),
    mutation("ch06-map-mismatch-flipped", LIB, "mismatch += int((best < p0) != model.helps())",
             "mismatch += int((best > p0) != model.helps())",
             "the map's 'helps' with its inequality flipped", tests=T, notebooks=CH06),
    mutation("ch06-bound-minimum-half", LIB, "+ model.gen_bound(rate=r, information=information)",
             "+ 0.5 * model.gen_bound(rate=r, information=information)",
             "the upper bound minimized with its gen bound halved", tests=T, notebooks=CH06),
    mutation("ch06-cell-conditional-bound-half", NB,
             '[u_model.gen_bound(rate=r, information="conditional") for r in bound_rates]',
             '[0.5 * u_model.gen_bound(rate=r, information="conditional") for r in bound_rates]',
             "the conditional bound halved (it must stay above the exact gen)"),
    mutation("ch06-cell-psi-drop-noncentral", NB,
             ") + n_s * Delta / sigma**2 * 2 * u_s**2 / (1 + 2 * u_s)", ")",
             "the lemma's CGF without its noncentral term"),
    mutation("ch06-cell-psi-central-half", NB, "u_s - sp.log(1 + 2 * u_s) / 2", "u_s - sp.log(1 + 2 * u_s) / 4",
             "the lemma's central chi-square term halved"),
    mutation("ch06-cell-unc-gen-double", NB, "assert math.isclose(unc.gen, 2 * s2 * d / n)",
             "assert math.isclose(unc.gen, 4 * s2 * d / n)", "the uncompressed gen claimed as 4 sigma^2 d/n"),
    mutation("ch06-cell-noise-fraction-double", NB, "noise_fraction - sig2 / (sig2 + n_s * lam_s * sw2)",
             "noise_fraction - sig2 / (sig2 + 2 * n_s * lam_s * sw2)",
             "the noise fraction with the signal term doubled"),
    mutation("ch06-cell-jensen-double", NB, "jensen = 20 / (n_r * lam_r.mean())",
             "jensen = 40 / (n_r * lam_r.mean())", "Jensen's lower bound on the threshold doubled"),
]
