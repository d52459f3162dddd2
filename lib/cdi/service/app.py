"""``cdi serve``: the service desk's HTTP API and web pages (FastAPI on uvicorn).

Every request is answered from the current :class:`~cdi.service.snapshot.LakeSnapshot` (DuckDB
in memory; no Spark); a background thread swaps in newer table versions as runs finish. The
OpenAPI description is at ``/openapi.json`` and browsable at ``/docs``.

Readers are viewers unless they present a role: ``Authorization: Bearer <token>`` with a token
of ``service.roles``, or the role's name in ``service.identity_header`` when a trusted proxy
sets it. An unknown token is refused (401), an unknown role name too (403). Viewers see
``service.masked_attributes`` masked; a role with ``unmasked: true`` sees them in clear.

    >>> app = create_app(load_config("conf/demo.yaml"))  # doctest: +SKIP
    >>> uvicorn.run(app, port=8080)  # doctest: +SKIP
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from cdi.config import CdiConfig, ServiceConfig

from .desk import customer_page, masked, masked_hits, search
from .snapshot import SnapshotKeeper

log = logging.getLogger(__name__)

_TEMPLATES = Path(__file__).parent / "templates"


@dataclass(frozen=True)
class Reader:
    """Who is asking: a configured role, or a viewer."""

    role: str
    unmasked: bool = False
    steward: bool = False


VIEWER = Reader("viewer")


def reader_of(request: Request, service: ServiceConfig) -> Reader:
    """The role a request carries (see the module docstring)."""
    auth = request.headers.get("authorization", "")
    if auth:
        scheme, _, token = auth.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise HTTPException(401, "Authorization must be 'Bearer <token>'", headers={"WWW-Authenticate": "Bearer"})
        for role in service.roles:
            if role.token and hmac.compare_digest(role.token.encode(), token.encode()):
                return Reader(role.name, role.unmasked, role.steward)
        raise HTTPException(401, "unknown token", headers={"WWW-Authenticate": "Bearer"})
    if service.identity_header and request.headers.get(service.identity_header):
        name = request.headers[service.identity_header].strip()
        for role in service.roles:
            if role.name == name:
                return Reader(role.name, role.unmasked, role.steward)
        raise HTTPException(403, f"role {name!r} is not configured (service.roles)")
    return VIEWER


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M") if value.tzinfo else value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, (list, tuple)):
        return ", ".join(_fmt(v) for v in value)
    return str(value)


def _changes_text(changed: list[dict[str, Any]]) -> str:
    parts = [
        f"{c['attribute'].replace('_', ' ')}: {_fmt(c['old_value']) or '—'} → {_fmt(c['new_value']) or '—'}" for c in changed
    ]
    return "; ".join(parts) or "no attribute changed (its sources did)"


def timeline(page: dict[str, Any]) -> list[dict[str, Any]]:
    """The page's golden versions and id events as one list, newest first."""
    entries = []
    for i, v in enumerate(page["versions"]):
        text = "first version" if i == 0 else _changes_text(v["changed"])
        entries.append({"at": v["valid_from"], "until": v["valid_to"] or "now", "run_id": v["run_id"], "text": text})
    for e in page["id_events"]:
        related = ", ".join(e.get("related_ids") or [])
        if e["customer_id"] == page["customer_id"]:
            text = f"id {e['event_type']}" + (f" ({related})" if related else "")
        else:
            text = f"id {e['event_type']} of {e['customer_id']}" + (f" ({related})" if related else "")
        entries.append({"at": e["at"], "until": "", "run_id": e["run_id"], "text": text})
    return sorted(entries, key=lambda x: (x["at"] is not None, x["at"] or 0), reverse=True)


