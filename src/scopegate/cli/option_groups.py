"""Options several commands share as one value: `@option_group("limits", LimitOptions)` gives
a command the options `LimitOptions` takes (its Annotated typer options) where the command
declares its parameter `limits`, and hands the command the value built from them."""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable
from typing import Any


def option_group(
    parameter: str, build: Callable[..., Any]
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Replace the command's parameter `parameter` (a placeholder, keeping the options' place
    in --help) by the parameters of `build`; the command receives `build(**those)` there."""
    hints = typing.get_type_hints(build, include_extras=True)
    options = [
        p.replace(annotation=hints[p.name]) for p in inspect.signature(build).parameters.values()
    ]

    def decorate(func: Callable[..., None]) -> Callable[..., None]:
        signature = inspect.signature(func, eval_str=True)
        placeholder = signature.parameters[parameter]
        parameters: list[inspect.Parameter] = []
        for p in signature.parameters.values():
            own = p is placeholder
            parameters += [o.replace(kind=p.kind) for o in options] if own else [p]

        @functools.wraps(func)
        def command(*args: Any, **kwargs: Any) -> None:
            given = {o.name: kwargs.pop(o.name, o.default) for o in options}
            func(*args, **{parameter: build(**given)}, **kwargs)

        # Typer reads the options from the signature and the annotations.
        command.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
        command.__annotations__ = {p.name: p.annotation for p in parameters} | {"return": None}
        return command

    return decorate
