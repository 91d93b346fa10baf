"""The Guarantees' first promise, held as a class (README, "Errors"): every public entry of ``stats``,
``tables``, ``protocol``, ``calibration``, ``data`` and ``train`` refuses bad input — wrong types, NaN/inf,
negative or fractional sizes, booleans for numbers, empty or mismatched arrays, out-of-range levels and
probabilities, unknown strings — with a ``TypeError``/``ValueError`` whose message names the argument, before
any work (no hang, no NaN, no silent coercion). Each entry is first called with valid arguments, so a case
fails if the entry breaks rather than passing because everything raises.
"""
import math
import signal

import numpy as np
import pandas as pd
import pytest
import torch

from poprisk import calibration, checks, data, models, protocol, stats, tables, train
from poprisk.experiments import PER_EXAMPLE_KINDS, PerExample

SEEDS = (0, 1, 2)


def _sweep():
    rng = np.random.default_rng(0)
    rows = []
    for s in SEEDS:
        rows.append(dict(experiment="baseline", beta=math.nan, seed=s, train_ce=0.1, test_ce=0.3 + 0.01 * s,
                         test_ce_cal=0.28, test_acc=0.9, val_ce=0.3, val_ce_cal=0.29, test_ece=0.05,
                         test_ece_cal=0.02, base_train_ce=0.1, base_test_ce=0.3, base_test_ce_cal=0.28))
        for beta in (1.0, 3.0):
            rows.append(dict(rows[-1] if rows[-1]["experiment"] == "quantize" else rows[-1], experiment="quantize",
                             beta=beta, test_ce=0.29 + 0.01 * s + 0.001 * beta, val_ce=0.3 - 0.001 * beta))
    frame = pd.DataFrame(rows).assign(row=lambda d: np.arange(len(d)))
    per = PerExample({k: rng.random((len(frame), 20)) for k in PER_EXAMPLE_KINDS}, frame["seed"].to_numpy())
    return frame, per


FRAME, PER = _sweep()
A, B = dict(experiment="quantize", beta=1.0), dict(experiment="baseline")
Z, Y = np.random.default_rng(1).normal(size=(30, 4)), np.random.default_rng(2).integers(0, 4, 30)
X_T, Y_T = torch.rand(20, 8), torch.randint(0, 3, (20,))
SPLIT = data.Split(X_T, Y_T, X_T, Y_T, "toy")


def _model():
    return models.MLP(8, (6,), 3)


NUMBER = [None, "1", True, math.nan, math.inf, [1]]  # never a number, whatever the range
LEVEL = [*NUMBER, 0, 1, 1.5, -0.1]
COUNT = [None, "2", True, 1.5, math.nan, -1, 0]
FRAMES = [None, "x", [], 3, FRAME.drop(columns=["seed"])]
CONDITIONS = [None, "x", 3, ["experiment"]]

