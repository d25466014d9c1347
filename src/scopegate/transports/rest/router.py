"""Matching REST paths against the catalog's `google.api.http` templates.

A segment trie: literal segments win over variables, with backtracking, so
`/v2/users/{user_id}/apps/{app_id}/inputs/status` is not taken for an input id.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from urllib.parse import unquote

from scopegate.contract.catalog import Catalog, HttpBinding, MethodSpec

# Longer paths are matched afresh each time, so the cache of recent matches stays small.
_CACHED_PATH_LENGTH = 512


@dataclass(slots=True)
class _Node:
    literals: dict[str, _Node] = field(default_factory=dict)
    variable: _Node | None = None
    variable_name: str = ""
    # verb -> (spec, binding); the first binding registered for a verb and shape wins.
    leaves: dict[str, tuple[MethodSpec, HttpBinding]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RouteMatch:
    spec: MethodSpec
    binding: HttpBinding
    path_values: Mapping[str, str]  # read-only: a match is shared by requests for one path


class MethodNotAllowedError(LookupError):
    def __init__(self, allowed: list[str]) -> None:
        super().__init__(", ".join(allowed))
        self.allowed = allowed


class Router:
    def __init__(self, catalog: Catalog, extensions: Iterable[MethodSpec] = ()) -> None:
        """The catalog's bindings, then scopegate's extension methods' (contract/extensions.py):
        where both bind a verb and path shape, the catalog's method is reached."""
        self._root = _Node()
        for spec in (*catalog.methods.values(), *extensions):
            for binding in spec.bindings:
                self._add(spec, binding)
        # Clients repeat the same few paths (their own user and app ids): remembering recent
        # matches skips the unquoting and the walk. Bounded, so arbitrary paths cannot grow it.
        self._recent = functools.lru_cache(maxsize=4096)(self._match)

    def _add(self, spec: MethodSpec, binding: HttpBinding) -> None:
        node = self._root
        names: list[str] = []
        for segment in binding.template.strip("/").split("/"):
            if segment.startswith("{") and segment.endswith("}"):
                if node.variable is None:
                    node.variable = _Node()
                names.append(segment[1:-1])
                node = node.variable
            else:
                node = node.literals.setdefault(segment, _Node())
        node.leaves.setdefault(binding.verb, (spec, binding))

    def match(self, verb: str, path: str) -> RouteMatch | None:
        """The method for `verb path`; None if no template fits; raises
        MethodNotAllowedError if templates fit but not for this verb."""
        if len(path) > _CACHED_PATH_LENGTH:
            return self._match(verb, path)
        return self._recent(verb, path)

    def _match(self, verb: str, path: str) -> RouteMatch | None:
        segments = [unquote(s) for s in path.strip("/").split("/")]
        allowed: list[str] = []
        found = self._walk(self._root, segments, 0, [], verb, allowed)
        if found is None:
            if allowed:
                raise MethodNotAllowedError(sorted(set(allowed)))
            return None
        (spec, binding), values = found
        path_values = dict(zip(binding.variables, values, strict=True))
        return RouteMatch(spec, binding, MappingProxyType(path_values))

    def _walk(self, node: _Node, segments, index, values, verb, allowed):
        if index == len(segments):
            leaf = node.leaves.get(verb)
            if leaf is None:
                allowed.extend(node.leaves)
                return None
            return leaf, list(values)
        segment = segments[index]
        child = node.literals.get(segment)
        if child is not None:
            found = self._walk(child, segments, index + 1, values, verb, allowed)
            if found is not None:
                return found
        if node.variable is not None and segment:
            values.append(segment)
            found = self._walk(node.variable, segments, index + 1, values, verb, allowed)
            values.pop()
            if found is not None:
                return found
        return None
