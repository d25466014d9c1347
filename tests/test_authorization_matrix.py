"""The authorization matrix: every catalog method, every credential situation, both
transports, against a reference policy written once here from the documented rules
(README, "Authorization" and "Organizations and teams").

Each call's answer is sorted into: allowed (past authorization: success, or the handler's
own answer such as NOT_IMPLEMENTED or a validation error), or the denial code. A denial as
"does not exist" carries no details (a handler's own not-found names what is missing).
Any difference fails the suite: a wrong allow most of all.

The concept, input and model methods run with real data: every app a situation names holds
an input, a concept and two colour models, and these methods name them (GetInput of that
input, PostModelOutputs on that model with an image, ...). For them an allowed call must
succeed outright, and before DeleteApp the apps are read back: each write took effect
exactly where it was allowed.

The world: owner O with private apps (one per situation and transport, so a method that
deletes its target, run last, spoils nothing), a public app, a collaborator C granted All
on one app and only reads on another, a stranger S, and a member M holding a different
role in each of six organizations, each with one private app per transport.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import grpc
import pytest
import requests
from clarifai_grpc.grpc.api import resources_pb2, service_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2 as codes
from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from scopegate.contract.catalog import AuthType, MethodSpec, load_catalog
from tests.support.api import ORGS, PASSWORD, call, login, ok
from tests.support.clients import make_stub, new_id
from tests.support.images import png_bytes

CATALOG = load_catalog()
ALLOW = "allowed"
INVALID = codes.CONN_INVALID_REQUEST  # no or malformed `authorization`
KEY_INVALID = codes.CONN_KEY_INVALID
SCOPES = codes.CONN_INSUFFICIENT_SCOPES
MISSING = codes.CONN_DOES_NOT_EXIST
ALL = "All"
ALL_SCOPES = frozenset(CATALOG.scopes) - {ALL}
TRANSPORTS = ("grpc", "rest")

# --- the reference policy, from the documented rules -------------------------------------


def closure(scopes) -> frozenset[str]:
    """A scope with its dependencies (`clarifai_depending_scopes`), transitively."""
    if ALL in scopes:
        return frozenset({ALL})
    seen, todo = set(), list(scopes)
    while todo:
        scope = todo.pop()
        if scope not in seen:
            seen.add(scope)
            todo.extend(CATALOG.scopes[scope].depends_on)
    return frozenset(seen)


def covers(held: frozenset[str], required: frozenset[str]) -> bool:
    return ALL in held or required <= held


def account_level(spec: MethodSpec) -> bool:
    """README, "Who may reach what": a method acts on an account when it needs a scope of
    the account-administration families other than `Apps_Get`, or when none of its REST
    routes names an app although one names a user or it takes a PAT only."""
    if "user_app_id" not in spec.input_type.DESCRIPTOR.fields_by_name:
        return False
    administration = _ADMINISTRATION | _BILLING | {"Apps"}
    if any(_resource(s) in administration for s in spec.scopes - {"Apps_Get"}):
        return True
    templates = [b.template for b in spec.bindings]
    if any("{user_app_id.app_id}" in t for t in templates):
        return False
    pat_only = spec.auth_type is AuthType.PAT_AUTH
    return pat_only or any("{user_app_id.user_id}" in t for t in templates)


def public_read(spec: MethodSpec) -> bool:
    """README: app-level methods whose scopes are all `*_Get`, `Search` or `Predict`,
    not writes by name."""
    return (
        spec.auth_type is AuthType.KEY_AUTH
        and not account_level(spec)
        and bool(spec.scopes)
        and all(s.endswith("_Get") or s in ("Search", "Predict") for s in spec.scopes)
        and not spec.name.startswith(("Patch", "Delete", "Put"))
    )


def _resource(scope: str) -> str:
    return scope.rpartition("_")[0]


_ADMINISTRATION = {"Keys", "Collaborators", "AuditLogs", "Secrets", "PasswordPolicies"}
_BILLING = {"HistoricalUsage", "UserMetrics"}
_INFRA = {"ComputeClusters", "Nodepools", "Deployments", "Runners", "RunnerItems"}
_INFRA |= {"InstanceTypes"}
LISTING = CATALOG.methods["ListApps"].scopes
DATA = {s for s in ALL_SCOPES if _resource(s) not in _ADMINISTRATION | _BILLING | _INFRA | {"Apps"}}
READ = frozenset({s for s in DATA if s.endswith("_Get") or s in ("Search", "Predict")} | LISTING)
WRITE = frozenset(DATA | LISTING)
ROLE_ON_APP = {
    "admin": frozenset({ALL}),
    "org_contributor": WRITE,
    "org_user": READ,
    "team_contributor": frozenset(),
    "financial_manager": frozenset(),
    "infrastructure_manager": frozenset(),
}
ROLE_ON_ORG = {
    "admin": frozenset({ALL}),
    "org_contributor": WRITE | {"Apps_Add"},
    "org_user": LISTING,
    "team_contributor": LISTING,
    "financial_manager": LISTING | {s for s in ALL_SCOPES if _resource(s) in _BILLING},
    "infrastructure_manager": LISTING | {s for s in ALL_SCOPES if _resource(s) in _INFRA},
}


@dataclass(frozen=True)
class Credential:
    kind: str  # none, malformed, garbage, expired, revoked, session, app_key, pat
    user: str = ""
    scopes: frozenset[str] = frozenset({ALL})
    app: tuple[str, str] = ("", "")  # an app key's (owner, app)
    # A fine-grained PAT's limits: (apps as (owner, app), whole organizations); None: all.
    limits: tuple[frozenset[tuple[str, str]], frozenset[str]] | None = None
    # An organization whose token policy blocks this credential on its apps.
    blocked_in: str = ""


@dataclass
class World:
    owner: str = ""
    grants: dict[tuple[str, str, str], frozenset[str]] = field(default_factory=dict)
    roles: dict[tuple[str, str], str] = field(default_factory=dict)  # (org, user) -> role
    public: set[tuple[str, str]] = field(default_factory=set)

    def granted(self, caller: str, user: str, app: str) -> frozenset[str] | None:
        role = self.roles.get((user, caller))
        if not app:
            return ROLE_ON_ORG[role] if role else None
        scopes = set(self.grants.get((caller, user, app), ()))
        if role:
            scopes |= ROLE_ON_APP[role]
        return frozenset(scopes) or None


def expected(spec: MethodSpec, cred: Credential, user: str, app: str, world: World):
    """README, "Organization policies": after authorization, a credential the policy
    blocks answers CONN_KEY_INVALID on the organization's apps (not on its account)."""
    answer = _authorized(spec, cred, user, app, world)
    if answer == ALLOW and cred.blocked_in and app and user == cred.blocked_in:
        return KEY_INVALID
    return answer


