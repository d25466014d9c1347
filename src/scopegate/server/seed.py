"""`clarifai/main`, the public app the Clarifai examples name, created on every start if
missing (idempotent, safe with several instances starting at once).

User `clarifai` has no password and no key, so nobody can act as it; its app `main` is
PUBLIC, so any PAT may read its models and predict with them. `color-recognition` works
at once; `general-image-recognition` answers once weights are registered:
`scopegate models register clarifai main general-image-recognition --onnx … --labels …`.
"""

from __future__ import annotations

import logging

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import IntegrityError

from scopegate.contract.visibility import PUBLIC
from scopegate.runners.registry import COLOR_RECOGNIZER, VISUAL_CLASSIFIER
from scopegate.services import model_registry
from scopegate.store import apps, models, users

log = logging.getLogger("scopegate.server.seed")

USER_ID = "clarifai"
APP_ID = "main"
# An address that cannot receive mail (.invalid), marking the account as the seeded one.
EMAIL = "clarifai@seed.scopegate.invalid"

# (model id, type, name, description, alias ids): the aliases are ids Clarifai's own
# general model is known by in code written against it.
MODELS = (
    (
        "color-recognition",
        COLOR_RECOGNIZER,
        "Color Recognition",
        "Dominant colours of an image, with their density and nearest W3C colour name.",
        (),
    ),
    (
        "general-image-recognition",
        VISUAL_CLASSIFIER,
        "General Image Recognition",
        "An image classifier: register ONNX weights and labels with "
        "`scopegate models register clarifai main general-image-recognition`.",
        ("aaa03c23b3724a16a56b629203edc62c",),
    ),
)


def seed_clarifai_main(engine: Engine) -> None:
    for attempt in range(3):
        try:
            with engine.begin() as conn:
                _seed(conn)
            return
        except IntegrityError:  # another instance seeded the same row first: look again
            if attempt == 2:
                raise


def _seed(conn: Connection) -> None:
    user = users.get(conn, USER_ID)
    if user is None:
        users.create(conn, USER_ID, EMAIL, None)
    elif user.email != EMAIL:
        log.warning("user '%s' is a real account here; clarifai/main is not seeded", USER_ID)
        return
    app = apps.get(conn, USER_ID, APP_ID)
    if app is None:
        app = apps.create(
            conn, USER_ID, APP_ID, "Clarifai main", "Public models", visibility=PUBLIC
        )
    for model_id, type_id, name, description, aliases in MODELS:
        model = models.get(conn, app.pk, model_id)
        if model is None:
            model = model_registry.create_model(
                conn, app, model_id, model_type_id=type_id, name=name, description=description
            )
        for alias in aliases:
            models.add_alias(conn, model, alias)
