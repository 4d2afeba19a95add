"""Thin Starlette routes: HTTP in, `Backend` calls, Daily-shaped JSON out.

Every /v1 request goes through the same pipeline: injected 5xx, injected latency,
auth, rate limit, JSON parsing, the handler, then request statistics.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import math
import random
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from daily_sip import strict_json

from .backend import Backend
from .config import EmulatorConfig
from .delivery import Dispatcher
from .errors import ApiError
from .ratelimit import RateLimiter, classify
from .route_faults import RouteFaults, delay_of
from .webhooks import WebhookRegistry

log = logging.getLogger("daily_sip.standin.http")

Handler = Callable[[Request, Any], Awaitable[Any]]


def error_response(err: ApiError, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(err.body(), status_code=err.status, headers=headers)


class RequestStats:
    """Counts of /v1 requests by `METHOD /route` and status (`GET /_emulator/requests`)."""

    def __init__(self) -> None:
        self.reset()

    #: How many recent requests keep their JSON body (for contract tests: what did the client send?)
    RECENT = 500

    def reset(self) -> None:
        self.by_route: dict[str, Counter[str]] = {}
        self.by_status: Counter[str] = Counter()
        self.total = 0
        self.recent: deque[dict[str, Any]] = deque(maxlen=self.RECENT)

    def record(self, route: str, status: int, body: Any = None, error: Any = None) -> None:
        self.total += 1
        self.by_route.setdefault(route, Counter())[str(status)] += 1
        self.by_status[str(status)] += 1
        self.recent.append({"route": route, "status": status, "body": body, "error": error})

    def to_json(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "rate_limited": self.by_status.get("429", 0),
            "by_status": dict(self.by_status),
            "by_route": {route: dict(c) for route, c in sorted(self.by_route.items())},
            "recent": list(self.recent),
        }


class Api:
    """Holds the collaborators and builds the route table."""

    def __init__(
        self,
        config: EmulatorConfig,
        backend: Backend,
        dispatcher: Dispatcher,
        limiter: RateLimiter,
    ) -> None:
        self.config = config
        self.backend = backend
        self.dispatcher = dispatcher
        self.limiter = limiter
        self.stats = RequestStats()
        self.route_faults = RouteFaults()
        dispatcher.route_faults = self.route_faults  # webhook faults are armed through the same route
        self.reseed()

    def reseed(self) -> None:
        # Separate streams: whether a request gets a 5xx must not depend on webhook traffic.
        self.rng_5xx = random.Random(f"{self.config.seed}:http")
        self.rng_lost = random.Random(f"{self.config.seed}:lost-response")
        self.rng_delay = random.Random(f"{self.config.seed}:delay")

    # -- the /v1 pipeline -------------------------------------------------------

    def v1(self, method: str, route: str, handler: Handler) -> Route:
        """A /v1 route wrapped in faults, auth, rate limiting and stats."""
        key = f"{method} {route}"
        rate = classify(method, route)

        async def endpoint(request: Request) -> Response:
            try:
                return await guarded(request)
            except ClientDisconnect:
                # Half a request never reaches Daily either: nothing happened, nothing to count.
                log.warning("%s: the client disconnected before sending the whole body", key)
                return Response(status_code=400)

        async def guarded(request: Request) -> Response:
            fault = self.route_faults.match(key)
            if fault is not None and fault.mode == "error":
                response = error_response(
                    ApiError(fault.status, "server-error", "injected fault: the server had a problem")
                )
            else:
                if fault is not None and fault.mode == "delay":
                    # The request has arrived in full: a client giving up now does not undo it.
                    await request.body()
                    await asyncio.sleep(delay_of(fault, self.rng_delay))
                response = await self._pipeline(request, rate, handler)
                if fault is not None and fault.mode == "lost" and response.status_code < 400:
                    response = error_response(
                        ApiError(504, "server-error", "gateway timeout: the upstream answer was lost")
                    )
            error = None
            if response.status_code >= 400:
                with contextlib.suppress(ValueError):
                    error = json.loads(response.body)
            self.stats.record(key, response.status_code, getattr(request.state, "body", None), error)
            return response

        return Route("/v1" + route, endpoint, methods=[method], name=key)

    async def _pipeline(self, request: Request, rate: Any, handler: Handler) -> Response:
        cfg = self.config
        roll, pick = self.rng_5xx.random(), self.rng_5xx.random()
        if roll < cfg.fault_5xx:
            status = 500 if pick < 0.5 else 503
            return error_response(
                ApiError(status, "server-error", "injected fault: the server had a problem")
            )
        if cfg.fault_latency > 0:
            await asyncio.sleep(cfg.fault_latency)
        try:
            token = self._authenticate(request)
            wait = self.limiter.hit(token, rate)
            if wait is not None:
                headers = {"Retry-After": str(max(1, math.ceil(wait)))} if cfg.retry_after else None
                return error_response(
                    ApiError(
                        429,
                        "rate-limit-error",
                        f"rate limit exceeded for {rate.name} requests ({self.limiter.describe(rate)})",
                    ),
                    headers,
                )
            body = await self._json_body(request)
            request.state.body = body
            result = await handler(request, body)
        except ApiError as err:
            return error_response(err)
        except ClientDisconnect:
            raise
        except Exception as exc:  # surface bugs as Daily would: a 500 with the error shape
            log.exception("handler failed")
            return error_response(ApiError(500, "server-error", f"internal error: {exc}"))
        if isinstance(result, Response):
            return result
        return JSONResponse(result)

    def _authenticate(self, request: Request) -> str:
        header = request.headers.get("authorization")
        scheme, _, token = (header or "").partition(" ")
        token = token.strip()
        if not header or scheme.lower() != "bearer" or not token:
            raise ApiError(
                400,
                "authorization-header-error",
                "missing or malformed Authorization header; expected 'Bearer <API key>'",
            )
        if not hmac.compare_digest(token.encode(), self.config.api_key.encode()):
            raise ApiError(401, "authentication-error", "the API key is not valid")
        return token

    @staticmethod
    async def _json_body(request: Request) -> Any:
        if request.method in ("GET", "DELETE", "HEAD"):
            return None
        raw = await request.body()
        if not raw.strip():
            return {}
        try:
            return strict_json.loads(raw)
        except strict_json.InvalidJSON as exc:
            raise ApiError(400, "json-parsing-error", f"the request body is not valid JSON: {exc}") from None

    # -- /v1 handlers -----------------------------------------------------------

    async def domain_config(self, request: Request, body: Any) -> Any:
        return self.backend.domain_config()

    async def create_room(self, request: Request, body: Any) -> Any:
        return self.backend.room_json(self.backend.create_room(body))

    async def get_room(self, request: Request, body: Any) -> Any:
        return self.backend.room_json(self.backend.get_room(request.path_params["name"]))

    async def update_room(self, request: Request, body: Any) -> Any:
        room = self.backend.update_room(request.path_params["name"], body)
        return self.backend.room_json(room)

    async def delete_room(self, request: Request, body: Any) -> Any:
        return self.backend.delete_room(request.path_params["name"])

    async def list_rooms(self, request: Request, body: Any) -> Any:
        q = request.query_params
        return self.backend.list_rooms(q.get("limit"), q.get("starting_after"), q.get("ending_before"))

    async def room_presence(self, request: Request, body: Any) -> Any:
        q = request.query_params
        return self.backend.room_presence(
            request.path_params["name"], q.get("limit"), q.get("userId"), q.get("userName")
        )

    async def presence(self, request: Request, body: Any) -> Any:
        return self.backend.all_presence()

    async def dialout_start(self, request: Request, body: Any) -> Any:
        leg = self.backend.start_dialout(request.path_params["name"], body)
        # Draw on every success so the seed alone decides which starts lose their answer.
        if self.rng_lost.random() < self.config.fault_lost_response:
            log.info("fault: dropping the answer to dialOut/start %s", leg.id)
            return error_response(
                ApiError(504, "server-error", "gateway timeout: the upstream answer was lost")
            )
        return {"ok": True, "sessionId": leg.id}

    async def dialout_stop(self, request: Request, body: Any) -> Any:
        return self.backend.stop_dialout(request.path_params["name"], body)

    async def send_dtmf(self, request: Request, body: Any) -> Any:
        return self.backend.send_dtmf(request.path_params["name"], body)

    async def sip_call_transfer(self, request: Request, body: Any) -> Any:
        return self.backend.sip_call_transfer(request.path_params["name"], body)

    async def sip_refer(self, request: Request, body: Any) -> Any:
        return self.backend.sip_refer(request.path_params["name"], body)

    async def list_webhooks(self, request: Request, body: Any) -> Any:
        return [h.to_json(self.backend.domain_id) for h in self.backend.webhooks.list()]

    async def get_webhook(self, request: Request, body: Any) -> Any:
        hook = self.backend.webhooks.get(request.path_params["uuid"])
        return hook.to_json(self.backend.domain_id)

    async def create_webhook(self, request: Request, body: Any) -> Any:
        registry = self.backend.webhooks
        spec = WebhookRegistry.validate(body, creating=True)
        registry.ensure_can_create()
        spec["hmac"] = spec.get("hmac") or WebhookRegistry.new_secret()
        await self.dispatcher.verify(spec["url"], spec["hmac"], spec.get("basicAuth"))
        return registry.create(spec).to_json(self.backend.domain_id)

    async def update_webhook(self, request: Request, body: Any) -> Any:
        registry = self.backend.webhooks
        hook = registry.get(request.path_params["uuid"])
        spec = WebhookRegistry.validate(body, creating=False)
        await self.dispatcher.verify(
            spec.get("url", hook.url), spec.get("hmac", hook.hmac), spec.get("basicAuth", hook.basic_auth)
        )
        return registry.update(hook.uuid, spec).to_json(self.backend.domain_id)

    async def delete_webhook(self, request: Request, body: Any) -> Any:
        hook = self.backend.webhooks.delete(request.path_params["uuid"])
        self.dispatcher.forget(hook.uuid)
        return Response(status_code=200)

    async def unknown_v1(self, request: Request) -> Response:
        err = ApiError(404, "not-found", f"no such endpoint: {request.method} {request.url.path}")
        self.stats.record(f"{request.method} (unknown)", 404)
        return error_response(err)

    # -- /_emulator introspection -------------------------------------------------

    async def _emu(self, request: Request, fn: Callable[[Any], Any]) -> Response:
        body: Any = None
        if request.method == "POST":
            try:
                raw = await request.body()
            except ClientDisconnect:
                log.warning("%s: the client disconnected before sending the whole body", request.url.path)
                return Response(status_code=400)
            try:
                body = strict_json.loads(raw) if raw.strip() else {}
            except strict_json.InvalidJSON as exc:
                return error_response(ApiError(400, "json-parsing-error", str(exc)))
        try:
            result = fn(body)
        except ApiError as err:
            return error_response(err)
        return JSONResponse(result)

    def _legs(self, request: Request) -> list[dict[str, Any]]:
        q = request.query_params
        rows = [leg.to_json() for leg in self.backend.legs.values()]
        for key in ("room", "kind", "state", "outcome", "userId"):
            if q.get(key) is not None:
                rows = [r for r in rows if str(r.get(key)) == q[key]]
        return rows

    def _events(self, request: Request) -> list[dict[str, Any]]:
        q = request.query_params
        rows = [e.to_json() for e in self.backend.events]
        if q.get("type"):
            rows = [r for r in rows if r["type"] == q["type"]]
        if q.get("room"):
            rows = [r for r in rows if r["payload"].get("room") == q["room"]]
        return rows

    def _deliveries(self, request: Request) -> list[dict[str, Any]]:
        q = request.query_params
        keys = ("kind", "event_type", "event_id", "result", "webhook_uuid")
        return self.dispatcher.deliveries(**{k: q.get(k) for k in keys})

    def _rooms(self) -> list[dict[str, Any]]:
        return [self.backend.room_summary(r) for r in self.backend.rooms.values()]

    async def emu_state(self, request: Request) -> Response:
        return JSONResponse(
            {
                "config": self.config.public_dict(),
                "domain_id": self.backend.domain_id,
                "rooms": self._rooms(),
                "legs": self._legs(request),
                "web_participants": [
                    {"id": p.id, "room": p.room, "user_name": p.user_name, "user_id": p.user_id}
                    for p in self.backend.web_participants.values()
                ],
                "webhooks": [h.to_json(self.backend.domain_id) for h in self.backend.webhooks.list()],
                "webhook_queues": self.dispatcher.queued(),
                "events": [e.to_json() for e in self.backend.events],
                "deliveries": self.dispatcher.deliveries(),
                "requests": self.stats.to_json(),
            }
        )

    async def emu_rooms(self, request: Request) -> Response:
        return JSONResponse(self._rooms())

    async def emu_legs(self, request: Request) -> Response:
        return JSONResponse(self._legs(request))

    async def emu_leg(self, request: Request) -> Response:
        leg = self.backend.legs.get(request.path_params["id"])
        if leg is None:
            return error_response(ApiError(404, "not-found", "no such leg"))
        return JSONResponse(leg.to_json())

    async def emu_leg_dtmf(self, request: Request) -> Response:
        """What the far end of a leg heard: every sendDTMF call with its time, and the IVR's verdict."""
        leg = self.backend.legs.get(request.path_params["id"])
        if leg is None:
            return error_response(ApiError(404, "not-found", "no such leg"))
        data = leg.to_json()
        return JSONResponse(
            {
                "id": data["id"],
                "state": data["state"],
                "dtmf": data["dtmf"],
                "ivr": data["ivr"],
                "answered_at": data["answered_at"],
                "ended_at": data["ended_at"],
            }
        )

    async def emu_events(self, request: Request) -> Response:
        return JSONResponse(self._events(request))

    async def emu_deliveries(self, request: Request) -> Response:
        return JSONResponse(self._deliveries(request))

    async def emu_requests(self, request: Request) -> Response:
        return JSONResponse(self.stats.to_json())

    async def emu_dialin(self, request: Request) -> Response:
        name = request.path_params["name"]
        return await self._emu(request, lambda body: self.backend.simulate_dialin(name, body).to_json())

    async def emu_join(self, request: Request) -> Response:
        name = request.path_params["name"]

        def join(body: Any) -> Any:
            p = self.backend.join_web(name, body)
            return {"id": p.id, "room": p.room, "user_name": p.user_name, "user_id": p.user_id}

        return await self._emu(request, join)

    async def emu_leave(self, request: Request) -> Response:
        pid = request.path_params["id"]

        def leave(body: Any) -> Any:
            self.backend.leave_web(pid)
            return {"ok": True}

        return await self._emu(request, leave)

    async def emu_hangup(self, request: Request) -> Response:
        leg_id = request.path_params["id"]
        return await self._emu(request, lambda body: self.backend.hangup(leg_id).to_json())

    async def emu_faults(self, request: Request) -> Response:
        if request.method == "DELETE":
            self.route_faults.reset()
            return JSONResponse({"ok": True})
        if request.method == "POST":
            return await self._emu(request, lambda body: self.route_faults.add(body).to_json())
        return JSONResponse([f.to_json() for f in self.route_faults.faults])

    async def emu_reset(self, request: Request) -> Response:
        self.route_faults.reset()
        self.backend.reset()
        self.dispatcher.reset()
        self.limiter.reset()
        self.stats.reset()
        self.reseed()
        return JSONResponse({"ok": True})

    async def emu_health(self, request: Request) -> Response:
        return JSONResponse({"ok": True})

    async def index(self, request: Request) -> Response:
        return JSONResponse(
            {
                "name": "offline Daily stand-in",
                "api": str(request.base_url).rstrip("/") + "/v1",
                "introspection": str(request.base_url).rstrip("/") + "/_emulator/state",
            }
        )

    # -- route table ----------------------------------------------------------------

    def routes(self) -> list[Route]:
        v1 = self.v1
        return [
            v1("GET", "/", self.domain_config),
            v1("GET", "/rooms", self.list_rooms),
            v1("POST", "/rooms", self.create_room),
            v1("GET", "/rooms/{name}", self.get_room),
            v1("POST", "/rooms/{name}", self.update_room),
            v1("DELETE", "/rooms/{name}", self.delete_room),
            v1("GET", "/rooms/{name}/presence", self.room_presence),
            v1("POST", "/rooms/{name}/dialOut/start", self.dialout_start),
            v1("POST", "/rooms/{name}/dialOut/stop", self.dialout_stop),
            v1("POST", "/rooms/{name}/dialOut/sendDTMF", self.send_dtmf),
            v1("POST", "/rooms/{name}/sipCallTransfer", self.sip_call_transfer),
            v1("POST", "/rooms/{name}/sipRefer", self.sip_refer),
            v1("GET", "/presence", self.presence),
            v1("GET", "/webhooks", self.list_webhooks),
            v1("POST", "/webhooks", self.create_webhook),
            v1("GET", "/webhooks/{uuid}", self.get_webhook),
            v1("POST", "/webhooks/{uuid}", self.update_webhook),
            v1("DELETE", "/webhooks/{uuid}", self.delete_webhook),
            Route(
                "/v1/{rest:path}",
                self.unknown_v1,
                methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            ),
            Route("/", self.index),
            Route("/_emulator/health", self.emu_health),
            Route("/_emulator/state", self.emu_state),
            Route("/_emulator/rooms", self.emu_rooms),
            Route("/_emulator/legs", self.emu_legs),
            Route("/_emulator/legs/{id}", self.emu_leg),
            Route("/_emulator/legs/{id}/dtmf", self.emu_leg_dtmf),
            Route("/_emulator/events", self.emu_events),
            Route("/_emulator/deliveries", self.emu_deliveries),
            Route("/_emulator/requests", self.emu_requests),
            Route("/_emulator/rooms/{name}/dialin", self.emu_dialin, methods=["POST"]),
            Route("/_emulator/rooms/{name}/join", self.emu_join, methods=["POST"]),
            Route("/_emulator/participants/{id}/leave", self.emu_leave, methods=["POST"]),
            Route("/_emulator/legs/{id}/hangup", self.emu_hangup, methods=["POST"]),
            Route("/_emulator/reset", self.emu_reset, methods=["POST"]),
            Route("/_emulator/faults", self.emu_faults, methods=["GET", "POST", "DELETE"]),
        ]