def _authorized(spec: MethodSpec, cred: Credential, user: str, app: str, world: World):
    if spec.auth_type is AuthType.NO_AUTH:
        return ALLOW
    if cred.kind in ("none", "malformed"):
        return INVALID
    if cred.kind in ("garbage", "expired", "revoked"):
        return KEY_INVALID
    if spec.auth_type is AuthType.ADMIN_AUTH:
        return SCOPES
    if spec.auth_type is AuthType.SESSION_TOKEN_AUTH and cred.kind != "session":
        return SCOPES
    if spec.auth_type is AuthType.PAT_AUTH and cred.kind == "app_key":
        return SCOPES
    if cred.kind == "app_key":  # default app keys hold All
        owner, own_app = cred.app
        if (user or owner) != owner or (app and app != own_app):
            return KEY_INVALID
        return ALLOW
    user = cred.user if user in ("", "me") else user
    if cred.limits is not None:
        # README, "Fine-grained tokens": outside its apps and organizations, a stranger; an
        # account-level method is judged on the account, which only a named organization opens.
        limited_apps, limited_orgs = cred.limits
        on_app = "" if account_level(spec) else app
        if user not in limited_orgs and (not on_app or (user, on_app) not in limited_apps):
            return MISSING
    held = closure(cred.scopes)
    if user == cred.user:
        return ALLOW if covers(held, spec.scopes) else SCOPES
    if account_level(spec):
        # Only the owner, or an organization's roles on the organization: never a grant,
        # a team or the visibility of one of its apps.
        granted = world.granted(cred.user, user, "")
        if granted is None:
            return MISSING
        if not (covers(held, spec.scopes) and covers(granted, spec.scopes)):
            return SCOPES
        if not app:
            return ALLOW
        # "Every app a request acts on is authorized": the app it names, for this method too.
        on_app = world.granted(cred.user, user, app)
        if on_app is None:
            return MISSING
        return ALLOW if covers(on_app, spec.scopes) else SCOPES
    granted = world.granted(cred.user, user, app)
    public = (user, app) in world.public
    if granted is None:
        if not public:
            return MISSING
        return ALLOW if public_read(spec) and covers(held, spec.scopes) else SCOPES
    if public and public_read(spec) and covers(held, spec.scopes):
        return ALLOW
    both = covers(held, spec.scopes) and covers(granted, spec.scopes)
    return ALLOW if both else SCOPES


