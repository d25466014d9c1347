"""Scope algebra over the scope names of `clarifai.auth.scope.S`.

Names are answered in the descriptor spelling (`Inputs_Get`); the portal's spelling
(`Inputs:Get`) is accepted on input.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

ALL = "All"


class UnknownScopeError(ValueError):
    def __init__(self, names: list[str]) -> None:
        super().__init__(", ".join(names))
        self.names = names


def canonical(name: str) -> str:
    return name.strip().replace(":", "_")


class ScopeAlgebra:
    """Normalising, closing over dependencies and comparing scope sets."""

    def __init__(self, depends_on: Mapping[str, Iterable[str]]) -> None:
        self._depends_on = {name: tuple(deps) for name, deps in depends_on.items()}
        self.names = frozenset(self._depends_on)

    def normalize(self, names: Iterable[str]) -> frozenset[str]:
        """Canonical names; raises UnknownScopeError naming every unknown one."""
        result = {canonical(n) for n in names if n.strip()}
        unknown = sorted(n for n in result if n not in self._depends_on)
        if unknown:
            raise UnknownScopeError(unknown)
        return frozenset(result)

    def close(self, names: Iterable[str]) -> frozenset[str]:
        """`names` plus every scope they depend on, transitively: no key is left useless."""
        result: set[str] = set()
        pending = list(names)
        while pending:
            name = pending.pop()
            if name not in result:
                result.add(name)
                pending.extend(self._depends_on.get(name, ()))
        return frozenset(result)


def missing(required: frozenset[str], held: frozenset[str]) -> frozenset[str]:
    """Which of `required` a holder of `held` lacks (`All` lacks nothing)."""
    if ALL in held:
        return frozenset()
    return required - held


def intersect(a: frozenset[str], b: frozenset[str]) -> frozenset[str]:
    """Scopes granted by holding both: `All` is the identity."""
    if ALL in a:
        return b
    if ALL in b:
        return a
    return a & b
