"""``/console/performance``: the rule performance page, as an HTML fragment for the console's script.

Rendered on the server from the same report as ``GET /v1/rules/performance``;
the script fetches it with the analyst's key, as it fetches the queue.
"""

from __future__ import annotations

from flask import Blueprint, Response, render_template

from riskservice.api import params
from riskservice.api.performance import PARAMS, report
from riskservice.auth import require
from riskservice.console.charts import hits_chart, precision_scale
from riskservice.console.views import SECURITY_HEADERS

bp = Blueprint("console_performance", __name__, template_folder="templates")


@bp.get("/console/performance")
@require("analyst")
def performance_fragment() -> Response:
    """Every rule with hits in the window as a chart, the quiet ones listed."""
    body = report(params.args(*PARAMS))
    busy, quiet = [], []
    for rule in body["rules"]:
        if rule["hits"]["enforced"] or rule["hits"]["shadow"]:
            busy.append({**rule, "chart": hits_chart(rule["series"], body["buckets"], body["bucket_ms"]),
                         "scales": {m: precision_scale(rule["precision"][m]) for m in ("enforced", "shadow")}})
        else:
            quiet.append(rule)
    page = render_template("console/performance.html", r=body, busy=busy, quiet=quiet)
    return Response(page, mimetype="text/html", headers={**SECURITY_HEADERS, "Cache-Control": "no-store"})