def outcome(code: int, details: str):
    if code == INVALID:  # also a handler's "invalid request": only ours names the header
        return INVALID if "authorization header" in details else ALLOW
    if code in (KEY_INVALID, SCOPES):
        return code
    if code == MISSING and not details:
        return MISSING
    return ALLOW


# --- real data ----------------------------------------------------------------------------

PNG = png_bytes()
R = resources_pb2


def _image(input_id: str = "") -> resources_pb2.Input:
    return R.Input(id=input_id, data=R.Data(image=R.Image(base64=PNG)))


def _patched_metadata() -> resources_pb2.Input:
    patch = R.Input(id="seeded")
    patch.data.metadata.update({"patched": True})
    return patch


# What each method is asked with real data; `version` is the app's "colors" version.
REAL_REQUESTS = {
    "PostConcepts": lambda version: {"concepts": [R.Concept(id="posted")]},
    "GetConcept": lambda version: {"concept_id": "dog"},
    "ListConcepts": lambda version: {},
    "PatchConcepts": lambda version: {
        "action": "overwrite",
        "concepts": [R.Concept(id="dog", name="Patched")],
    },
    "PostConceptsSearches": lambda version: {"concept_query": R.ConceptQuery(name="DOG")},
    "PostInputs": lambda version: {"inputs": [_image("posted")]},
    "GetInput": lambda version: {"input_id": "seeded"},
    "ListInputs": lambda version: {},
    "PatchInputs": lambda version: {"action": "merge", "inputs": [_patched_metadata()]},
    "DeleteInput": lambda version: {"input_id": "doomed-1"},
    "DeleteInputs": lambda version: {"ids": ["doomed-2"]},
    "PostModels": lambda version: {"model": R.Model(id="posted", model_type_id="color-recognizer")},
    "GetModel": lambda version: {"model_id": "colors"},
    "ListModels": lambda version: {},
    "PatchModels": lambda version: {
        "action": "merge",
        "models": [R.Model(id="colors", description="Patched")],
    },
    "DeleteModel": lambda version: {"model_id": "doomed"},
    "ListModelVersions": lambda version: {"model_id": "colors"},
    "GetModelVersion": lambda version: {"model_id": "colors", "version_id": version},
    "PostModelOutputs": lambda version: {
        "model_id": "colors",
        "version_id": version,
        "inputs": [_image()],
    },
    "GetModelType": lambda version: {"model_type_id": "color-recognizer"},
    "ListModelTypes": lambda version: {},
    "GetInputCount": lambda version: {},
    "PatchApp": lambda version: {"action": "merge", "app": R.App(description="Patched")},
}


# --- the world ----------------------------------------------------------------------------

SITUATIONS = (
    "none",
    "malformed",
    "garbage",
    "expired",
    "revoked",
    "session",
    "app key on its app",
    "app key naming another app",
    "owner PAT",
    "owner PAT lacking a required scope",
    "collaborator PAT, granted All",
    "collaborator PAT, granted reads",
    *(f"org {role} PAT" for role in ROLE_ON_APP),
    "stranger PAT, private app",
    "stranger PAT, public app",
    "fine-grained PAT on its app",
    "fine-grained PAT naming another app of its owner",
    "fine-grained PAT limited to an organization, on its app",
    "fine-grained PAT pending an organization's approval, on its app",
)


@dataclass
class Situation:
    credential: Credential
    secret: str  # what goes in the header ("" for none)
    user: str  # named owner ("" names nothing)
    app: str
    header: str = "authorization"


