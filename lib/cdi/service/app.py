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
import re
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs, quote, urlsplit

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import BaseModel, Field

from cdi import schema
from cdi.config import CdiConfig, ServiceConfig, ServiceRole
from cdi.errors import ConfigError, NotFoundError
from cdi.silver.one_record import RecordError

from . import stewardship
from .desk import customer_page, hidden_columns, masked, masked_hits, masked_row, search
from .landing import land_record
from .matching import Matcher, MatchUnavailable
from .snapshot import SnapshotKeeper

log = logging.getLogger(__name__)

AsOfTime = Literal["recorded", "effective"]  # cdi.gold.history.TIMES, for FastAPI to validate

_TEMPLATES = Path(__file__).parent / "templates"


@dataclass(frozen=True)
class Reader:
    """Who is asking: a configured role, or a viewer; ``user`` from the trusted proxy's header."""

    role: str
    unmasked: bool = False
    steward: bool = False
    user: str | None = None
    submit: bool = False

    @property
    def name(self) -> str:
        """How the audit trail names the reader: ``role`` or ``role:user``."""
        return f"{self.role}:{self.user}" if self.user else self.role


VIEWER = Reader("viewer")
_LOCAL_PATH = re.compile(r"^/(?![/\\])[A-Za-z0-9_\-./:%]*$")
TOKEN_COOKIE = "cdi_token"


def _role_of_token(service: ServiceConfig, token: str) -> ServiceRole | None:
    for role in service.roles:
        if role.token and hmac.compare_digest(role.token.encode(), token.encode()):
            return role
    return None


def reader_of(request: Request, service: ServiceConfig) -> Reader:
    """The role a request carries (see the module docstring): a bearer token, the token cookie
    the sign-in page sets, or the trusted proxy's identity header."""
    # the user header is believed only from the trusted proxy (with its identity header), never
    # beside a token: anyone holding a token could name anyone
    user = None
    if service.user_header and service.identity_header and request.headers.get(service.identity_header):
        user = request.headers.get(service.user_header, "").strip() or None
    auth = request.headers.get("authorization", "")
    if auth:
        scheme, _, token = auth.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise HTTPException(401, "Authorization must be 'Bearer <token>'", headers={"WWW-Authenticate": "Bearer"})
        role = _role_of_token(service, token)
        if role is None:
            raise HTTPException(401, "unknown token", headers={"WWW-Authenticate": "Bearer"})
        return Reader(role.name, role.unmasked, role.steward, None, role.submit)
    cookie = request.cookies.get(TOKEN_COOKIE)
    if cookie:
        role = _role_of_token(service, cookie)
        if role is not None:
            return Reader(role.name, role.unmasked, role.steward, None, role.submit)
    if service.identity_header and request.headers.get(service.identity_header):
        name = request.headers[service.identity_header].strip()
        for role in service.roles:
            if role.name == name:
                return Reader(role.name, role.unmasked, role.steward, user, role.submit)
        raise HTTPException(403, f"role {name!r} is not configured (service.roles)")
    return VIEWER


def require_steward(who: Reader) -> None:
    if not who.steward:
        raise HTTPException(403, f"changing links needs a steward role; this request is {who.role!r} (read-only)")


class PairRequest(BaseModel):
    """Two keys, each a source record key (``crm:C001``) or a customer id."""

    a: str
    b: str
    reason: str


class RecordRequest(BaseModel):
    record_key: str
    reason: str


class ReviewRequest(BaseModel):
    record_key_l: str
    record_key_r: str
    reason: str


class MatchRequest(BaseModel):
    """A customer record in canonical attribute names (first_name, last_name, email, phone,
    date_of_birth as yyyy-MM-dd, address_line1, postcode, city, country, national_id, ...)."""

    record: dict[str, Any]
    limit: int = Field(10, ge=1, le=100)


class RecordSubmission(BaseModel):
    """One customer record in the landing source's own column names."""

    record: dict[str, Any]


class RevokeRequest(BaseModel):
    decision_id: str
    reason: str


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