def create_app(cfg: CdiConfig, keeper: SnapshotKeeper | None = None) -> FastAPI:
    """The service over ``cfg``'s lake; ``keeper`` given (tests) or made and started here."""
    service = cfg.service
    keeper = keeper or SnapshotKeeper(cfg.lake_root, service.refresh_seconds)
    pages = Environment(loader=FileSystemLoader(_TEMPLATES), autoescape=select_autoescape(["html"]))
    pages.filters["fmt"] = _fmt

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        keeper.start()
        try:
            yield
        finally:
            keeper.stop()

    app = FastAPI(
        title="cdi service desk",
        description="One view of each customer across every source: search, the customer's page, history.",
        version="1",
        lifespan=lifespan,
    )
    app.state.keeper = keeper

    def reader(request: Request) -> Reader:
        return reader_of(request, service)

    def hidden(who: Reader) -> list[str]:
        return [] if who.unmasked else list(service.masked_attributes)

    def page_of(customer_id: str, who: Reader) -> dict[str, Any]:
        page = customer_page(keeper.current, customer_id)
        if page is None:
            raise HTTPException(404, f"no customer {customer_id!r} in {cfg.lake_root}")
        return masked(page, hidden(who)) if hidden(who) else page

    @app.get("/api/health", tags=["service"])
    def health() -> dict[str, Any]:
        """The table versions served, when they were loaded, and the last refresh error."""
        snap = keeper.current
        return {
            "lake_root": cfg.lake_root,
            "versions": snap.versions,
            "loaded_at": datetime.fromtimestamp(snap.loaded_at, UTC).isoformat(),
            "load_seconds": round(snap.load_seconds, 3),
            "customers_searchable": len(snap.names),
            "refresh_error": keeper.last_error,
        }

    @app.get("/api/search", tags=["customers"])
    def api_search(
        q: str = Query(..., min_length=1, description="customer id, record key (source:id), e-mail, phone, national id or name"),
        limit: int = Query(service.search_limit, ge=1, le=500),
        who: Reader = Depends(reader),
    ) -> dict[str, Any]:
        """Customers the query names: exact key matches first (score 100), then fuzzy name matches."""
        hits = search(keeper.current, q, limit)
        return {"query": q, "hits": masked_hits(hits, hidden(who)), "role": who.role}

    @app.get("/api/customers/{customer_id}", tags=["customers"])
    def api_customer(customer_id: str, who: Reader = Depends(reader)) -> dict[str, Any]:
        """The customer's page: golden record with provenance, source records, versions with what
        changed, change feed, customer 360 figures, consent, id events, recent facts."""
        return jsonable_encoder(page_of(customer_id, who))

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def home(q: str = "", who: Reader = Depends(reader)) -> HTMLResponse:
        hits = masked_hits(search(keeper.current, q, service.search_limit), hidden(who)) if q.strip() else []
        return HTMLResponse(pages.get_template("search.html").render(q=q, hits=hits, who=who, searched=bool(q.strip())))

    @app.get("/customers/{customer_id}", response_class=HTMLResponse, include_in_schema=False)
    def customer_html(customer_id: str, who: Reader = Depends(reader)) -> HTMLResponse:
        try:
            page = page_of(customer_id, who)
        except HTTPException as exc:
            if exc.status_code != 404:
                raise
            html = pages.get_template("not_found.html").render(customer_id=customer_id, who=who)
            return HTMLResponse(html, status_code=404)
        sources = [r["record_key"] for r in page["records"]]
        attributes = [a for a in (page["golden"] or {}) if (page["golden"] or {}).get(a) is not None
                      or any(r.get(a) is not None for r in page["records"])]  # fmt: skip
        html = pages.get_template("customer.html").render(
            p=page, who=who, sources=sources, attributes=attributes, timeline=timeline(page)
        )
        return HTMLResponse(html)

    return app


def serve(cfg: CdiConfig, host: str | None = None, port: int | None = None) -> None:
    """Run the service until interrupted (Ctrl-C / SIGTERM stop it cleanly)."""
    import uvicorn

    app = create_app(cfg)
    where = f"http://{host or cfg.service.host}:{port or cfg.service.port}"
    log.info("cdi service desk on %s (API docs at %s/docs), lake %s", where, where, cfg.lake_root)
    uvicorn.run(app, host=host or cfg.service.host, port=port or cfg.service.port, log_level="warning")