class Matrix:
    def __init__(self, server) -> None:
        self.server = server
        self.world = World()
        self.stub = make_stub(server, "grpc")
        self.channel = grpc.insecure_channel(server.grpc_address)  # generic calls, any method
        self.http = requests.Session()
        self.situations: dict[tuple[str, str], Situation] = {}
        self._lacking: dict[str, tuple[str, frozenset[str]]] = {}
        # (transport, situation) -> the version id of the "colors" model of its app
        self.versions: dict[tuple[str, str], str] = {}

    # building ---------------------------------------------------------------------------

    def _app(self, pat: str, owner: str, visibility: int = 0) -> tuple[str, str]:
        app = resources_pb2.App(id=new_id("app"))
        if visibility:
            app.visibility.gettable = visibility
        made = ok(
            self.stub.PostApps(
                service_pb2.PostAppsRequest(
                    user_app_id=resources_pb2.UserAppIDSet(user_id=owner), apps=[app]
                ),
                metadata=(("authorization", f"Key {pat}"),),
            )
        )
        return app.id, made.apps[0].metadata["default_api_key"]

    def _pat(self, pat: str, scopes, expires_at: Timestamp | None = None, apps=()) -> str:
        key = resources_pb2.Key(type="personal_access_token", scopes=sorted(scopes), apps=apps)
        if expires_at is not None:
            key.expires_at.CopyFrom(expires_at)
        return (
            ok(
                self.stub.PostKeys(
                    service_pb2.PostKeysRequest(
                        user_app_id=resources_pb2.UserAppIDSet(), keys=[key]
                    ),
                    metadata=(("authorization", f"Key {pat}"),),
                )
            )
            .keys[0]
            .id
        )

    def build(self) -> None:
        server, world = self.server, self.world
        owner, collaborator, stranger, member = (new_id(p) for p in ("o", "c", "s", "m"))
        world.owner = owner
        owner_pat = server.create_user(owner, password=PASSWORD)
        collaborator_pat = server.create_user(collaborator)
        stranger_pat = server.create_user(stranger)
        member_pat = server.create_user(member)
        self.owner_pat = owner_pat
        _, body = login(server, f"{owner}@example.com")
        session = body["session_token"]

        expires = Timestamp()
        expires.FromSeconds(int(time.time()) + 2)
        expired = self._pat(owner_pat, [ALL], expires)
        revoked = self._pat(owner_pat, [ALL])
        ok(
            self.stub.DeleteKey(
                service_pb2.DeleteKeyRequest(key_id=revoked),
                metadata=(("authorization", f"Key {owner_pat}"),),
            )
        )
        orgs = {}
        for role in ROLE_ON_APP:
            org_id = new_id("org")
            call(server, "POST", ORGS, owner_pat, {"id": org_id})
            call(
                server,
                "POST",
                f"{ORGS}/{org_id}/members",
                owner_pat,
                {"user_id": member, "role": role},
            )
            world.roles[(org_id, member)] = role
            orgs[role] = org_id
        self.orgs = orgs
        garbage = "sgp_" + "A" * 36
        for transport in TRANSPORTS:
            apps = {name: self._app(owner_pat, owner) for name in SITUATIONS}
            other_app, _ = self._app(owner_pat, owner)
            public_app, _ = self._app(owner_pat, owner, resources_pb2.Visibility.PUBLIC)
            world.public.add((owner, public_app))
            for name, grant in (
                ("collaborator PAT, granted All", [ALL]),
                ("collaborator PAT, granted reads", sorted(READ)),
            ):
                ok(
                    self.stub.PostCollaborators(
                        service_pb2.PostCollaboratorsRequest(
                            user_app_id=resources_pb2.UserAppIDSet(
                                user_id=owner, app_id=apps[name][0]
                            ),
                            collaborators=[
                                resources_pb2.Collaborator(
                                    user=resources_pb2.User(id=collaborator), scopes=grant
                                )
                            ],
                        ),
                        metadata=(("authorization", f"Key {owner_pat}"),),
                    )
                )
                world.grants[(collaborator, owner, apps[name][0])] = closure(grant)
            owner_cred = Credential("pat", owner)
            own = {name: (owner, app_id) for name, (app_id, _) in apps.items()}
            plain = {
                "none": Situation(Credential("none"), "", *own["none"]),
                "malformed": Situation(Credential("malformed"), "", *own["malformed"]),
                "garbage": Situation(Credential("garbage"), garbage, *own["garbage"]),
                "expired": Situation(Credential("expired"), expired, *own["expired"]),
                "revoked": Situation(Credential("revoked"), revoked, *own["revoked"]),
                "session": Situation(
                    Credential("session", owner),
                    session,
                    *own["session"],
                    header="x-clarifai-session-token",
                ),
                "app key on its app": Situation(
                    Credential("app_key", owner, app=own["app key on its app"]),
                    apps["app key on its app"][1],
                    "",
                    "",
                ),
                "app key naming another app": Situation(
                    Credential("app_key", owner, app=own["app key naming another app"]),
                    apps["app key naming another app"][1],
                    owner,
                    other_app,
                ),
                "owner PAT": Situation(owner_cred, owner_pat, *own["owner PAT"]),
                "owner PAT lacking a required scope": Situation(
                    owner_cred, owner_pat, *own["owner PAT lacking a required scope"]
                ),
                "collaborator PAT, granted All": Situation(
                    Credential("pat", collaborator),
                    collaborator_pat,
                    *own["collaborator PAT, granted All"],
                ),
                "collaborator PAT, granted reads": Situation(
                    Credential("pat", collaborator),
                    collaborator_pat,
                    *own["collaborator PAT, granted reads"],
                ),
                "stranger PAT, private app": Situation(
                    Credential("pat", stranger), stranger_pat, *own["stranger PAT, private app"]
                ),
                "stranger PAT, public app": Situation(
                    Credential("pat", stranger), stranger_pat, owner, public_app
                ),
            }
            for role, org_id in orgs.items():
                org_app, _ = self._app(owner_pat, org_id)
                plain[f"org {role} PAT"] = Situation(
                    Credential("pat", member), member_pat, org_id, org_app
                )
            # Fine-grained PATs: the owner's, limited to the situation's app or to another;
            # the org_contributor member's, limited to its organization.
            for name, limit_to in (
                ("fine-grained PAT on its app", own["fine-grained PAT on its app"][1]),
                ("fine-grained PAT naming another app of its owner", other_app),
            ):
                limits = (frozenset({(owner, limit_to)}), frozenset())
                secret = self._pat(owner_pat, [ALL], apps=[R.App(user_id=owner, id=limit_to)])
                plain[name] = Situation(Credential("pat", owner, limits=limits), secret, *own[name])
            org_id = orgs["org_contributor"]
            org_app, _ = self._app(owner_pat, org_id)
            secret = self._pat(member_pat, [ALL], apps=[R.App(user_id=org_id, id="*")])
            plain["fine-grained PAT limited to an organization, on its app"] = Situation(
                Credential("pat", member, limits=(frozenset(), frozenset({org_id}))),
                secret,
                org_id,
                org_app,
            )
            # An organization of its own requiring approval: the member's fine-grained
            # token naming it waits, so it is blocked on the organization's apps.
            strict = new_id("org")
            call(server, "POST", ORGS, owner_pat, {"id": strict})
            call(
                server,
                "POST",
                f"{ORGS}/{strict}/members",
                owner_pat,
                {"user_id": member, "role": "org_contributor"},
            )
            world.roles[(strict, member)] = "org_contributor"
            strict_app, _ = self._app(owner_pat, strict)
            call(server, "PUT", f"{ORGS}/{strict}/policy", owner_pat, {"approval_required": True})
            secret = self._pat(member_pat, [ALL], apps=[R.App(user_id=strict, id="*")])
            plain["fine-grained PAT pending an organization's approval, on its app"] = Situation(
                Credential(
                    "pat", member, limits=(frozenset(), frozenset({strict})), blocked_in=strict
                ),
                secret,
                strict,
                strict_app,
            )
            for name, situation in plain.items():
                self.situations[(transport, name)] = situation
                self.versions[(transport, name)] = self._seed(situation)
        time.sleep(max(0.0, expires.seconds + 0.2 - time.time()))

    @staticmethod
    def target(situation: Situation) -> resources_pb2.UserAppIDSet:
        """The app a situation's calls reach (an API key's own app when they name none)."""
        user, app = situation.user, situation.app
        if not app:
            user, app = situation.credential.app
        return resources_pb2.UserAppIDSet(user_id=user, app_id=app)

    def _owner_call(self, method: str, request):
        return ok(
            getattr(self.stub, method)(
                request, metadata=(("authorization", f"Key {self.owner_pat}"),)
            )
        )

    def _seed(self, situation: Situation) -> str:
        """An input, two spare inputs, a concept and two colour models in the situation's
        app, put there by its owner; the "colors" version id."""
        ids = self.target(situation)
        self._owner_call(
            "PostInputs",
            service_pb2.PostInputsRequest(
                user_app_id=ids,
                inputs=[_image("seeded"), _image("doomed-1"), _image("doomed-2")],
            ),
        )
        self._owner_call(
            "PostConcepts",
            service_pb2.PostConceptsRequest(user_app_id=ids, concepts=[R.Concept(id="dog")]),
        )
        version = ""
        for model_id in ("colors", "doomed"):
            made = self._owner_call(
                "PostModels",
                service_pb2.PostModelsRequest(
                    user_app_id=ids, model=R.Model(id=model_id, model_type_id="color-recognizer")
                ),
            )
            version = version or made.model.model_version.id
        return version

    def real_request(self, spec: MethodSpec, transport: str, name: str) -> Message | None:
        make = REAL_REQUESTS.get(spec.name)
        if make is None:
            return None
        return spec.input_type(**make(self.versions[(transport, name)]))

    def effects(self, transport: str, allowed: dict[str, set[str]]) -> list[str]:
        """Read every situation's app back with the owner's PAT: each real-data write took
        effect exactly where it was allowed."""
        wrong = []
        for name in SITUATIONS:
            ids = self.target(self.situations[(transport, name)])
            done = allowed.get(name, set())

            def exists(method: str, request, ids=ids) -> bool:
                reply = getattr(self.stub, method)(
                    request, metadata=(("authorization", f"Key {self.owner_pat}"),)
                )
                assert reply.status.code in (codes.SUCCESS, MISSING), reply.status
                return reply.status.code == codes.SUCCESS

            def got_input(input_id: str, ids=ids) -> bool:
                return exists(
                    "GetInput", service_pb2.GetInputRequest(user_app_id=ids, input_id=input_id)
                )

            def got_model(model_id: str, ids=ids):
                request = service_pb2.GetModelRequest(user_app_id=ids, model_id=model_id)
                return exists("GetModel", request)

            dog = self._owner_call(
                "GetConcept", service_pb2.GetConceptRequest(user_app_id=ids, concept_id="dog")
            ).concept
            seeded = self._owner_call(
                "GetInput", service_pb2.GetInputRequest(user_app_id=ids, input_id="seeded")
            ).input
            colors = self._owner_call(
                "GetModel", service_pb2.GetModelRequest(user_app_id=ids, model_id="colors")
            ).model
            app = self._owner_call("GetApp", service_pb2.GetAppRequest(user_app_id=ids)).app
            observed = {
                "PostConcepts": exists(
                    "GetConcept",
                    service_pb2.GetConceptRequest(user_app_id=ids, concept_id="posted"),
                ),
                "PatchConcepts": dog.name == "Patched",
                "PostInputs": got_input("posted"),
                "PatchInputs": "patched" in seeded.data.metadata,
                "DeleteInput": not got_input("doomed-1"),
                "DeleteInputs": not got_input("doomed-2"),
                "PostModels": got_model("posted"),
                "PatchModels": colors.description == "Patched",
                "DeleteModel": not got_model("doomed"),
                "PatchApp": app.description == "Patched",
            }
            for method, happened in observed.items():
                if happened != (method in done):
                    wrong.append(
                        f"EFFECT: {method} / {name}: allowed={method in done}, "
                        f"took effect={happened}"
                    )
        return wrong

    def lacking(self, spec: MethodSpec) -> tuple[str, frozenset[str]] | None:
        """An owner PAT holding every scope whose dependencies avoid one that `spec`
        requires: the PAT truly lacks it (created once per scope)."""
        if not spec.scopes:
            return None
        scope = sorted(spec.scopes)[0]
        if scope not in self._lacking:
            held = frozenset(s for s in ALL_SCOPES if scope not in closure({s}))
            self._lacking[scope] = (self._pat(self.owner_pat, held), held)
        return self._lacking[scope]

    # calling ----------------------------------------------------------------------------

    def grpc_call(
        self, spec: MethodSpec, situation: Situation, real: Message | None = None
    ) -> tuple[int, str]:
        request = spec.input_type()
        if real is not None:
            request.CopyFrom(real)
        if spec.has_user_app_id:
            request.user_app_id.user_id = situation.user
            request.user_app_id.app_id = situation.app
        metadata = _metadata(situation)
        path = spec.full_name
        ser, de = spec.input_type.SerializeToString, spec.output_type.FromString
        if spec.client_streaming and spec.server_streaming:
            replies = self.channel.stream_stream(path, ser, de)(
                iter([request]), metadata=metadata, timeout=20
            )
            reply = next(iter(replies))
        elif spec.client_streaming:
            reply = self.channel.stream_unary(path, ser, de)(
                iter([request]), metadata=metadata, timeout=20
            )
        elif spec.server_streaming:
            reply = next(
                iter(
                    self.channel.unary_stream(path, ser, de)(request, metadata=metadata, timeout=20)
                )
            )
        else:
            reply = self.channel.unary_unary(path, ser, de)(request, metadata=metadata, timeout=20)
        return reply.status.code, reply.status.details

    def rest_call(
        self, spec: MethodSpec, situation: Situation, real: Message | None = None
    ) -> tuple[int, str, str, str]:
        """(code, details, user named, app named): a path names only what its template has.
        With a real request, its fields fill the path's other variables and the body."""
        binding = UNIQUE_BINDINGS[spec.name]
        user = situation.user or (
            situation.credential.app[0] if "user_app_id.user_id" in binding.variables else ""
        )
        app = situation.app or (
            situation.credential.app[1] if "user_app_id.app_id" in binding.variables else ""
        )
        path = binding.template
        body_message = spec.input_type()
        if real is not None:
            body_message.CopyFrom(real)
        for variable in binding.variables:
            value = {"user_app_id.user_id": user, "user_app_id.app_id": app}.get(variable)
            if value is None:
                if real is not None:  # real requests' other path variables are plain fields
                    value = getattr(real, variable)
                    body_message.ClearField(variable)
                value = value or _sample(spec, variable)
            path = path.replace("{" + variable + "}", value)
        headers = {"content-type": "application/json"}
        if situation.credential.kind == "malformed":
            headers["authorization"] = "Bearer abc"
        elif situation.secret:
            value = situation.secret
            headers[situation.header] = (
                f"Key {value}" if situation.header == "authorization" else value
            )
        body = None
        if binding.body:
            body = "{}"
            if real is not None:  # its ids are in the path
                body_message.ClearField("user_app_id")
                body = json.dumps(
                    json_format.MessageToDict(body_message, preserving_proto_field_name=True)
                )
        reply = self.http.request(
            binding.verb, self.server.http_url + path, headers=headers, data=body, timeout=20
        )
        status = json.loads(reply.content)["status"]
        named_user = user if "user_app_id.user_id" in binding.variables else ""
        named_app = app if "user_app_id.app_id" in binding.variables else ""
        return status["code"], status.get("details", ""), named_user, named_app


