"""The admin API of the local OCI service under ``/_admin`` (signed like every other route).

Health, fault rules, users and tenancies, and session / resource-principal tokens for tests.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from .core import OCIError, caller, invalid, json_body, json_response
from .faults import FaultSpecError, faults_of
from .keys import DEFAULT_TOKEN_TTL, keyring_of, load_public_key
from .state import ServiceState

MAX_TOKEN_TTL = 24 * 3600


def _public_key_field(body: dict) -> str:
    pem = body.get("publicKey")
    if not isinstance(pem, str) or not pem.strip():
        raise OCIError(400, "MissingParameter", "publicKey (an RSA public key PEM) is required.")
    try:
        load_public_key(pem)
    except ValueError as exc:
        raise invalid("publicKey", f"not an RSA public key PEM ({exc}).") from exc
    return pem


def _ttl_field(body: dict) -> int:
    ttl = body.get("ttlSeconds", DEFAULT_TOKEN_TTL)
    if not isinstance(ttl, int) or isinstance(ttl, bool) or not 1 <= ttl <= MAX_TOKEN_TTL:
        raise invalid("ttlSeconds", f"must be an integer from 1 to {MAX_TOKEN_TTL}, got {ttl!r}.")
    return ttl


def _optional_str(body: dict, name: str) -> str | None:
    value = body.get(name)
    if value is not None and (not isinstance(value, str) or not value):
        raise invalid(name, f"must be a non-empty string, got {value!r}.")
    return value


def _rules_field(body: dict) -> list:
    rules = body.get("rules")
    if not isinstance(rules, list):
        raise invalid(
            "rules",
            'must be a list of fault rules, e.g. [{"operation": "get_model", '
            '"status": 503, "count": 1}].',
        )
    return rules


def routes(state: ServiceState) -> list[BaseRoute]:
    """Routes served by this module."""
    faults = faults_of(state)
    ring = keyring_of(state)

    async def health(request: Request) -> Response:
        who = caller(request)
        return json_response(
            {
                "status": "ok",
                "endpoint": state.endpoint,
                "tenancy": who.tenancy,
                "user": who.user,
                "principalType": who.kind,
            }
        )

    async def get_faults(request: Request) -> Response:
        return json_response({"rules": faults.rules()})

    async def change_faults(request: Request) -> Response:
        body = await json_body(request)
        try:
            if request.method == "PUT":
                faults.set(_rules_field(body))
            else:
                faults.add(_rules_field(body))
        except FaultSpecError as exc:
            raise invalid("rules", str(exc)) from exc
        return json_response({"rules": faults.rules()})

    async def clear_faults(request: Request) -> Response:
        faults.clear()
        return json_response({"rules": []})

    async def add_user(request: Request) -> Response:
        body = await json_body(request)
        tenancy = _optional_str(body, "tenancyId")
        key, _ = ring.add_user(tenancy=tenancy, public_key_pem=_public_key_field(body))
        return json_response(
            {
                "tenancyId": key.tenancy,
                "userId": key.user,
                "fingerprint": key.fingerprint,
                "region": state.region,
            },
            status=200,
        )

    async def session_token(request: Request) -> Response:
        body = await json_body(request)
        who = caller(request)
        token = ring.tokens.mint_session_token(
            _optional_str(body, "tenancyId") or who.tenancy,
            _optional_str(body, "userId") or who.user,
            _public_key_field(body),
            _ttl_field(body),
        )
        return json_response({"token": token})

    async def resource_principal_token(request: Request) -> Response:
        body = await json_body(request)
        who = caller(request)
        token = ring.tokens.mint_resource_principal_token(
            _optional_str(body, "tenancyId") or who.tenancy,
            _public_key_field(body),
            compartment=_optional_str(body, "compartmentId"),
            resource_id=_optional_str(body, "resourceId"),
            ttl=_ttl_field(body),
        )
        return json_response({"token": token, "region": state.region})

    return [
        Route("/_admin/health", health, methods=["GET"]),
        Route("/_admin/faults", get_faults, methods=["GET"]),
        Route("/_admin/faults", change_faults, methods=["PUT", "POST"]),
        Route("/_admin/faults", clear_faults, methods=["DELETE"]),
        Route("/_admin/users", add_user, methods=["POST"]),
        Route("/_admin/tokens/session", session_token, methods=["POST"]),
        Route("/_admin/tokens/resource-principal", resource_principal_token, methods=["POST"]),
    ]
