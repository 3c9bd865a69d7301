"""The aiohttp application of `bosun ui`: pages, the REST API, the token check.

Only GET (and HEAD) routes exist: the server cannot change the cluster. Bucket reads are
blocking (the `Store` port) and run in worker threads. When a token is set (required by
`bosun ui` when it listens beyond the loopback), every request must carry it, as
`Authorization: Bearer TOKEN` or as the cookie a browser gets by opening any page once
with `?token=TOKEN`. Every answer carries a strict Content-Security-Policy: the pages load
no script, styles come from /static only.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from controller.web import api, pages
from controller.web.reader import FleetReader
from wire.errors import BosunError, InvalidDocument, InvalidMachineId, ObjectMissing
from wire.layout import machine_id

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
COOKIE = "bosun_ui_token"
READER: web.AppKey[FleetReader] = web.AppKey("reader", FleetReader)
SETTINGS: web.AppKey[pages.PageSettings] = web.AppKey("settings", pages.PageSettings)
TOKEN: web.AppKey[str] = web.AppKey("token", str)
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def create_app(
    reader: FleetReader, settings: pages.PageSettings, token: str = ""
) -> web.Application:
    app = web.Application(middlewares=[_headers, _auth, _errors])
    app[READER] = reader
    app[SETTINGS] = settings
    app[TOKEN] = token
    r = app.router
    r.add_get("/", page_fleet)
    r.add_get("/services/{service}", page_service)
    r.add_get("/machines/{machine}", page_machine)
    r.add_get("/rollouts/{service}", page_rollout)
    r.add_get("/events", page_events)
    r.add_static("/static/", STATIC, append_version=False)
    r.add_get("/api/v1", api_index)
    r.add_get("/api/v1/", api_index)
    r.add_get("/api/v1/status", api_status)
    r.add_get("/api/v1/machines", api_machines)
    r.add_get("/api/v1/machines/{machine}", api_machine)
    r.add_get("/api/v1/machines/{machine}/desired", api_desired)
    r.add_get("/api/v1/machines/{machine}/history", api_history)
    r.add_get("/api/v1/machines/{machine}/history/{seq}", api_history_entry)
    r.add_get("/api/v1/services", api_services)
    r.add_get("/api/v1/services/{service}", api_service)
    r.add_get("/api/v1/rollouts", api_rollouts)
    r.add_get("/api/v1/rollouts/{service}", api_rollout)
    r.add_get("/api/v1/events", api_events)
    return app


# ---- middlewares ------------------------------------------------------------------------------


@web.middleware
async def _headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        exc.headers.update(HEADERS)
        raise
    response.headers.update(HEADERS)
    return response


@web.middleware
async def _auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    token = request.app[TOKEN]
    if not token:
        return await handler(request)
    given = request.headers.get("Authorization", "")
    bearer = given[7:] if given.startswith("Bearer ") else ""
    if _same(bearer, token) or _same(request.cookies.get(COOKIE, ""), token):
        return await handler(request)
    if _same(request.query.get("token", ""), token) and not _is_api(request):
        # a browser's first visit: keep the token in a cookie, drop it from the address
        rest = request.rel_url.with_query({k: v for k, v in request.query.items() if k != "token"})
        response = web.HTTPSeeOther(str(rest))
        response.set_cookie(COOKIE, token, httponly=True, samesite="Strict", path="/")
        raise response
    if _is_api(request):
        return _json_error(401, "a token is required: send Authorization: Bearer TOKEN")
    return web.Response(
        status=401,
        text="bosun ui: a token is required: open this page once with ?token=TOKEN\n",
    )


def _same(given: str, token: str) -> bool:
    return bool(given) and hmac.compare_digest(given.encode(), token.encode())


def _is_api(request: web.Request) -> bool:
    return request.path.startswith("/api/")


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Known errors become one clear line (JSON for the API, a page otherwise)."""
    try:
        return await handler(request)
    except api.ApiError as exc:
        status, message = exc.status, exc.message
    except InvalidMachineId as exc:
        status, message = 400, str(exc)
    except ObjectMissing as exc:
        status, message = 404 if request.match_info.get("machine") else 503, str(exc)
    except InvalidDocument as exc:
        status, message = 502, str(exc)
    except BosunError as exc:  # the store is down, refuses us, ...
        status, message = 503, str(exc)
    log.info("ui.refused %s %s: %s", request.path, status, message)
    if _is_api(request):
        return _json_error(status, message)
    return _html(pages.error_page(request.app[SETTINGS], status, message), status)


def _json_error(status: int, message: str) -> web.Response:
    return web.Response(
        status=status, body=api.dumps({"error": message}), content_type="application/json"
    )


# ---- helpers ----------------------------------------------------------------------------------


async def _run(fn: Callable[..., Any], *args: Any) -> Any:
    return await asyncio.to_thread(fn, *args)


def _reader(request: web.Request) -> FleetReader:
    return request.app[READER]


def _machine(request: web.Request) -> str:
    return str(machine_id(request.match_info["machine"]))


def _service(request: web.Request) -> str:
    return str(machine_id(request.match_info["service"]))  # service names share the pattern


def _json(value: Any) -> web.Response:
    return web.Response(body=api.dumps(value), content_type="application/json")


def _html(text: str, status: int = 200) -> web.Response:
    return web.Response(text=text, status=status, content_type="text/html", charset="utf-8")


# ---- pages ------------------------------------------------------------------------------------


async def page_fleet(request: web.Request) -> web.Response:
    api.check_params(request.query, ())
    return _html(await _run(pages.fleet_page, _reader(request), request.app[SETTINGS]))