def _metadata(situation: Situation):
    if situation.credential.kind == "malformed":
        return (("authorization", "Bearer abc"),)
    if not situation.secret:
        return ()
    if situation.header == "authorization":
        return (("authorization", f"Key {situation.secret}"),)
    return ((situation.header, situation.secret),)


def _sample(spec: MethodSpec, dotted: str) -> str:
    """A path value that parses as the field's type and names nothing that exists."""
    descriptor = spec.input_type.DESCRIPTOR
    field = None
    for name in dotted.split("."):
        field = descriptor.fields_by_name[name]
        descriptor = field.message_type
    if field.type == FieldDescriptor.TYPE_ENUM:
        return str(field.enum_type.values[-1].number)
    if field.type in (FieldDescriptor.TYPE_STRING, FieldDescriptor.TYPE_BYTES):
        return "x1"
    return "1"


def _unique_bindings():
    """Per method, a REST binding no other method shares (REST reaches only the first of
    methods sharing a verb and path shape; gRPC reaches them all)."""
    shapes: dict[tuple[str, str], list[str]] = {}
    for spec in CATALOG.methods.values():
        for binding in spec.bindings:
            shape = binding.template
            for variable in binding.variables:
                shape = shape.replace("{" + variable + "}", "*")
            shapes.setdefault((binding.verb, shape), []).append(spec.name)
    unique = {}
    for spec in CATALOG.methods.values():
        for binding in spec.bindings:
            shape = binding.template
            for variable in binding.variables:
                shape = shape.replace("{" + variable + "}", "*")
            if shapes[(binding.verb, shape)] == [spec.name]:
                unique[spec.name] = binding
                break
    return unique


