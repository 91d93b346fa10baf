"""Mutations of chapter 3's check cells: each doubles or halves the quantity a check cell tests."""

NB = "book/ch03_rate_distortion.ipynb"


def _m(id_, find, replace, why):
    return dict(id=id_, target=NB, find=find, replace=replace, why=why, tests=[], notebooks=[NB])


MUTATIONS = [
    _m("ch03-mi-mixture-double", 'jensen = channel_mi(mix) - (t * channel_mi(q1) + (1 - t) * channel_mi(q2))',
       'jensen = 2 * channel_mi(mix) - (t * channel_mi(q1) + (1 - t) * channel_mi(q2))',
       "the information of the mixed channel doubled (convexity must fail)"),
    _m("ch03-slsqp-rate-flip", 'r_grid8 = np.array([rate_at(dv) for dv in d_grid8])',
       'r_grid8 = np.array([rate_at(dv) for dv in d_grid8])[::-1]',
       "R(D) increasing instead of decreasing"),
    _m("ch03-gaussian-rd-double", 'assert sp.simplify(rate - sp.log(s_var / D) / 2) == 0',
       'assert sp.simplify(rate - sp.log(s_var / D)) == 0', "R(D) claimed without its 1/2"),
    _m("ch03-converse-half", 'slack.append(ent - infotheory.gaussian_rd(1.0, mse))',
       'slack.append(ent - 2 * infotheory.gaussian_rd(1.0, mse))', "R(MSE) doubled in the converse check"),
    _m("ch03-kkt-theta-double", 'theta_two = sp.Piecewise((theta_a, valid_a), (theta_b, True))',
       'theta_two = sp.Piecewise((2 * theta_a, valid_a), (theta_b, True))', "the water level of case A doubled"),
    _m("ch03-kkt-range-double", 'assert valid_a == (Dt <= 2 * s2) and valid_b == (Dt >= 2 * s2)',
       'assert valid_a == (Dt <= 4 * s2) and valid_b == (Dt >= 2 * s2)', "the validity range of case A doubled"),
    _m("ch03-water-slsqp-half", 'lambda dd: 0.5 * np.sum(np.log(s / dd)),',
       'lambda dd: 0.25 * np.sum(np.log(s / dd)),', "the optimizer's rate halved (it would beat water-filling)"),
    _m("ch03-ba-binary-rd-double", 'true = h2(p_bin) - h2(res.distortion) if res.distortion < p_bin else 0.0',
       'true = 2 * (h2(p_bin) - h2(res.distortion)) if res.distortion < p_bin else 0.0',
       "the binary R(D) doubled under the certified iterates"),
    _m("ch03-ba-binary-rd-half", 'assert true - 1e-12 <= res.rate <= true + res.gap + 1e-12',
       'assert true / 2 - 1e-12 <= res.rate <= true / 2 + res.gap + 1e-12',
       "the binary R(D) halved under the certified iterates"),
    _m("ch03-ba-gauss-double", 'formula = infotheory.gaussian_rd(1.0, ba.distortion)',
       'formula = 2 * infotheory.gaussian_rd(1.0, ba.distortion)', "the Gaussian R(D) doubled"),
    _m("ch03-ba-gauss-half", 'formula = infotheory.gaussian_rd(1.0, ba.distortion)',
       'formula = infotheory.gaussian_rd(1.0, ba.distortion) / 2', "the Gaussian R(D) halved"),
    _m("ch03-slb-upper-half", 'upper = infotheory.gaussian_rd(var5, res.distortion)',
       'upper = infotheory.gaussian_rd(var5 / 2, res.distortion)', "the Gaussian bound with half the variance"),
    _m("ch03-slb-lower-double", 'slb = h_x - 0.5 * np.log(2 * math.pi * math.e * res.distortion)',
       'slb = h_x - 0.5 * np.log(2 * math.pi * math.e * res.distortion / 2)', "the SLB with half the distortion"),
    _m("ch03-vector-eig-half", 'gamma = np.linalg.eigvalsh(centred.T @ (centred * p24[:, None]))',
       'gamma = np.linalg.eigvalsh(centred.T @ (centred * p24[:, None])) / 2',
       "vector maximality with half the covariance"),
    _m("ch03-vector-eig-double", 'gamma = np.linalg.eigvalsh(centred.T @ (centred * p24[:, None]))',
       'gamma = 2 * np.linalg.eigvalsh(centred.T @ (centred * p24[:, None]))',
       "vector maximality with twice the covariance (the bound must not be loose)"),
    _m("ch03-vector-slb-double", 'slb_v = h_vec - np.log(math.pi * math.e * ba_v.distortion)',
       'slb_v = h_vec - np.log(math.pi * math.e * ba_v.distortion / 2)', "the vector SLB with half the distortion"),
    _m("ch03-lloyd-max-double", 'new = first / mass  # centroid of each cell', 'new = 2 * first / mass',
       "Lloyd-Max centroids doubled (MSE 1 - 2/pi must fail)"),
    _m("ch03-kmeans-double", 'assert np.all(km[:, 0] <= 1.25 * table[:, 1])',
       'assert np.all(2 * km[:, 0] <= 1.25 * table[:, 1])', "the K-means MSE doubled"),
    _m("ch03-ex2-slope-double", 'dist_err = np.abs(res_b.distortion - 1 / (1 + np.exp(-slopes_b)))[mask].max()',
       'dist_err = np.abs(res_b.distortion - 1 / (1 + np.exp(-2 * slopes_b)))[mask].max()',
       "the slope-distortion relation with a doubled slope"),
    _m("ch03-ex4-mse-double", 'assert sp.simplify(mse_1bit - (1 - 2 / sp.pi)) == 0',
       'assert sp.simplify(2 * mse_1bit - (1 - 2 / sp.pi)) == 0', "the one-bit MSE doubled"),
]
