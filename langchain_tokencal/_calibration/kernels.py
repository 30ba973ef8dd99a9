"""Straight-line linear-algebra kernels for the calibration regression.

The normal equations are refactored after every report: the prior is added
undecayed, so no rank-1 update of the factor applies. Loops over list rows
spend that time dispatching ~100 short inner products; straight-line code
with one local variable per matrix entry runs 3-6x faster. So the kernels are
generated per matrix size (at most 16), as `dataclasses` generates
``__init__``, and compiled on first use (1-10 ms, then cached). Inner
products are summed left to right as ``sum()`` does, so on the same matrix
the factor and the solves equal the textbook loops' to the last bit.
Matrices are lower triangles flattened by rows (see `tri`).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence
    from typing import TypeAlias

    _Flat: TypeAlias = tuple[float, ...]
    _Accumulate: TypeAlias = Callable[
        [list[float], list[float], Sequence[float], float, float], None
    ]
    _Factor: TypeAlias = Callable[
        [list[float], list[float], _Flat, _Flat, float, float], tuple[_Flat, _Flat]
    ]
    _Project: TypeAlias = Callable[[_Flat, _Flat, Sequence[float]], tuple[float, float]]
    _Backward: TypeAlias = Callable[[_Flat, _Flat], _Flat]


__all__ = ["Kernels", "kernels", "tri"]


@dataclass(frozen=True, slots=True)
class Kernels:
    """Straight-line kernels for ``n`` active features (see the comment above)."""

    # (ata, atb, x, w, residual): ata += w x x^T, atb += w residual x in place.
    accumulate: _Accumulate
    # (ata, atb, prior precisions, prior means, scale, pivot floor) ->
    # (L, L^-1 b) with L L^T = ata + diag(p / scale), b = atb + p / scale * m.
    factor: _Factor
    # (L, L^-1 b, x) -> (b.A^-1 x, x.A^-1 x), both from y = L^-1 x.
    project: _Project
    # (L, y) -> c with L^T c = y.
    backward: _Backward


def _step(target: str, rhs: str, terms: Iterable[str], pivot: str) -> str:
    """One substitution: ``target = (rhs - sum(terms)) / pivot``."""
    dot = " + ".join(terms)
    if not dot:
        return f"    {target} = {rhs} / {pivot}"
    return f"    {target} = ({rhs} - ({dot})) / {pivot}"


@functools.cache
def kernels(n: int) -> Kernels:
    """Generate and compile the kernels for ``n`` >= 1 active features.

    Example:
        ```python
        from langchain_tokencal._calibration.kernels import kernels

        k = kernels(2)
        # A = [[4, 2], [2, 3]] as a flat lower triangle, b = [2, 1], no prior.
        low, y = k.factor([4.0, 2.0, 3.0], [2.0, 1.0], (0.0, 0.0), (0.0, 0.0), 1.0, 0.0)
        assert k.backward(low, y) == (0.5, 0.0)
        ```
    """
    idx = range(n)

    def names(prefix: str) -> str:
        return ", ".join(f"{prefix}{i}" for i in idx) + ","

    def forward(rhs: str) -> list[str]:  # y = L^-1 rhs
        return [
            _step(
                f"y{i}", f"{rhs}{i}", (f"l{i}_{m} * y{m}" for m in idx[:i]), f"l{i}_{i}"
            )
            for i in idx
        ]

    cells = [(i, j) for i in idx for j in range(i + 1)]
    ata = ", ".join(f"a{i}_{j}" for i, j in cells) + ","
    low = ", ".join(f"l{i}_{j}" for i, j in cells) + ","
    src = [
        "def accumulate(ata, atb, x, w, residual):",
        f"    {names('x')} = x",
    ]
    for i in idx:
        # A zero feature adds nothing to its row (the loop is sparse).
        src += [
            f"    if x{i}:",
            f"        g = w * x{i}",
            f"        atb[{i}] += g * residual",
        ]
        src += [f"        ata[{tri(i, j)}] += g * x{j}" for j in range(i + 1)]
    src += [
        "def factor(ata, atb, precision, means, scale, floor):",
        f"    {ata} = ata",
        f"    {names('t')} = atb",
        f"    {names('p')} = precision",
        f"    {names('m')} = means",
        *(f"    r{i} = p{i} / scale" for i in idx),
        *(f"    b{i} = t{i} + r{i} * m{i}" for i in idx),
    ]
    for i in idx:
        src += [
            _step(
                f"l{i}_{j}",
                f"a{i}_{j}",
                (f"l{i}_{m} * l{j}_{m}" for m in idx[:j]),
                f"l{j}_{j}",
            )
            for j in idx[:i]
        ]
        diag = " + ".join(f"l{i}_{m} * l{i}_{m}" for m in idx[:i])
        src.append(f"    d = a{i}_{i} + r{i}" + (f" - ({diag})" if diag else ""))
        # max(d, floor) without the call, a NaN included.
        src.append(f"    l{i}_{i} = sqrt(floor if floor > d else d)")
    src += [
        *forward("b"),
        f"    return ({low}), ({names('y')})",
        "def project(low, yb, x):",
        f"    {low} = low",
        f"    {names('q')} = yb",
        f"    {names('x')} = x",
        *forward("x"),
        "    return "
        + " + ".join(f"q{i} * y{i}" for i in idx)
        + ", "
        + " + ".join(f"y{i} * y{i}" for i in idx),
        "def backward(low, y):",
        f"    {low} = low",
        f"    {names('y')} = y",
        *(
            _step(
                f"c{i}",
                f"y{i}",
                (f"l{m}_{i} * c{m}" for m in idx[i + 1 :]),
                f"l{i}_{i}",
            )
            for i in reversed(idx)
        ),
        f"    return ({names('c')})",
    ]
    namespace: dict[str, Any] = {"sqrt": math.sqrt}
    code = compile("\n".join(src), f"<calibration kernels, n={n}>", "exec")
    exec(code, namespace)  # noqa: S102 - the source is built from integers alone
    return Kernels(
        *(namespace[f] for f in ("accumulate", "factor", "project", "backward"))
    )


def tri(i: int, j: int) -> int:
    """Index of entry (i, j), j <= i, in a lower triangle flattened by rows."""
    return i * (i + 1) // 2 + j
