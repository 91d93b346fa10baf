"""Mutations of lib/poprisk/bounds.py: the kl bounds, the code lengths and the codes themselves (math2)."""

T = ["tests/test_bounds.py"]
B = "lib/poprisk/bounds.py"
CH04 = ["book/ch04_compression_generalizes.ipynb"]


def m(id, find, replace, why, tests=T, notebooks=()):
    return dict(id=id, target=B, find=find, replace=replace, why=why, tests=list(tests),
                notebooks=list(notebooks))


MUTATIONS = [
    m("bounds-pbkl-drop-log-2-sqrt-n", "c = (kl + LN2 + 0.5 * math.log(n) - math.log(delta)) * (1 / n)",
      "c = (kl - math.log(delta)) * (1 / n)", "PAC-Bayes-kl without its ln(2 sqrt n) term"),
    m("bounds-pbkl-double-log-2-sqrt-n", "c = (kl + LN2 + 0.5 * math.log(n) - math.log(delta)) * (1 / n)",
      "c = (kl + 2 * (LN2 + 0.5 * math.log(n) - math.log(delta))) * (1 / n)", "PAC-Bayes-kl's ln(2 sqrt n / delta) doubled"),
    m("bounds-occam-drop-log-delta", "log_delta = -math.log(delta)  #",
      "log_delta = 0.0  #", "Occam bound without ln(1/delta)", notebooks=CH04),
    m("bounds-occam-code-length-zero", "return (bits * LN2 + log_delta) / n",
      "return (0 * bits * LN2 + log_delta) / n",
      "Occam bound with the code length set to 0", notebooks=CH04),
    m("bounds-occam-half-bits", "return (bits * LN2 + log_delta) / n",
      "return (bits * LN2 / 2 + log_delta) / n",
      "code length counted in half-bits (ln 2 halved)", notebooks=CH04),
    m("bounds-kl-inverse-arguments-swapped", "if binary_kl(q, mid) <= c:", "if binary_kl(mid, q) <= c:",
      "kl inverse of kl(p || q) instead of kl(q || p)"),
    m("bounds-kl-inverse-bracket-from-zero", "lo, hi = q, 1.0", "lo, hi = 0.0, 1.0",
      "bisection on [0, 1] instead of [q, 1]"),
    m("bounds-hoeffding-no-half", "return q + math.sqrt(_complexity(code_bits, n, delta) / 2.0)",
      "return q + math.sqrt(_complexity(code_bits, n, delta))", "Hoeffding/Pinsker form without the 1/2",
      notebooks=CH04),
    m("bounds-gamma-half-length", "return 2 * (k.bit_length() - 1) + 1", "return (k.bit_length() - 1) + 1",
      "Elias gamma length halved (not a prefix code)"),
    m("bounds-two-part-no-count-header", "counts=composition_bits(n, k),", "counts=0,",
      "two-part code without the label counts"),
    m("bounds-two-part-labels-one-bit-short", "return (multinomial(c) - 1).bit_length()",
      "return (multinomial(c) - 1).bit_length() - 1", "label index one bit too short",
      notebooks=CH04),
    m("bounds-two-part-labels-half", "return (multinomial(c) - 1).bit_length()",
      "return ((multinomial(c) - 1).bit_length() + 1) // 2", "label index of half the length"),
    m("bounds-tensor-no-flag-bit", "return 1 + min(32 * v.size, two_part_code(v, value_bits=32).total)",
      "return min(32 * v.size, two_part_code(v, value_bits=32).total)",
      "raw/two-part mixture without its flag bit (not prefix-free)"),
    m("bounds-encoder-non-prefix-gamma", 'return "0" * (k.bit_length() - 1) + format(k, "b")',
      'return format(k, "b")', "K written in plain binary: the code is not prefix-free", notebooks=CH04),
    m("bounds-fixed-field-one-bit-short", 'width = (size - 1).bit_length()\n    return',
      'width = max((size - 1).bit_length() - 1, 0)\n    return', "encoder's fixed fields one bit too short"),
    m("bounds-catoni-double-complexity", "return min(1.0, -math.expm1(-C * q - c) / -math.expm1(-C))",
      "return min(1.0, -math.expm1(-C * q - 2 * c) / -math.expm1(-C))", "Catoni bound with 2c"),
    m("bounds-catoni-half-complexity", "return min(1.0, -math.expm1(-C * q - c) / -math.expm1(-C))",
      "return min(1.0, -math.expm1(-C * q - c / 2) / -math.expm1(-C))", "Catoni bound with c/2"),
    m("bounds-fast-rate-half", "return q + c + math.sqrt(c * c + 2.0 * q * c)",
      "return q + c / 2 + math.sqrt(c * c / 4 + q * c)", "fast-rate relaxation with c/2"),
]
