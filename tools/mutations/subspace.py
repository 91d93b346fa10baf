"""Mutations of lib/poprisk/subspace.py: the certificate's code length and what is evaluated (math2)."""

S = "lib/poprisk/subspace.py"
T = ["tests/test_subspace.py"]
CH10 = ["book/ch10_what_theory_explains.ipynb"]

MUTATIONS = [
    dict(id="subspace-no-flag-bit", target=S,
         find='return 1 + bounds.elias_gamma_bits(_positive_int(m, "m")) + code.total',
         replace='return bounds.elias_gamma_bits(_positive_int(m, "m")) + code.total',
         why="quantized/raw mixture without its flag bit", tests=T, notebooks=CH10),
    dict(id="subspace-raw-no-gamma", target=S,
         find='return 1 + bounds.elias_gamma_bits(_positive_int(m, "m")) + 32 * int(m)',
         replace="return 1 + 32 * int(m)", why="raw description without gamma(m)", tests=T, notebooks=[]),
    dict(id="subspace-codebook-8-bits", target=S, find="VALUE_BITS = 16", replace="VALUE_BITS = 8",
         why="float16 centres charged 8 bits each", tests=T, notebooks=[]),
    dict(id="subspace-evaluate-unrounded-centres", target=S,
         find="values = np.unique(centers.astype(np.float16)).astype(np.float64)",
         replace="values = np.unique(centers)",
         why="the evaluated network is not the coded (float16) one", tests=T, notebooks=[]),
    dict(id="subspace-search-wrong-n", target=S,
         find="occam=bounds.occam_bound(train_err, bits, x.shape[0], delta)",
         replace="occam=bounds.occam_bound(train_err, bits, 2 * x.shape[0], delta)",
         why="the search's bounds with n doubled", tests=T, notebooks=CH10),
]