UNIQUE_BINDINGS = _unique_bindings()


def _ordered_methods() -> list[MethodSpec]:
    """DeleteApp last: it removes the situation's app (each situation has its own)."""
    return sorted(CATALOG.methods.values(), key=lambda s: (s.name == "DeleteApp", s.name))


@pytest.fixture(scope="module")
def matrix(server) -> Iterator[Matrix]:
    built = Matrix(server)
    built.build()
    yield built
    built.channel.close()
    built.http.close()


def _situations(matrix: Matrix, transport: str, spec: MethodSpec):
    for name in SITUATIONS:
        situation = matrix.situations[(transport, name)]
        if name == "owner PAT lacking a required scope":
            lacking = matrix.lacking(spec)
            if lacking is None:
                continue
            secret, held = lacking
            situation = Situation(
                Credential("pat", situation.credential.user, held),
                secret,
                situation.user,
                situation.app,
            )
        yield name, situation


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_every_method_in_every_situation(matrix: Matrix, transport: str):
    assert len(CATALOG.methods) == 273
    wrong: list[str] = []
    checked = 0
    allowed: dict[str, set[str]] = {}  # situation -> real-data methods it was allowed
    for spec in _ordered_methods():
        if transport == "rest" and spec.name not in UNIQUE_BINDINGS:
            continue
        if spec.name == "DeleteApp":  # the apps are still there: read them back
            wrong += matrix.effects(transport, allowed)
        for name, situation in _situations(matrix, transport, spec):
            real = matrix.real_request(spec, transport, name)
            if transport == "grpc":
                code, details = matrix.grpc_call(spec, situation, real)
                user = situation.user if spec.has_user_app_id else ""
                app = situation.app if spec.has_user_app_id else ""
            else:
                code, details, user, app = matrix.rest_call(spec, situation, real)
            want = expected(spec, situation.credential, user, app, matrix.world)
            got = outcome(code, details)
            checked += 1
            if real is not None and want == ALLOW:
                allowed.setdefault(name, set()).add(spec.name)
                if code != codes.SUCCESS:  # with real data, allowed means answered
                    wrong.append(
                        f"NOT ANSWERED: {spec.name} / {name}: allowed, got {code} {details!r}"
                    )
                continue
            if got != want:
                kind = "WRONG ALLOW" if got == ALLOW else "mismatch"
                wrong.append(
                    f"{kind}: {spec.name} / {name}: expected {want}, got {code} {details!r}"
                )
    assert not wrong, f"{len(wrong)} of {checked} calls differ:\n" + "\n".join(wrong[:40])
    # gRPC reaches every method in every situation; REST every method with its own route.
    assert checked > (250 if transport == "grpc" else 200) * (len(SITUATIONS) - 1)


