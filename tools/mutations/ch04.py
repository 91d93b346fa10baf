"""Mutations of chapter 4's check cells (math2)."""

NB = "book/ch04_compression_generalizes.ipynb"


def m(id, find, replace, why):
    return dict(id=id, target=NB, find=find, replace=replace, why=why, tests=[], notebooks=[])


MUTATIONS = [
    m("ch04-dpi-compressor-reads-data", "joint_sc = joint_sw @ p_c_w",
      "joint_sc = p_s[:, None] * p_c_w[:5]", "a compressor of S, not of W: no Markov chain (cell 5)"),
    m("ch04-entropy-form-half", "worst_entropy_slack = min(worst_entropy_slack, h_c - i_sc)",
      "worst_entropy_slack = min(worst_entropy_slack, h_c / 2 - i_sc)", "H(W_hat)/2 for H(W_hat) (cell 7)"),
    dict(id="ch04-compressed-bound-quarter", target="lib/poprisk/toy_learning.py",
         find="_mutual_information(joint), _entropy(joint.sum(0))",
         replace="_mutual_information(joint) / 4, _entropy(joint.sum(0))",
         why="I(S;W_hat) / 4 in the compressed bound (chapter 4's Bernoulli table)",
         tests=["tests/test_toy_learning.py"], notebooks=[NB]),
    dict(id="ch04-erm-rate-double", target="lib/poprisk/toy_learning.py",
         find="rate.append(_entropy(counts / draws_h))", replace="rate.append(2 * _entropy(counts / draws_h))",
         why="the quantized ERM's index entropy doubled (cell 13)", tests=["tests/test_toy_learning.py"],
         notebooks=[NB]),
    dict(id="ch04-population-error-half", target="lib/poprisk/toy_learning.py",
         find="return float(0.5 * (stats.norm.cdf(", replace="return float(0.25 * (stats.norm.cdf(",
         why="the Gaussian classes' exact population error halved (cells 19-21)",
         tests=["tests/test_toy_learning.py"], notebooks=[NB]),
    dict(id="ch04-bernoulli-gen-double", target="lib/poprisk/toy_learning.py",
         find="gen = float(np.sum(pk[:, None] * channel * (risk_pop[None, :] - risk_emp)))",
         replace="gen = float(2 * np.sum(pk[:, None] * channel * (risk_pop[None, :] - risk_emp)))",
         why="the compressed Bernoulli mean's generalization error doubled (cell 9)",
         tests=["tests/test_toy_learning.py"], notebooks=[NB]),
    m("ch04-stationary-value", "assert sp.simplify(at_atan2 - (1 - sp.sqrt(C**2 + S_**2))) == 0",
      "assert sp.simplify(at_atan2 - (1 - 2 * sp.sqrt(C**2 + S_**2))) == 0", "wrong minimum value (cell 11)"),
    m("ch04-erm-bound-sigma-half", "bound_h = infotheory.mi_bound(1.0, rate_h, n_train)",
      "bound_h = infotheory.mi_bound(0.5, rate_h, n_train)", "quantized-ERM bound with sigma halved (cell 13)"),
    m("ch04-erm-bound-sigma-double", "bound_h = infotheory.mi_bound(1.0, rate_h, n_train)",
      "bound_h = infotheory.mi_bound(2.0, rate_h, n_train)", "quantized-ERM bound with sigma doubled (cell 13)"),
    m("ch04-chernoff-2n", "worst_tail = max(worst_tail, tail / math.exp(-n_v * eps_v))",
      "worst_tail = max(worst_tail, tail / math.exp(-2 * n_v * eps_v))", "Chernoff with exp(-2 n eps) (cell 17)"),
    m("ch04-chernoff-half-n", "worst_tail = max(worst_tail, tail / math.exp(-n_v * eps_v))",
      "worst_tail = max(worst_tail, tail / math.exp(-n_v * eps_v / 2))", "Chernoff with exp(-n eps/2) (cell 17)"),
    m("ch04-occam-code-length-zero", "bounds.occam_bound(train_q, bits_q, n_occ, delta),",
      "bounds.occam_bound(train_q, 0, n_occ, delta),", "single-network Occam bound with code length 0 (cell 19)"),
    m("ch04-occam-half-bits", "bounds.occam_bound(train_q, bits_q, n_occ, delta),",
      "bounds.occam_bound(train_q, bits_q // 2, n_occ, delta),", "Occam bound charged half the bits (cell 19)"),
    m("ch04-coverage-without-code", 'for key, b in (("bound", bits_r), ("code length 0", 0)):',
      'for key, b in (("bound", 0), ("code length 0", 0)):', "coverage of a bound without code length (cell 21)"),
    m("ch04-golden-drop-prior-term", "res = max(abs(expected_kl(q) - i_sw - special.rel_entr(p_w, q).sum()) for q in priors)",
      "res = max(abs(expected_kl(q) - i_sw) for q in priors)", "golden formula without D(P_W || P) (cell 23)"),
    m("ch04-golden-log-z-sign", "- h_det - d_code + math.log(z))", "- h_det - d_code - math.log(z))",
      "Occam side of the golden formula with the wrong sign of log Z (cell 23)"),
    m("ch04-golden-half-information", "p_w, i_sw = joint.sum(0), mutual_information(joint)",
      "p_w, i_sw = joint.sum(0), mutual_information(joint) / 2", "I(S;W) halved (cell 23)"),
    m("ch04-ex2-dpi-wrong-channel", "i_sc = infotheory.gaussian_mi(1 / n_, t2 + v)",
      "i_sc = infotheory.gaussian_mi(1 / n_, v)", "the compressed channel's noise without tau^2 (cell 26)"),
]