async def page_service(request: web.Request) -> web.Response:
    api.check_params(request.query, ())
    service = _service(request)
    return _html(await _run(pages.service_page, _reader(request), request.app[SETTINGS], service))


async def page_machine(request: web.Request) -> web.Response:
    api.check_params(request.query, ("limit",))
    machine, limit = _machine(request), api.limit_param(request.query)
    text = await _run(pages.machine_page, _reader(request), request.app[SETTINGS], machine, limit)
    return _html(text)


async def page_rollout(request: web.Request) -> web.Response:
    api.check_params(request.query, ())
    service = _service(request)
    return _html(await _run(pages.rollout_page, _reader(request), request.app[SETTINGS], service))


async def page_events(request: web.Request) -> web.Response:
    api.check_params(request.query, ("since", "kind", "machine", "service"))
    since = api.since_param(request.query)
    text = await _run(
        pages.events_page, _reader(request), request.app[SETTINGS], since, dict(request.query)
    )
    return _html(text)


# ---- the API ----------------------------------------------------------------------------------


async def api_index(request: web.Request) -> web.Response:
    base = "/api/v1"
    return _json(
        {
            "api": api.API_VERSION,
            "docs": "docs/api.md",
            "endpoints": [
                f"{base}/status",
                f"{base}/machines?"
                + "&".join(f"{f}=" for f in api.MACHINE_FILTERS)
                + "&format=json|xml|csv",
                f"{base}/machines/{{machine}}",
                f"{base}/machines/{{machine}}/desired",
                f"{base}/machines/{{machine}}/history?limit=20",
                f"{base}/machines/{{machine}}/history/{{seq}}",
                f"{base}/services",
                f"{base}/services/{{service}}",
                f"{base}/rollouts",
                f"{base}/rollouts/{{service}}",
                f"{base}/events?since=1h&kind=&machine=&service=",
            ],
        }
    )


async def api_status(request: web.Request) -> web.Response:
    api.check_params(request.query, ())
    return _json(api.status_value(await _run(_reader(request).fleet)))


async def api_machines(request: web.Request) -> web.Response:
    api.check_params(request.query, (*api.MACHINE_FILTERS, "format"))
    fmt = api.output_format(request.query)
    query = api.MachineQuery.parse(request.query)
    fleet = await _run(_reader(request).fleet)
    body = api.machines_body(fleet, query.select(fleet.rows), fmt)
    response = web.Response(body=body, headers={"Content-Type": api.CONTENT_TYPES[fmt]})
    response.headers["X-Bosun-Stale"] = "true" if fleet.stale else "false"
    response.headers["X-Bosun-Controller"] = fleet.fresh.describe()
    return response


async def api_machine(request: web.Request) -> web.Response:
    api.check_params(request.query, ())
    machine = _machine(request)
    return _json(api.machine_value(await _run(_reader(request).fleet), machine))


async def api_desired(request: web.Request) -> web.Response:
    api.check_params(request.query, ())
    machine = _machine(request)
    seen = await _run(_reader(request).desired, machine)
    if not seen:
        raise api.ApiError(404, f"desired/{machine}.json does not exist")
    return web.Response(text=seen[0].text, content_type="application/json")


async def api_history(request: web.Request) -> web.Response:
    api.check_params(request.query, ("limit",))
    machine, limit = _machine(request), api.limit_param(request.query)
    entries = await _run(_reader(request).history, machine, limit)
    return _json(
        {"machine": machine, "entries": [{"seq": e.seq, "snapshot": e.body} for e in entries]}
    )


async def api_history_entry(request: web.Request) -> web.Response:
    api.check_params(request.query, ())
    machine, seq = _machine(request), request.match_info["seq"]
    if not seq.isdigit():
        raise api.ApiError(400, f"seq {seq!r}: a whole number (the seq of a history entry)")
    from controller.operations.history import history_entry

    entry = await _run(history_entry, _reader(request).store, machine, int(seq))
    return _json({"seq": entry.seq, "snapshot": entry.body})


async def api_services(request: web.Request) -> web.Response:
    api.check_params(request.query, ())
    return _json(api.services_value(await _run(_reader(request).fleet)))


async def api_service(request: web.Request) -> web.Response:
    api.check_params(request.query, ())
    service = _service(request)
    fleet = await _run(_reader(request).fleet)
    return _json({**api.freshness(fleet), "service": service, **api.service_entry(fleet, service)})


async def api_rollouts(request: web.Request) -> web.Response:
    api.check_params(request.query, ())
    return _json(api.rollouts_value(await _run(_reader(request).fleet)))


async def api_rollout(request: web.Request) -> web.Response:
    api.check_params(request.query, ())
    service = _service(request)
    fleet, points = await _run(pages.rollout_data, _reader(request), service)
    return _json(api.rollout_value(fleet, service, points))


async def api_events(request: web.Request) -> web.Response:
    api.check_params(request.query, ("since", "kind", "machine", "service"))
    since = api.since_param(request.query)
    reader = _reader(request)
    now = reader.clock()
    events = await _run(reader.events, now - since, now)
    return _json({"since": now - since, "events": api.filter_events(events, request.query)})


# ---- running ----------------------------------------------------------------------------------


def serve(app: web.Application, host: str, port: int, ready: Callable[[str], None]) -> None:
    """Serve until SIGINT/SIGTERM; `ready` gets the URL once the socket listens."""

    async def main() -> None:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound = port
        for address in runner.addresses:  # port 0: the one the system chose
            bound = int(address[1])
        shown = f"[{host}]" if ":" in host else host
        ready(f"http://{shown}:{bound}/")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        import signal

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await stop.wait()
        finally:
            await runner.cleanup()

    asyncio.run(main())


__all__ = ["create_app", "serve"]
