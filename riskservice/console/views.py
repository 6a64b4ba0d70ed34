"""``/console``: the page shell, its assets, and HTML fragments rendered on the server.

The analyst's key lives in the browser's ``sessionStorage`` only (never a
cookie), so the shell itself needs no key; the script fetches the queue and
device fragments with ``Authorization: Bearer <key>`` and puts them in the
page. The fragments are rendered here by Jinja (autoescaped) from the same
review functions the JSON API uses; actions go to the JSON API.
"""

from __future__ import annotations

from datetime import UTC, datetime
from importlib import resources

from flask import Blueprint, Response, render_template

from riskservice.api import params
from riskservice.auth import require
from riskservice.console.case_picture import case_picture
from riskservice.console.picture import draw
from riskservice.errors import NotFound
from riskservice.review import neighbourhood, queue
from riskservice.review.case_actions import MAX_MEMBERS
from riskservice.review.cases import STATUSES as CASE_STATUSES
from riskservice.review.cases import CaseReview
from riskservice.state import risk_state

bp = Blueprint("console", __name__, template_folder="templates")

ASSETS = {"console.js": "text/javascript", "console.css": "text/css", "favicon.svg": "image/svg+xml"}
# Only this origin's own script and styles; nothing inline, no framing.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
                               "connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def _html(body: str, cache: str = "no-store") -> Response:
    return Response(body, mimetype="text/html", headers={**SECURITY_HEADERS, "Cache-Control": cache})



@bp.get("/console")
def shell() -> Response:
    """The page: key form, queue pane and device pane (filled by the script)."""
    return _html(render_template("console/shell.html"))


@bp.get("/console/assets/<name>")
def asset(name: str) -> Response:
    """The console's script and style sheet (package files: no build step)."""
    if name not in ASSETS:
        raise NotFound(f"no console asset {name!r}")
    data = resources.files("riskservice.console").joinpath("assets", name).read_bytes()
    return Response(data, mimetype=ASSETS[name], headers={**SECURITY_HEADERS, "Cache-Control": "no-cache"})


@bp.get("/console/queue")
@require("analyst")
def queue_fragment() -> Response:
    """One page of the queue as HTML."""
    q = params.args("status", "reason", "cursor")
    status = params.choice(q, "status", queue.STATUSES, "open")
    reason = params.text_filter(q, "reason")
    page = risk_state().review.queue(status=status, reason=reason, limit=25, cursor=q.get("cursor") or None)
    return _html(render_template("console/queue.html", page=page, reason=reason or ""))


@bp.get("/console/devices/<device_id>")
@require("analyst")
def device_fragment(device_id: str) -> Response:
    """A device's dossier, neighbourhood picture, actions and audit entries as HTML."""
    return _device(params.entity_id(device_id, "device_id"), params.args("hops"))


@bp.get("/console/device")
@require("analyst")
def device_fragment_by_query() -> Response:
    """The fragment of ``?device_id=``: any id the decision path accepts (what the script asks for)."""
    q = params.args("device_id", "hops")
    return _device(params.entity_id(q.get("device_id"), "device_id"), q)


def _device(device_id: str, q: dict[str, str]) -> Response:
    review = risk_state().review
    hops = params.int_param(q.get("hops"), "hops", 2, 1, neighbourhood.MAX_HOPS)
    report = review.dossier(device_id)
    graph, truncated, _ = review.neighbourhood(device_id, hops)
    picture = draw(graph, ("device", device_id))
    return _html(render_template("console/device.html", d=report, picture=picture, hops=hops,
                                 truncated=truncated, node_count=len(graph)))


@bp.get("/console/cases")
@require("analyst")
def cases_fragment() -> Response:
    """One page of cases (groups of flagged users and devices) as HTML."""
    q = params.args("status", "cursor")
    status = params.choice(q, "status", CASE_STATUSES, "open")
    page = CaseReview(risk_state().review).list(status=status, limit=25, cursor=q.get("cursor") or None)
    return _html(render_template("console/cases.html", page=page, status=status))


@bp.get("/console/cases/<case_id>")
@require("analyst")
def case_fragment(case_id: str) -> Response:
    """A case: members, evidence, its subgraph drawn, and the bulk action form."""
    params.args()
    case = CaseReview(risk_state().review).get(params.entity_id(case_id, "case_id"))
    picture, graph = case_picture(case["subgraph"])
    # The form sends back what it showed: the members, or their digest for a case too large to send.
    loaded = [{"node": m["node"], "kind": m["kind"]} for m in case["members"]] \
        if len(case["members"]) <= MAX_MEMBERS else None
    return _html(render_template("console/case.html", c=case, picture=picture, node_count=len(graph),
                                 loaded=loaded))


@bp.app_template_filter("risk_time")
def risk_time(ms: int | str | None) -> str:
    """Epoch ms as ``YYYY-MM-DD HH:MM:SS UTC`` (empty for none)."""
    if ms is None or ms == "":
        return ""
    return datetime.fromtimestamp(int(ms) / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


@bp.app_template_filter("risk_span")
def risk_span(seconds: int) -> str:
    """A window length the way people say it: ``5 min``, ``24 h``."""
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    if seconds % 60 == 0:
        return f"{seconds // 60} min"
    return f"{seconds} s"