# (entry, valid keyword arguments, {argument: bad values})
CASES = [
    (stats.t_interval, dict(values=[1.0, 2.0, 3.0]),
     dict(values=[[], "abc", None, 3.0, [1, math.nan], [[1, 2], [3, 4]], [True, False]], level=LEVEL)),
    (stats.summarize, dict(df=FRAME, by=["experiment", "beta"], metrics="test_ce"),
     dict(df=[None, "x", pd.DataFrame()], by=[3, ["nope"], [1]], metrics=[3, ["nope"], [], "experiment"],
          level=LEVEL)),
    (stats.paired_comparison, dict(df=FRAME, a=A, b=B, metric="test_ce"),
     dict(df=[None, "x", pd.DataFrame()], a=CONDITIONS + [dict(experiment="zzz")], b=CONDITIONS,
          metric=[3, None, "nope", "experiment", ["test_ce"]], level=LEVEL)),
    (stats.bootstrap_interval, dict(a=PER.losses["test_ce"][:3], n_boot=200),
     dict(a=[None, "x", np.zeros(5), np.full((3, 4), np.nan), np.zeros((3, 4), bool)],
          b=["x", np.zeros((2, 20)), np.full((3, 20), np.inf)], n_boot=[*COUNT, 10, 10**9], level=LEVEL,
          seed=[None, "0", True, 1.5, -1])),
    (stats.one_row_per_seed, dict(rows=FRAME[FRAME.experiment == "baseline"]),
     dict(rows=[None, "x", 3, FRAME.assign(seed=np.nan)], what=[None, 3], skip=[None, "x", 3])),
    (stats.holm, dict(pvalues=[0.01, 0.2]),
     dict(pvalues=[[], [2.0], [-1.0], [math.inf], "x", None, [True]])),
    (stats.tost, dict(diff=[0.01, 0.02, -0.01]),
     dict(diff=[[math.nan], "x", None, [[1, 2], [3, 4]]], margin=[*NUMBER, 0, -1])),
    (stats.verdict, dict(lo=-0.01, hi=0.01), dict(lo=[*NUMBER, 2.0], hi=[*NUMBER, -2.0], margin=[*NUMBER, 0])),
    (stats.interval_level, dict(alpha=0.05, n_tests=2), dict(alpha=[*NUMBER, 0, 0.5, -1], n_tests=COUNT)),
    (stats.select, dict(df=FRAME), dict(df=[None, "x", 3])),
    (tables.format_number, dict(value=1.5), dict(digits=[*COUNT, 100])),
    (tables.format_column, dict(values=[1.5, 2.0]), dict(values=[None, "abc", 3.0], digits=[*COUNT, 100])),
    (tables.show, dict(frame=FRAME.head(2)),
     dict(frame=[None, "x", 3], digits=[*COUNT, 13], caption=[3, ["x"]], index=["yes", 1])),
    (tables.latex_table, dict(header=["a", "b"], body=[["1", "x"]], numeric=[True, False], caption=None),
     dict(header=[None, "ab", [], [1, 2], 3], body=[None, "x", [["1"]], [[1, 2]], 3],
          numeric=[None, [True], "xy", [1, 0]], caption=[3, ["x"]])),
    (protocol.protocol_differences, dict(), dict(conclusions=["x", 3, {"nope": "y"}, {"sample": 3}])),
    (protocol.calibration_decomposition, dict(frame=FRAME),
     dict(frame=[None, "x", pd.DataFrame(), FRAME.drop(columns=["test_ce"]), FRAME.assign(test_ce="a"),
                 FRAME.assign(test_ce=np.nan), FRAME.assign(test_ce=True)],
          columns=["x", 3, ["test_ce"], {"nope": "x"}, {"test_ce": 3}, {"test_ce": "nope"}])),
    (protocol.settings_table, dict(configs={"toy": SPLIT}, fields=["name"]),
     dict(configs=[None, {}, "x", {"a": 3}], fields=["name", 3, ["nope"], [3]])),
    (protocol.interval_text, dict(lo=-0.1, hi=0.1),
     dict(lo=["x", None, True, 2.0], hi=["x", None, True, -2.0], digits=[*COUNT, 100])),
    (protocol.paired_interval, dict(frame=FRAME, per=PER, a=A, b=B, n_boot=200),
     dict(frame=FRAMES, per=[None, "x", 3], a=CONDITIONS + [dict(experiment="zzz")], b=["x", 3],
          kind=[None, 3, "nope"], kind_b=[3, "nope"], n_boot=COUNT, seed=[None, -1, 1.5, True],
          level=LEVEL)),
    (protocol.change_table, dict(frame=FRAME, per=PER, settings={"s": A}, n_boot=200),
     dict(frame=FRAMES, per=[None, "x"], settings=[None, {}, "x", {"s": "x"}, {"s": dict(experiment="zzz")},
                                                    {3: A}],
          baseline=["x", 3, dict(experiment="zzz")], n_boot=COUNT, seed=[None, -1, True])),
    (protocol.calibration_table, dict(frame=FRAME, per=PER, settings={"s": A}, n_boot=200),
     dict(frame=FRAMES, per=[None, "x"], settings=[None, {}, "x", {"s": "x"}, {"s": dict(experiment="zzz")}],
          baseline=["x", 3, dict(experiment="zzz")])),
    (protocol.paired_verdict, dict(frame=FRAME, per=PER, label="l", a=A, b=B, n_boot=200),
     dict(frame=FRAMES, per=[None, "x"], label=[None, 3], a=CONDITIONS, b=CONDITIONS, n_tests=COUNT,
          margin=[*NUMBER[1:], 0, -1], alpha=[*NUMBER, 0, 0.5])),
    (protocol.verdict_of, dict(d=dict(boot_lo=-0.01, boot_hi=0.01, seeds_lo=-0.01, seeds_hi=0.01), margin=0.02),
     dict(d=[None, 3, {}, dict(boot_lo=0.0)], margin=[*NUMBER, 0, -1])),
    (protocol.verdict_table, dict(frame=FRAME, per=PER, comparisons={"s": (A, None)}, n_boot=200),
     dict(frame=FRAMES, per=[None, "x"], comparisons=[None, {}, "x", {"s": "x"}, {"s": (A,)}, {"s": ("x", B)}],
          kind=[None, 3, "nope"], alpha=[*NUMBER, 0, 0.5])),
    (protocol.fill, dict(template="{a}", a=1.0), dict(template=[None, 3])),
    (protocol.baseline_summary, dict(frame=FRAME, per=PER),
     dict(frame=[*FRAMES, FRAME[FRAME.experiment == "quantize"]], per=[None, "x"])),
    (protocol.selection_table, dict(frame=FRAME, per=PER, families={"f": (dict(experiment="quantize"), "beta")},
                                    n_boot=200),
     dict(frame=FRAMES, per=[None, "x"], families=[None, {}, "x", {"f": 3}, {"f": ("beta",)}, {"f": ("x", "b")}],
          alpha=[*NUMBER, 0, 0.5])),
    (protocol.robustness_conclusions,
     dict(robust=pd.DataFrame({"setting": ["main", "v"], "comparison": ["c", "c"], "raw verdict": ["better"] * 2,
                               "own-T verdict": ["better"] * 2}), keys={"k": "v"}),
     dict(robust=[None, "x", pd.DataFrame()], keys=["x", 3, {"k": "nope"}, {"k": 3}])),
    (protocol.seed_verdict_table, dict(differences={"a": [0.01, 0.02, 0.0]}),
     dict(differences=[None, {}, "x", {"a": [1.0]}, {"a": "xy"}, {"a": [1, math.nan]}, {"a": None}],
          alpha=[*NUMBER, 0, 0.5])),
    (protocol.temperature_table, dict(trained=None, baseline=FRAME, temperatures=[("T = 1", 1.0)]),
     dict(trained=[None, 3, []])),
    (protocol.robustness_table, dict(runs=None), dict(runs=[None, 3, {}, {"a": 3}])),
    (protocol.predictor_rows, dict(nets=None, sample=None), dict(nets=[None, 3, {}, {"a": 3}])),
    (calibration.fit_temperature, dict(logits=Z, labels=Y),
     dict(logits=[None, "x", np.zeros((0, 4)), np.zeros(4), np.full((30, 4), np.nan), np.zeros((30, 4), bool)],
          labels=[None, "x", np.zeros(29, int), np.full(30, 7), np.full(30, -1), np.full(30, 0.5),
                  np.zeros(30, bool)])),
    (calibration.per_example_ce, dict(logits=Z, labels=Y), dict(T=[*NUMBER, 0, -1])),
    (calibration.cross_entropy, dict(logits=Z, labels=Y), dict(T=[*NUMBER, 0, -1])),
    (calibration.temperature_scale, dict(logits=Z, T=2.0), dict(logits=[None, "x", np.zeros(3)], T=[*NUMBER, 0])),
    (calibration.expected_calibration_error, dict(logits=Z, labels=Y), dict(bins=COUNT)),
    (calibration.reliability_curve, dict(logits=Z, labels=Y), dict(bins=[*COUNT, 10**9])),
    (data.load_dataset, dict(name="digits", n_test=100),
     dict(name=[None, 3, "nope", "mnist"], n_test=[*COUNT[1:], 10**9],  # None: the default size
          seed=[None, -1, 1.5, True],
          device=["nope", 3, "mps", "cuda:99"])),
    (data.load_torchvision, dict(name="mnist"),
     dict(name=[None, 3, "nope"], root=[None, 3], download=["no", 1, None], device=["nope", 3])),
    (data.read_idx, dict(path="/nonexistent/file"), dict(path=[None, 3], expect=["imagez", 3])),
    (data.fashion_mnist_files, dict(folder="/nonexistent"), dict(folder=[3, ["x"]], verify=["no", 1, None])),
    (SPLIT.with_validation, dict(n_val=5, seed=0), dict(n_val=[*COUNT, 20, 10**9], seed=[None, -1, True])),
    (SPLIT.subsample_train, dict(n=5, seed=0),
     dict(n=[*COUNT, 10**9], seed=[None, -1, 1.5], replace=["no", 1, None])),
    (train.fit, dict(model=None, x=X_T, y=Y_T, epochs=1, progress=False),
     dict(model=["x", 3, torch.nn.Sequential()],  # None stands for a fresh MLP in _call
          x=[None, "x", torch.zeros(0, 8), torch.full((20, 8), math.nan), torch.zeros(20, 8, dtype=torch.int64),
             torch.zeros(20, 5), np.zeros((20, 8)), torch.zeros(20, 8, dtype=torch.float64)],
          y=[None, torch.zeros(19, dtype=torch.int64), torch.full((20,), 7), torch.full((20,), -1), torch.zeros(20)],
          epochs=COUNT, batch_size=[*COUNT, math.inf], lr=[*NUMBER, 0, -1], momentum=[*NUMBER, -1, 1],
          weight_decay=[*NUMBER, -1], seed=[None, -1, 1.5, True], progress=["no", 1, None], desc=[3, None],
          transform=[3, "x"])),
    (train.predict, dict(model=None, x=X_T),
     dict(x=[None, torch.zeros(20, 5), torch.zeros(20, 8, dtype=torch.float64)], batch_size=COUNT)),
    (train.evaluate, dict(model=None, x=X_T, y=Y_T),
     dict(x=[torch.zeros(20, 5), torch.zeros(20, 8, dtype=torch.float64)], y=[torch.full((20,), 7)],
          batch_size=COUNT)),
]

