"""`scopegate models`: weights are registered here (not over the API), then served by every
instance sharing the database."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from scopegate.cli import output as out
from scopegate.cli.common import Database, require_app, require_user, usage, with_database
from scopegate.store import models

models_app = typer.Typer(
    help="Manage models: register ONNX classifier weights, list an app's models.",
    no_args_is_help=True,
)

OwnerArgument = Annotated[str, typer.Argument(help="The app's owner.", show_default=False)]
AppArgument = Annotated[str, typer.Argument(help="The app.", show_default=False)]


def _floats3(value: str | None, option: str) -> tuple[float, float, float] | None:
    if value is None:
        return None
    try:
        parts = tuple(float(p) for p in value.split(","))
    except ValueError:
        parts = ()
    if len(parts) != 3:
        usage(f"{option} takes three numbers separated by commas, e.g. 0.485,0.456,0.406.")
    return parts  # type: ignore[return-value]


def _input_size(value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    parts = value.lower().split("x")
    if len(parts) == 1:
        parts = parts * 2
    if len(parts) != 2 or not all(p.isdigit() and 0 < int(p) <= 4096 for p in parts):
        usage("--input-size takes N or HxW pixels (1 to 4096), e.g. 224 or 224x224.")
    return int(parts[0]), int(parts[1])


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        usage(f"cannot read the {what} file {path}: {exc.strerror or exc}")


@models_app.command("register")
@with_database
def models_register(
    user: OwnerArgument,
    app_id: AppArgument,
    model_id: Annotated[
        str,
        typer.Argument(
            help="The model; created (visual-classifier) if missing.", show_default=False
        ),
    ],
    onnx: Annotated[Path, typer.Option("--onnx", help="The ONNX model file.", show_default=False)],
    labels: Annotated[
        Path,
        typer.Option(
            "--labels",
            help="The labels file: one label per line in output order (or id<TAB>name).",
            show_default=False,
        ),
    ],
    input_size: Annotated[
        str | None,
        typer.Option(
            "--input-size",
            help="N or HxW: the size images are resized to. Default: the model's fixed input "
            "size, else 224.",
            show_default=False,
        ),
    ] = None,
    mean: Annotated[
        str | None,
        typer.Option("--mean", help="Per-channel mean subtracted after scaling to 0..1: R,G,B."),
    ] = None,
    std: Annotated[
        str | None,
        typer.Option("--std", help="Per-channel divisor after subtracting the mean: R,G,B."),
    ] = None,
    name: Annotated[str, typer.Option("--name", help="Name of a newly created model.")] = "",
    description: Annotated[str, typer.Option("--description", help="What this version is.")] = "",
    *,
    db: Database,
) -> None:
    """Store ONNX classifier weights as a new version, after running them once.

    The new version becomes the model's default at once on every server sharing the
    database.
    """
    # Deferred: the runners load Pillow (and onnxruntime, NumPy), which no other command needs.
    from scopegate.runners.base import RunnerError
    from scopegate.services import model_registry

    onnx_bytes = _read(onnx, "ONNX")
    try:
        labels_text = _read(labels, "labels").decode("utf-8")
    except UnicodeDecodeError:
        usage(f"the labels file {labels} is not UTF-8 text.")
    try:
        weights = model_registry.prepare_weights(
            onnx_bytes,
            labels_text,
            input_size=_input_size(input_size),
            mean=_floats3(mean, "--mean"),
            std=_floats3(std, "--std"),
        )
    except RunnerError as exc:
        out.fail(f"the weights were not registered: {exc}")
    with db.begin() as (_, conn):
        require_user(conn, user)
        model, version = model_registry.register_weights(
            conn,
            require_app(conn, user, app_id),
            model_id,
            weights,
            name=name,
            description=description,
        )
    size = weights.preprocessing
    db.show(
        {
            "user_id": user,
            "app_id": app_id,
            "model_id": model.model_id,
            "version_id": version.version_id,
            "labels": len(weights.labels),
            "input_size": [size.height, size.width],
            "layout": size.layout,
        },
        f"Registered version {version.version_id} of {user}/{app_id}/{model.model_id}: "
        f"{len(weights.labels)} labels, input {size.height}x{size.width} {size.layout}.",
    )


@models_app.command("list")
@with_database
def models_list(user: OwnerArgument, app_id: AppArgument, *, db: Database) -> None:
    """List an app's models with their default version."""
    with db.connect() as (_, conn):
        require_user(conn, user)
        found = models.list_models(conn, app_pk=require_app(conn, user, app_id).pk, limit=10**9)
        latest = [models.latest_version(conn, m.pk) for m in found]
    documents = [
        {
            "id": m.model_id,
            "name": m.name,
            "model_type_id": m.model_type_id,
            "version_id": v.version_id if v else None,
            "labels": len(v.labels) if v else 0,
            "created_at": out.iso(m.created_at),
        }
        for m, v in zip(found, latest, strict=True)
    ]
    db.show(
        {"user_id": user, "app_id": app_id, "models": documents},
        out.Rows(
            f"Models of {user}/{app_id}",
            ["id", "type", "version", "labels"],
            [
                [d["id"], d["model_type_id"], d["version_id"] or "(no weights)", str(d["labels"])]
                for d in documents
            ],
            empty=f"App {user}/{app_id} has no models.",
        ),
    )
