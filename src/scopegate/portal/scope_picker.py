"""The scope checkboxes: scopes grouped by resource, from the ListScopes handler.

ListScopes answers every scope a key type may hold with the scopes it depends on (from the
catalog). The page ticks dependencies as you tick (static/portal.js); the handler adds any
that are missing anyway, so a form sent without JavaScript gives the same key.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field

from scopegate.portal.forms import ALL_SCOPES


@dataclass(frozen=True, slots=True)
class ScopeChoice:
    name: str  # "Inputs_Add"
    action: str  # "Add"
    depends_on: tuple[str, ...]
    checked: bool


@dataclass(slots=True)
class ScopeGroup:
    resource: str  # "Inputs"
    choices: list[ScopeChoice] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ScopePicker:
    all_checked: bool
    groups: list[ScopeGroup]
    deps_json: str  # {"Inputs_Add": ["Inputs_Get"], ...} for the page's script
    # Scopes the key holds that the form does not offer (deprecated or unexposed ones):
    # sent back unchanged, so saving a form never drops what it did not show.
    kept: list[str] = field(default_factory=list)


def build_picker(scope_deps: Iterable, selected: Iterable[str]) -> ScopePicker:
    """`scope_deps`: ListScopesResponse.scope_deps; `selected`: scopes ticked now."""
    chosen = set(selected)
    groups: dict[str, ScopeGroup] = {}
    deps: dict[str, list[str]] = {}
    for item in sorted(scope_deps, key=lambda s: s.scope):
        if item.scope == ALL_SCOPES:
            continue
        resource, _, action = item.scope.partition("_")
        deps[item.scope] = list(item.depending_scopes)
        groups.setdefault(resource, ScopeGroup(resource)).choices.append(
            ScopeChoice(
                name=item.scope,
                action=action or resource,
                depends_on=tuple(item.depending_scopes),
                checked=item.scope in chosen,
            )
        )
    return ScopePicker(
        all_checked=ALL_SCOPES in chosen,
        groups=[groups[name] for name in sorted(groups)],
        deps_json=json.dumps(deps, sort_keys=True),
        kept=sorted(chosen - deps.keys() - {ALL_SCOPES}),
    )