def create_app(cfg: CdiConfig, keeper: SnapshotKeeper | None = None, matcher: Matcher | None = None) -> FastAPI:
    """The service over ``cfg``'s lake; ``keeper`` and ``matcher`` given (tests) or made here."""
    service = cfg.service
    keeper = keeper or SnapshotKeeper(cfg.lake_root, service.refresh_seconds)
    pages = Environment(loader=FileSystemLoader(_TEMPLATES), autoescape=select_autoescape(["html"]))
    pages.filters["fmt"] = _fmt

    matcher = matcher or Matcher(cfg)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        keeper.start()
        if service.match_on_start:  # Spark and the model's input, ready before the first POST /api/match
            threading.Thread(target=matcher.warm, args=(keeper.current,), name="cdi-match-warm", daemon=True).start()
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

    def page_of(customer_id: str, who: Reader, as_of: datetime | None = None, time: AsOfTime = "recorded") -> dict[str, Any]:
        page = customer_page(keeper.current, customer_id, as_of, time)
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
        hits = search(keeper.current, q, limit, frozenset(hidden(who)))
        return {"query": q, "hits": masked_hits(hits, hidden(who)), "role": who.role}

    @app.get("/api/customers/{customer_id}", tags=["customers"])
    def api_customer(
        customer_id: str,
        who: Reader = Depends(reader),
        as_of: datetime | None = Query(None, description="show the golden record valid at this time (ISO 8601; UTC when no zone)"),
        time: AsOfTime = Query("recorded", description="as_of by when the lake knew it (recorded) or when it was true at the source (effective)"),
    ) -> dict[str, Any]:
        """The customer's page: golden record with provenance, source records, versions with what
        changed, change feed, customer 360 figures, consent, id events, recent facts; with
        ``as_of`` the golden record of that time."""
        return jsonable_encoder(page_of(customer_id, who, as_of, time))

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def home(q: str = "", who: Reader = Depends(reader)) -> HTMLResponse:
        found = search(keeper.current, q, service.search_limit, frozenset(hidden(who))) if q.strip() else []
        hits = masked_hits(found, hidden(who))
        return HTMLResponse(pages.get_template("search.html").render(q=q, hits=hits, who=who, searched=bool(q.strip())))

    @app.get("/customers/{customer_id}", response_class=HTMLResponse, include_in_schema=False)
    def customer_html(
        customer_id: str,
        who: Reader = Depends(reader),
        done: str = "",
        error: str = "",
        as_of: str = "",
        time: AsOfTime = "recorded",
    ) -> HTMLResponse:
        try:
            when = datetime.fromisoformat(as_of) if as_of.strip() else None  # the form sends "" for no time
        except ValueError:
            raise HTTPException(400, f"as_of {as_of!r} is not a date and time (2026-01-31T12:00:00)") from None
        try:
            page = page_of(customer_id, who, when, time)
        except HTTPException as exc:
            if exc.status_code != 404:
                raise
            html = pages.get_template("not_found.html").render(customer_id=customer_id, who=who)
            return HTMLResponse(html, status_code=404)
        sources = [r["record_key"] for r in page["records"]]
        attributes = [a for a in (page["golden"] or {}) if (page["golden"] or {}).get(a) is not None
                      or any(r.get(a) is not None for r in page["records"])]  # fmt: skip
        html = pages.get_template("customer.html").render(
            p=page, who=who, sources=sources, attributes=attributes, timeline=timeline(page), done=done, error=error
        )
        return HTMLResponse(html)

    # ---------------------------------------------------------------- stewardship

    review_upper = service.review_upper if service.review_upper is not None else cfg.linkage.cluster_threshold

    def decided(action: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """Run one steward action; bad requests are 400/404 with what to do; the decision shows at once."""
        try:
            out = action()
        except NotFoundError as exc:
            raise HTTPException(404, str(exc)) from None
        except ConfigError as exc:
            raise HTTPException(400, str(exc)) from None
        try:
            keeper.current.reload(schema.STEWARD_DECISIONS)
        except Exception as exc:  # recorded already: the next refresh shows it
            log.warning("steward decision %s recorded; reloading the decisions failed: %s", out["decision_id"], exc)
        log.info("steward %s: %s %s (%s pair(s))", out["decision_id"], out["action"], out.get("pairs"), out["decided_at"])
        return out

    @app.get("/api/review", tags=["stewards"])
    def api_review(limit: int = Query(50, ge=1, le=1000), who: Reader = Depends(reader)) -> dict[str, Any]:
        """Scored pairs in the uncertain band that no decision settles, with each comparison's match weight."""
        require_steward(who)
        items = stewardship.review_queue(keeper.current, service.review_lower, review_upper, limit)
        return {"lower": service.review_lower, "upper": review_upper, "items": jsonable_encoder(items)}

    @app.post("/api/review/accept", tags=["stewards"])
    def api_accept(body: ReviewRequest, who: Reader = Depends(reader)) -> dict[str, Any]:
        """The pair is one customer (a link decision)."""
        require_steward(who)
        return jsonable_encoder(decided(lambda: stewardship.decide_review(
            keeper.current, body.record_key_l, body.record_key_r, True, steward=who.name, reason=body.reason)))  # fmt: skip

    @app.post("/api/review/reject", tags=["stewards"])
    def api_reject(body: ReviewRequest, who: Reader = Depends(reader)) -> dict[str, Any]:
        """The pair is two customers (a separate decision)."""
        require_steward(who)
        return jsonable_encoder(decided(lambda: stewardship.decide_review(
            keeper.current, body.record_key_l, body.record_key_r, False, steward=who.name, reason=body.reason)))  # fmt: skip

    @app.post("/api/steward/link", tags=["stewards"])
    def api_link(body: PairRequest, who: Reader = Depends(reader)) -> dict[str, Any]:
        """Force two records or customers into one customer, from the next run on."""
        require_steward(who)
        return jsonable_encoder(
            decided(lambda: stewardship.link(keeper.current, body.a, body.b, steward=who.name, reason=body.reason))
        )

    @app.post("/api/steward/separate", tags=["stewards"])
    def api_separate(body: PairRequest, who: Reader = Depends(reader)) -> dict[str, Any]:
        """These two records or customers are different customers, from the next run on."""
        require_steward(who)
        return jsonable_encoder(
            decided(lambda: stewardship.separate(keeper.current, body.a, body.b, steward=who.name, reason=body.reason))
        )

    @app.post("/api/steward/unlink", tags=["stewards"])
    def api_unlink(body: RecordRequest, who: Reader = Depends(reader)) -> dict[str, Any]:
        """Take a record out of the customer it is with, from the next run on."""
        require_steward(who)
        return jsonable_encoder(
            decided(lambda: stewardship.unlink(keeper.current, body.record_key, steward=who.name, reason=body.reason))
        )

    @app.post("/api/steward/revoke", tags=["stewards"])
    def api_revoke(body: RevokeRequest, who: Reader = Depends(reader)) -> dict[str, Any]:
        """Undo an earlier decision, from the next run on."""
        require_steward(who)
        return jsonable_encoder(
            decided(lambda: stewardship.revoke(keeper.current, body.decision_id, steward=who.name, reason=body.reason))
        )

    @app.get("/api/steward/decisions", tags=["stewards"])
    def api_decisions(limit: int = Query(200, ge=1, le=5000), who: Reader = Depends(reader)) -> dict[str, Any]:
        """Every steward decision, newest first: who, when, why (the audit trail)."""
        require_steward(who)
        return {"decisions": jsonable_encoder(stewardship.decisions(keeper.current, limit))}

    @app.post("/api/match", tags=["customers"])
    def api_match(body: MatchRequest, who: Reader = Depends(reader)) -> dict[str, Any]:
        """Who is this? Candidate customers for a record, best first, with match probabilities and
        each comparison's level and weight (the saved model; the batch's standardisation)."""
        hide = hidden(who)
        record = body.record
        # a reader who may not see an attribute may not match on it either: its level and weight
        # in the answer would tell whether a guess was right
        ignored = sorted(k for k in record if k in hide) if isinstance(record, dict) else []
        if ignored:
            record = {k: v for k, v in record.items() if k not in hide}
        try:
            found = matcher.match(keeper.current, record, body.limit, service.match_min_probability)
        except RecordError as exc:
            raise HTTPException(400, str(exc)) from None
        except MatchUnavailable as exc:
            raise HTTPException(503, str(exc), headers={"Retry-After": "10"}) from None
        if ignored:
            found["ignored"] = {"attributes": ignored, "why": f"masked for role {who.role!r}: not used for matching"}
        if hide:
            found["record"] = masked_row(found["record"], hidden_columns(hide))
            found["candidates"] = masked_hits(found["candidates"], hide)
        return jsonable_encoder(found)

    @app.post("/api/records", status_code=202, tags=["records"])
    def api_records(body: RecordSubmission, who: Reader = Depends(reader)) -> dict[str, Any]:
        """Accept a record into the landing source; the next run ingests and consolidates it."""
        if not (who.submit or who.steward):
            raise HTTPException(403, f"submitting records needs a role with submit or steward; this request is {who.role!r}")
        if service.landing_source is None:
            raise HTTPException(404, "no landing source is configured (service.landing_source)")
        try:
            landed = land_record(cfg.source(service.landing_source), body.record, who.name)
        except ConfigError as exc:
            raise HTTPException(400, str(exc)) from None
        log.info("record %s landed in %s by %s", landed["record_key"], landed["file"], who.name)
        return jsonable_encoder(landed)

    # ---------------------------------------------------------------- pages for stewards

    async def form(request: Request) -> dict[str, str]:
        """A page's form fields; a form posted from another site is refused (forged requests,
        where a proxy adds the role header or a browser the cookie)."""
        site = request.headers.get("sec-fetch-site")
        origin = request.headers.get("origin")
        if site not in (None, "same-origin", "none") or (origin and urlsplit(origin).netloc != request.url.netloc):
            raise HTTPException(403, "forms are accepted from this service's own pages only")
        body = (await request.body()).decode("utf-8")
        return {k: v[-1] for k, v in parse_qs(body, keep_blank_values=True).items()}

    @app.get("/login", response_class=HTMLResponse, include_in_schema=False)
    def login_page(who: Reader = Depends(reader), error: str = "") -> HTMLResponse:
        return HTMLResponse(pages.get_template("login.html").render(who=who, error=error))

    @app.post("/login", include_in_schema=False)
    async def login(request: Request) -> RedirectResponse:
        token = (await form(request)).get("token", "").strip()
        if _role_of_token(service, token) is None:
            return RedirectResponse("/login?error=unknown+token", status_code=303)
        done = RedirectResponse("/", status_code=303)
        done.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="strict", secure=request.url.scheme == "https")
        return done

    @app.post("/logout", include_in_schema=False)
    def logout() -> RedirectResponse:
        done = RedirectResponse("/", status_code=303)
        done.delete_cookie(TOKEN_COOKIE)
        return done

    @app.get("/review", response_class=HTMLResponse, include_in_schema=False)
    def review_page(who: Reader = Depends(reader), done: str = "", error: str = "") -> HTMLResponse:
        require_steward(who)
        snap = keeper.current
        items = stewardship.review_queue(snap, service.review_lower, review_upper, 50)
        html = pages.get_template("review.html").render(
            who=who, items=items, lower=service.review_lower, upper=review_upper,
            decisions=stewardship.decisions(snap, 20), done=done, error=error,
        )  # fmt: skip
        return HTMLResponse(html)

    @app.post("/steward", include_in_schema=False)
    async def steward_form(request: Request, who: Reader = Depends(reader)) -> RedirectResponse:
        """The pages' forms: one action with its fields; back to where the form was."""
        require_steward(who)
        f = await form(request)
        snap, reason, action = keeper.current, f.get("reason", ""), f.get("action", "")
        actions: dict[str, Callable[[], dict[str, Any]]] = {
            "accept": lambda: stewardship.decide_review(snap, f["l"], f["r"], True, steward=who.name, reason=reason),
            "reject": lambda: stewardship.decide_review(snap, f["l"], f["r"], False, steward=who.name, reason=reason),
            "link": lambda: stewardship.link(snap, f["a"], f["b"], steward=who.name, reason=reason),
            "separate": lambda: stewardship.separate(snap, f["a"], f["b"], steward=who.name, reason=reason),
            "unlink": lambda: stewardship.unlink(snap, f["record_key"], steward=who.name, reason=reason),
            "revoke": lambda: stewardship.revoke(snap, f["decision_id"], steward=who.name, reason=reason),
        }
        if action not in actions:
            raise HTTPException(400, f"unknown steward action {action!r}; one of {', '.join(actions)}")
        back = f.get("back") or "/review"
        if not _LOCAL_PATH.match(back):  # only a path of this service: no //host, no scheme
            back = "/review"
        try:
            out = decided(actions[action])
        except KeyError as exc:
            raise HTTPException(400, f"the {action} form lacks the field {exc}") from None
        except HTTPException as exc:
            sep = "&" if "?" in back else "?"
            return RedirectResponse(f"{back}{sep}error={quote(str(exc.detail))}", status_code=303)
        sep = "&" if "?" in back else "?"
        return RedirectResponse(f"{back}{sep}done={quote(out['action'] + ' ' + out['decision_id'])}", status_code=303)

    return app


def serve(cfg: CdiConfig, host: str | None = None, port: int | None = None) -> None:
    """Run the service until interrupted (Ctrl-C / SIGTERM stop it cleanly)."""
    import uvicorn

    app = create_app(cfg)
    where = f"http://{host or cfg.service.host}:{port or cfg.service.port}"
    log.info("cdi service desk on %s (API docs at %s/docs), lake %s", where, where, cfg.lake_root)
    uvicorn.run(app, host=host or cfg.service.host, port=port or cfg.service.port, log_level="warning")