# Entries whose valid call needs what this file cannot afford (trained networks, torchvision, files):
# their valid call is expected to fail for that reason only, and their bad-input cases still run.
NO_VALID_CALL = {"temperature_table", "robustness_table", "predictor_rows", "load_torchvision", "read_idx",
                 "fashion_mnist_files"}


def _call(entry, kwargs):
    kwargs = dict(kwargs)
    if kwargs.get("model", 0) is None:
        kwargs["model"] = _model()
    return entry(**kwargs)


def _name(entry):
    return entry.__qualname__


def _ids(cases):
    for entry, valid, bad in cases:
        for arg, values in bad.items():
            for i, value in enumerate(values):
                yield pytest.param(entry, valid, arg, value, id=f"{_name(entry)}-{arg}-{i}")


class _Hang(Exception):
    pass


def _alarm(*_):
    raise _Hang()


@pytest.mark.parametrize("entry, valid", [pytest.param(e, v, id=_name(e)) for e, v, _ in CASES
                                          if e.__name__ not in NO_VALID_CALL])
def test_every_entry_accepts_its_valid_call(entry, valid):
    _call(entry, valid)


@pytest.mark.parametrize("entry, valid, arg, value", list(_ids(CASES)))
def test_every_entry_refuses_bad_input_naming_the_argument(entry, valid, arg, value):
    kwargs = dict(valid, **{arg: value})
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(30)  # a hang is a failure too
    try:
        with pytest.raises((TypeError, ValueError)) as err:
            _call(entry, kwargs)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    assert arg in str(err.value), f"{_name(entry)}({arg}={value!r:.40}): {err.value}"


