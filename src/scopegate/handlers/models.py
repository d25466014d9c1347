"""PostModels, GetModel, ListModels, PatchModels, DeleteModel, ListModelVersions,
GetModelVersion."""

from __future__ import annotations

from sqlalchemy import Connection

from scopegate.context import RequestContext
from scopegate.contract.status import ApiError, C, does_not_exist, invalid_argument
from scopegate.handlers import Handler
from scopegate.handlers.conflicts import retry_conflicts
from scopegate.handlers.model_convert import model_message, stored_output_info, version_message
from scopegate.handlers.paging import offset_limit
from scopegate.handlers.target_app import target_app
from scopegate.runners.registry import VISUAL_CLASSIFIER
from scopegate.services import model_registry
from scopegate.store import models as store
from scopegate.store.records import AppRecord, ModelRecord, ModelVersionRecord


def find_model(conn: Connection, app: AppRecord, model_id: str) -> ModelRecord:
    if not model_id:
        raise invalid_argument("Name the model: model_id is empty.")
    model = store.get(conn, app.pk, model_id)
    if model is None:
        raise does_not_exist(f"No model '{model_id}' in app {app.user_id}/{app.app_id}.")
    return model


def find_version(
    conn: Connection, model: ModelRecord, version_id: str
) -> ModelVersionRecord | None:
    """The named version (11101 if missing), or the newest one (None if there is none)."""
    if not version_id:
        return store.latest_version(conn, model.pk)
    version = store.get_version(conn, model.pk, version_id)
    if version is None:
        raise does_not_exist(f"Model '{model.model_id}' has no version '{version_id}'.")
    return version


def no_weights(model: ModelRecord) -> ApiError:
    """What a model without a version answers where a version is needed."""
    return ApiError(
        C.MODEL_UNTRAINED,
        "Model has no weights",
        f"Model '{model.model_id}' of {model.user_id}/{model.app_id} has no weights to run. "
        "Whoever runs this server loads them with: scopegate models register "
        f"{model.user_id} {model.app_id} {model.model_id} --onnx MODEL.onnx --labels "
        "LABELS.txt (see the README, 'Models and predict').",
    )


def _check_visibility(app: AppRecord, requested: int) -> None:
    if requested and requested != app.visibility:
        raise invalid_argument(
            "A model is exactly as visible as its app: leave model.visibility unset, or change "
            "the app's visibility with PatchApps."
        )


def post_models(ctx: RequestContext, request):
    given = list(request.models) or ([request.model] if request.HasField("model") else [])
    if len(given) != 1:
        raise invalid_argument("Give one model, in 'model' or as the only entry of 'models'.")
    wanted = given[0]
    # As Clarifai, a model given only an id is a classifier (waiting for weights here).
    model_type_id = wanted.model_type_id or VISUAL_CLASSIFIER
    output_info = stored_output_info(wanted)

    def write():
        with ctx.services.engine.begin() as conn:
            app = target_app(conn, ctx)
            _check_visibility(app, wanted.visibility.gettable)
            model = model_registry.create_model(
                conn,
                app,
                wanted.id,
                model_type_id=model_type_id,
                name=wanted.name or wanted.display_name,
                description=wanted.description,
                notes=wanted.notes,
                output_info=output_info,
            )
            return model, store.latest_version(conn, model.pk)

    # A model created by a concurrent request is then found: "already exists".
    model, version = retry_conflicts(write)
    return ctx.spec.output_type(model=model_message(model, version))


def get_model(ctx: RequestContext, request):
    with ctx.services.engine.connect() as conn:
        model = find_model(conn, target_app(conn, ctx), request.model_id)
        version = find_version(conn, model, request.version_id)
        count = store.count_versions(conn, model.pk)
    return ctx.spec.output_type(model=model_message(model, version, version_count=count))


def list_models(ctx: RequestContext, request):
    offset, limit = offset_limit(request.page, request.per_page)
    with ctx.services.engine.connect() as conn:
        if ctx.target.app_id:
            found = store.list_models(
                conn,
                app_pk=target_app(conn, ctx).pk,
                model_type_id=request.model_type_id,
                offset=offset,
                limit=limit,
            )
        else:  # /v2/users/{user_id}/models: every app of the user (owners only get here)
            found = store.list_models(
                conn,
                user_id=ctx.target.user_id,
                model_type_id=request.model_type_id,
                offset=offset,
                limit=limit,
            )
        latest = [store.latest_version(conn, m.pk) for m in found]
    return ctx.spec.output_type(
        models=[
            model_message(m, v, with_concepts=False) for m, v in zip(found, latest, strict=True)
        ]
    )


def patch_models(ctx: RequestContext, request):
    """Overwrite (or merge: only fields given) name, description and notes."""
    if request.action not in ("", "overwrite", "merge"):
        raise invalid_argument(f"Unsupported action '{request.action}': use overwrite or merge.")
    if not request.models:
        raise invalid_argument("Give at least one model in 'models'.")
    merge = request.action == "merge"
    response = ctx.spec.output_type()
    with ctx.services.engine.begin() as conn:
        app = target_app(conn, ctx)
        for patch in request.models:
            model = find_model(conn, app, patch.id)
            if patch.model_type_id and patch.model_type_id != model.model_type_id:
                raise invalid_argument(
                    f"model_type_id cannot change (model '{model.model_id}' is a "
                    f"'{model.model_type_id}'); create a new model instead."
                )
            _check_visibility(app, patch.visibility.gettable)
            name = model_registry.validate_model_name(patch.name or patch.display_name)
            store.update_model(
                conn,
                model.pk,
                name=name or model.name,  # a model always has a name
                description=(patch.description or model.description)
                if merge
                else patch.description,
                notes=(patch.notes or model.notes) if merge else patch.notes,
            )
            updated = store.get(conn, app.pk, model.model_id)
            response.models.append(
                model_message(updated, store.latest_version(conn, model.pk), with_concepts=False)
            )
    return response


def delete_model(ctx: RequestContext, request):
    with ctx.services.engine.begin() as conn:
        model = find_model(conn, target_app(conn, ctx), request.model_id)
        store.delete_model(conn, model.pk)  # versions and weights go with it
    return ctx.spec.output_type()


def list_model_versions(ctx: RequestContext, request):
    offset, limit = offset_limit(request.page, request.per_page)
    with ctx.services.engine.connect() as conn:
        model = find_model(conn, target_app(conn, ctx), request.model_id)
        versions = store.list_versions(conn, model.pk, offset=offset, limit=limit)
    return ctx.spec.output_type(
        model_versions=[version_message(model, v, with_concepts=False) for v in versions]
    )


def get_model_version(ctx: RequestContext, request):
    """The named version, or with an empty version_id (gRPC only: the REST route names it)
    the newest, as Clarifai answers and the clarifai SDK asks for its method signatures."""
    with ctx.services.engine.connect() as conn:
        model = find_model(conn, target_app(conn, ctx), request.model_id)
        version = find_version(conn, model, request.version_id)
    if version is None:
        raise no_weights(model)
    return ctx.spec.output_type(model_version=version_message(model, version))


HANDLERS = {
    "PostModels": Handler(post_models),
    "GetModel": Handler(get_model),
    "ListModels": Handler(list_models),
    "PatchModels": Handler(patch_models),
    "DeleteModel": Handler(delete_model),
    "ListModelVersions": Handler(list_model_versions),
    "GetModelVersion": Handler(get_model_version),
}
