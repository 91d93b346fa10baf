"""Mutations of chapter 10's check cells (math2)."""

NB = "book/ch10_what_theory_explains.ipynb"
GRID = "grid = pd.DataFrame(rows)\n"
TT = "lib/poprisk/theory_tables.py"


def m(id, find, replace, why, tests=()):
    return dict(id=id, target=NB, find=find, replace=replace, why=why, tests=list(tests), notebooks=[])


MUTATIONS = [
    dict(id="ch10-network-code-half", target=TT, find="        bits = bounds.tensor_code_bits(w)\n",
         replace="        bits = bounds.tensor_code_bits(w) // 2\n",
         why="chapter 9's networks charged half their code (theory_tables.code_report, cell 7)",
         tests=["tests/test_theory_tables.py"], notebooks=[NB]),
    dict(id="ch10-code-report-no-slack", target=TT,
         find="        slack = two.header + (two.k - 1) * math.log2(w.size) + 2\n",
         replace="        slack = 0\n",
         why="the entropy bound of ch10-code-entropy without its header and count terms",
         tests=["tests/test_theory_tables.py"], notebooks=[NB]),
    dict(id="ch10-frame-information-half-joint", target=TT,
         find='    return h["x"] + h["y"] - h["xy"]', replace='    return h["x"] + h["y"] - h["xy"] / 2',
         why="I(X;Y) with H(X,Y) halved (cells 24, 32)", tests=["tests/test_theory_tables.py"], notebooks=[NB]),
    dict(id="ch10-verdicts-chosen-on-max", target=TT,
         find='metric="val_ce_cal").setting["bits"]', replace='metric="val_ce_cal", mode="max").setting["bits"]',
         why="the rate chosen as the worst on validation", tests=["tests/test_theory_tables.py"], notebooks=[]),
    m("ch10-failure-rate-no-union-bound", "[bounds.occam_bound(j / n_sim, b, n_sim, DELTA) for b in lengths]",
      "[bounds.occam_bound(j / n_sim, 0, n_sim, DELTA) for b in lengths]",
      "Occam bounds of a class without the code lengths (cell 13)"),
    m("ch10-kl-inverse-double-c", "p_star = bounds.kl_inverse_upper(q, c)", "p_star = bounds.kl_inverse_upper(q, 2 * c)",
      "kl inverse at twice its complexity (cell 13)"),
    m("ch10-certificate-drops-flag-bit", GRID, "grid = pd.DataFrame(rows).assign(bits=lambda g: g.bits - 1)\n",
      "the certificate's description without its flag bit (cell 17)"),
    m("ch10-certificate-half-bound", GRID, "grid = pd.DataFrame(rows).assign(occam=lambda g: g.occam / 2)\n",
      "the certificate's bound halved (cell 17)"),
    m("ch10-certificate-code-length-zero", GRID,
      "grid = pd.DataFrame(rows)\ngrid['occam'] = [bounds.occam_bound(q, 0, N_BOUND, DELTA) for q in grid.train_err]\n",
      "the certificate's bound without its code length (cell 17)"),
    m("ch10-certificate-no-log-delta", GRID,
      "grid = pd.DataFrame(rows)\ngrid['occam'] = [bounds.kl_inverse_upper(q, b * math.log(2) / N_BOUND) "
      "for q, b in zip(grid.train_err, grid.bits)]\n",
      "the certificate's bound without ln(1/delta) (cell 17)"),
    m("ch10-certificate-wrong-n", GRID,
      "grid = pd.DataFrame(rows)\ngrid['occam'] = [bounds.occam_bound(q, b, 2 * N_BOUND, DELTA) "
      "for q, b in zip(grid.train_err, grid.bits)]\n",
      "the certificate's bound with n doubled (cell 17)"),
    m("ch10-catoni-half-bits", "min(bounds.catoni_bound(q_, b_, N_BOUND, DELTA, C=C_) for C_ in c_grid)",
      "min(bounds.catoni_bound(q_, b_ / 2, N_BOUND, DELTA, C=C_) for C_ in c_grid)",
      "Catoni's bound at half the description (cell 23)"),
    m("ch10-realizable-double-c", "p0 = bounds.occam_bound(0.0, best.bits, N_BOUND, DELTA)",
      "p0 = bounds.occam_bound(0.0, 2 * best.bits + 5, N_BOUND, DELTA)",
      "the realizable case at twice the complexity (cell 23)"),
    m("ch10-temperature-peeks", "T=(w, (w + v[0] + 2 * v[1]) % 4),", "T=(w, (w + s[0] + 2 * v[1]) % 4),",
      "a temperature that reads a training bit (cell 24)"),
    m("ch10-spread-swapped", 'for kind in ("test_ce", "test_ce_cal"):', 'for kind in ("test_ce_cal", "test_ce"):',
      "raw and tempered losses swapped (cell 30)"),
    m("ch10-markov-counterexample", "W_hat=[0, 1]", "W_hat=[0, 0]",
      "a compressor that does not read S (cell 32)"),
]
