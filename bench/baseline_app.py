"""The baseline of the HTTP benchmark: a bare Flask endpoint that parses the
same JSON body and answers a small JSON object, under the same gunicorn."""

from __future__ import annotations

import orjson
from flask import Flask, Response, request

app = Flask(__name__)


@app.post("/v1/decisions")
def decide() -> Response:
    body = orjson.loads(request.get_data())
    return Response(orjson.dumps({"decision": "allow", "event_id": body["event_id"]}), mimetype="application/json")
