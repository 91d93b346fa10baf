"""Mutations of chapter 5: lib/poprisk/tradeoff.py (the computations behind its check cells) and the check
cells of book/ch05_tradeoff.ipynb; each halves or doubles a quantity, or drops a term, of the claim checked."""

from tools.mutate import mutation

NB = "book/ch05_tradeoff.ipynb"
LIB = "lib/poprisk/tradeoff.py"
T = ["tests/test_tradeoff.py"]
CH05 = [NB]

MUTATIONS = [
    mutation("ch05-bound-gen-term-half", LIB, "+ np.sqrt(2 * sigma**2 * np.asarray(r, dtype=float) / n)",
             "+ np.sqrt(2 * sigma**2 * np.asarray(r, dtype=float) / n) / 2",
             "the bound's generalization term sqrt(2 sigma^2 R/n) halved", tests=T, notebooks=CH05),
    mutation("ch05-bound-gen-term-double", LIB, "+ np.sqrt(2 * sigma**2 * np.asarray(r, dtype=float) / n)",
             "+ 2 * np.sqrt(2 * sigma**2 * np.asarray(r, dtype=float) / n)",
             "the bound's generalization term sqrt(2 sigma^2 R/n) doubled", tests=T, notebooks=CH05),
    mutation("ch05-d-bar-double", LIB, "d_bar=ls_rep - ls_own[:, None],", "d_bar=2 * (ls_rep - ls_own[:, None]),",
             "the conditional distortion d-bar doubled (the identity E rise = E d-bar fails)",
             tests=T, notebooks=CH05),
    mutation("ch05-shrinkage-rate-half", LIB, "t = math.exp(-2 * rate)", "t = math.exp(-rate)",
             "the test channel's t = e^{-2R} taken as e^{-R}", tests=T, notebooks=CH05),
    mutation("ch05-shrinkage-drop-sample-noise", LIB,
             "math.sqrt((1 - t) * t * (prior_var + 1 / n))", "math.sqrt((1 - t) * t * prior_var)",
             "the test channel's noise without the 1/n of s = sigma_w^2 + 1/n", tests=T, notebooks=CH05),
    mutation("ch05-noisy-mean-drop-posterior-var", LIB, "amp = math.exp(-(n - 1) / (2 * n) - v_post / 2)",
             "amp = math.exp(-(n - 1) / (2 * n))",
             "d-bar's amplitude without the posterior variance term v/2", tests=T, notebooks=CH05),
    mutation("ch05-quadratic-full-double", LIB, "0.5 * delta @ h @ delta", "delta @ h @ delta",
             "the quadratic model's 1/2 dropped (full form doubled)", tests=T, notebooks=CH05),
    mutation("ch05-cell-gen-term-half", NB, "gen_term = infotheory.mi_bound(1.0, rate_j, n_c)",
             "gen_term = infotheory.mi_bound(0.5, rate_j, n_c)",
             "the theorem's check with the generalization term halved (sigma = 1/2 for the cosine loss)"),
    mutation("ch05-cell-improvement-double", NB, "predicted = math.exp(-2 * rate) * (1 / n_s - sw2)",
             "predicted = 2 * math.exp(-2 * rate) * (1 / n_s - sw2)",
             "the shrinkage improvement t(1/n - sigma_w^2) doubled"),
    mutation("ch05-cell-channel-noise-drop", NB, "noise: (1 - t) * t * (s_w + 1 / n)}",
             "noise: (1 - t) * t * s_w}", "the symbolic channel noise without its 1/n term"),
    mutation("ch05-cell-lambert-arg-double", NB, "x_val = -(sig**2) / (2 * n_sym * s_**2)",
             "x_val = -(sig**2) / (n_sym * s_**2)", "the Lambert-W argument doubled"),
]