# --- a body naming another app ------------------------------------------------------------

# The implemented methods whose request names an app beside `user_app_id`, with a body that
# names app `other` of `owner`, and how to see whether `other` was touched.
BODY_NAMES_APP = {
    "PatchApps": lambda owner, other: {
        "action": "merge",
        "apps": [R.App(id=other, description="touched")],
    },
    "PatchApp": lambda owner, other: {
        "action": "merge",
        "app": R.App(id=other, description="touched"),
    },
    "PostKeys": lambda owner, other: {
        "keys": [R.Key(type="app_specific_key", apps=[R.App(id=other, user_id=owner)])]
    },
    "PostCollaborators": lambda owner, other: {
        "collaborators": [R.Collaborator(app=R.App(id=other, user_id=owner), user=R.User(id=owner))]
    },
}


def test_every_method_naming_another_app_in_its_body(matrix: Matrix):
    """Each situation names its own app in `user_app_id` and another app of the same owner
    (to which it has no grant, team or role beyond the organization's) in the body: the
    call may act on that other app only where the reference policy allows the method on
    it, and the other app is read back untouched otherwise."""
    discovered = {
        spec.name
        for spec in CATALOG.methods.values()
        if any(
            f.message_type is not None and f.message_type.name == "App"
            for f in _fields_below(spec.input_type.DESCRIPTOR, depth=2)
        )
    }
    assert set(BODY_NAMES_APP) <= discovered  # the catalog still names apps there
    stub, owner_pat, world = matrix.stub, matrix.owner_pat, matrix.world
    names = [
        "collaborator PAT, granted All",
        "collaborator PAT, granted reads",
        "app key on its app",
        *(f"org {role} PAT" for role in ROLE_ON_APP),
        "fine-grained PAT on its app",
        "fine-grained PAT limited to an organization, on its app",
    ]
    wrong = []
    for name in names:
        situation = matrix.situations[("grpc", name)]
        ids = matrix.target(situation)
        owner = ids.user_id
        other, _ = matrix._app(owner_pat, owner)
        for method, body in BODY_NAMES_APP.items():
            spec = CATALOG.methods[method]
            request = spec.input_type(user_app_id=ids, **body(owner, other))
            reply = getattr(stub, method)(request, metadata=_metadata(situation))
            on_named = expected(spec, situation.credential, ids.user_id, ids.app_id, world)
            on_other = expected(spec, situation.credential, owner, other, world)
            may_touch_other = on_named == ALLOW and on_other == ALLOW
            touched = _touched(matrix, method, owner, other)
            if touched and not may_touch_other:
                wrong.append(f"WRONG ALLOW: {method} / {name} touched {other}: {reply.status}")
    assert not wrong, "\n".join(wrong)


def _fields_below(descriptor, depth: int):
    for f in descriptor.fields:
        yield f
        if depth and f.message_type is not None and not f.message_type.GetOptions().map_entry:
            yield from _fields_below(f.message_type, depth - 1)


def _touched(matrix: Matrix, method: str, owner: str, other: str) -> bool:
    ids = resources_pb2.UserAppIDSet(user_id=owner, app_id=other)
    auth = (("authorization", f"Key {matrix.owner_pat}"),)
    if method in ("PatchApps", "PatchApp"):
        app = ok(matrix.stub.GetApp(service_pb2.GetAppRequest(user_app_id=ids), metadata=auth))
        return app.app.description == "touched"
    if method == "PostKeys":  # only its default key
        keys = ok(
            matrix.stub.ListAppKeys(service_pb2.ListAppKeysRequest(user_app_id=ids), metadata=auth)
        )
        return len(keys.keys) != 1
    collaborators = ok(
        matrix.stub.ListCollaborators(
            service_pb2.ListCollaboratorsRequest(user_app_id=ids), metadata=auth
        )
    )
    return len(collaborators.collaborators) > 0
