"""Mutations of lib/poprisk/linreg.py: the exact linear-regression model of chapter 6 (closed-form risks,
the criterion, the CGF Psi and the information bounds)."""

from tools.mutate import mutation

LIB = "lib/poprisk/linreg.py"
T = ["tests/test_linreg.py"]
CH06 = ["book/ch06_linear_regression.ipynb"]

MUTATIONS = [
    mutation("linreg-psi-central-half", LIB, "first = self.n * (u - 0.5 * math.log1p(2 * u))",
             "first = self.n * (u - 0.25 * math.log1p(2 * u))", "Psi's central chi-square term halved",
             tests=T, notebooks=CH06),
    mutation("linreg-psi-drop-noncentral", LIB, "math.fsum(-0.5 * np.log(q) + phi * mean_sq / q)",
             "math.fsum(-0.5 * np.log(q))", "Psi without its noncentral term", tests=T, notebooks=CH06),
    mutation("linreg-psi-phi-double", LIB, "phi = (self.n / self.noise_var) * 2 * u * u / (1 + 2 * u)",
             "phi = (self.n / self.noise_var) * 4 * u * u / (1 + 2 * u)", "Psi's phi doubled",
             tests=T, notebooks=CH06),
    mutation("linreg-bound-rate-half", LIB, "info = wf.rate\n", "info = wf.rate / 2\n",
             "the rate bound with I(S;W-hat) = R halved", tests=T, notebooks=CH06),
    mutation("linreg-bound-conditional-double", LIB,
             "info = float(math.fsum(0.5 * np.log1p(a * self.c / wf.distortions)))",
             "info = float(math.fsum(1.0 * np.log1p(a * self.c / wf.distortions)))",
             "the conditional bound with I(S;W-hat|w*) doubled", tests=T, notebooks=CH06),
    mutation("linreg-gen-half", LIB, "gen = 2 * c * math.fsum(1 - t)", "gen = c * math.fsum(1 - t)",
             "the exact gen halved", tests=T, notebooks=CH06),
    mutation("linreg-population-drop-2c", LIB, "math.fsum(c + t * (s - 2 * c))", "math.fsum(c + t * (s - c))",
             "the population risk with the cross term 2 nu halved", tests=T, notebooks=CH06),
    mutation("linreg-criterion-threshold-half", LIB, "return self.criterion() > 0.5",
             "return self.criterion() > 0.25", "the criterion kappa > 1/2 taken as kappa > 1/4",
             tests=T, notebooks=CH06),
    mutation("linreg-optimal-slope", LIB, "slope = 1 - 2 * c / s", "slope = 1 - c / s",
             "the optimum's slope with the noise fraction halved", tests=T, notebooks=CH06),
    mutation("linreg-empirical-d-double", LIB, "self.noise_var * (1 - self.d / self.n) + wf.distortion",
             "self.noise_var * (1 - 2 * self.d / self.n) + wf.distortion",
             "the empirical risk's sigma^2 (1 - d/n) with d doubled", tests=T, notebooks=CH06),
]