@pytest.mark.parametrize("module", [stats, tables, protocol, calibration])
def test_every_public_function_has_bad_input_cases(module):
    """A new public function of these modules must join CASES (the class of tests holds it)."""
    covered = {e.__name__ for e, _, _ in CASES}
    exempt = {"plain", "robustness_runs", "layer_table"}  # a scalar formatter; sweeps that train networks
    public = {n for n in module.__all__ if callable(getattr(module, n)) and not isinstance(getattr(module, n), type)
              and not n.isupper()}
    assert public - covered - exempt == set()


def test_a_wrong_kind_is_both_a_type_and_a_value_error():
    with pytest.raises(TypeError):
        checks.integer("3", "n")
    with pytest.raises(ValueError, match="n must be an integer"):
        checks.integer("3", "n")


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_calibration_takes_half_precision_logits_exactly(dtype):
    z = torch.tensor(Z, dtype=dtype)
    wide = z.double().numpy()  # the values the half tensor holds, exactly
    assert calibration.cross_entropy(z, Y) == pytest.approx(calibration.cross_entropy(wide, Y), rel=1e-12)
    assert calibration.fit_temperature(z, Y) == pytest.approx(calibration.fit_temperature(wide, Y), rel=1e-9)
    assert calibration.expected_calibration_error(z, Y) == pytest.approx(
        calibration.expected_calibration_error(wide, Y), rel=1e-12)


@pytest.mark.parametrize("value", [np.float32("nan"), np.float16("nan"), pd.NA, pd.NaT, None, float("nan")])
def test_format_number_shows_every_missing_value_as_a_dash(value):
    assert tables.format_number(value) == "–"


def test_format_number_shows_complex_numbers_as_text():
    assert tables.format_number(1 + 2j) == "(1+2j)"


def test_calibration_decomposition_renames_through_a_columns_mapping():
    renamed = FRAME.rename(columns={"test_ce_cal": "calibrated"})
    out = protocol.calibration_decomposition(renamed, columns={"test_ce_cal": "calibrated"})
    np.testing.assert_allclose(out["miscalibration_left"], FRAME["test_ce"] - FRAME["test_ce_cal"])


def test_subsample_with_replacement_is_bounded_instead_of_filling_memory():
    assert SPLIT.subsample_train(200, 0).x_train.shape[0] == 200  # 10 × the pool of 20
    with pytest.raises(ValueError, match="n must be"):
        SPLIT.subsample_train(201, 0)


def test_fit_checks_the_labels_against_the_model_before_any_step():
    model = _model()
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(ValueError, match="outside the model's 3 classes"):
        train.fit(model, X_T, torch.full((20,), 3), epochs=1, progress=False)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
