"""The MLflow UI as ``drkd-bench ui`` serves it (``mlflow ui --app-name drkd-bench``): MLflow's
own app, plus one page, ``/drkd-bench/open#<route>``, that puts the UI in its training view and
then opens ``<route>``.

MLflow 3 keeps the UI's view ("GenAI apps & agents" or "Model training") in the browser's
localStorage (``mlflow.workflowType_v1``), defaulting to GenAI; a ``?workflowType=`` in a URL
overrides it for that page only. So a run opened from the runs table (a link without the
parameter) showed "Evaluations" until the user clicked the toggle. The page sets the stored
view, as that toggle does, before the UI loads; every link the harness writes also carries the
parameter.

MLflow 3.10+ also opens its assistant's chat panel by itself on a browser's first visit to a
local server (a quarter of the width, over the runs table), remembering in localStorage
(``mlflow.assistant.fab.autoOpenedOnFirstLoad_v1``) that it did. The page records that first
visit as done, so the panel stays closed; its button still opens it.
"""
from __future__ import annotations

from flask import Response
from mlflow.server import app as flask_app
from mlflow.server.fastapi_app import app  # noqa: F401 - the ASGI app uvicorn serves

from benchmark.store.ui import OPEN_PATH

#: Where MLflow's UI keeps its view (its useLocalStorage hook: ``<key>_v<version>``, JSON).
VIEW_STORAGE_KEY = "mlflow.workflowType_v1"
TRAINING_VIEW = "machine_learning"
#: Where MLflow's UI remembers that it auto-opened the assistant panel once (same hook).
ASSISTANT_OPENED_KEY = "mlflow.assistant.fab.autoOpenedOnFirstLoad_v1"

LANDING = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>drkd-bench: opening MLflow</title></head>
<body><p>Opening the MLflow UI in its training view ...</p><script>
try {{
  localStorage.setItem("{VIEW_STORAGE_KEY}", JSON.stringify("{TRAINING_VIEW}"));
  localStorage.setItem("{ASSISTANT_OPENED_KEY}", "true");
}} catch (e) {{}}
var route = location.hash && location.hash.indexOf("#/") === 0 ? location.hash : "#/";
location.replace("/" + route);
</script></body></html>
"""


def _open() -> Response:
    return Response(LANDING, mimetype="text/html")


if OPEN_PATH not in {rule.rule for rule in flask_app.url_map.iter_rules()}:
    flask_app.add_url_rule(OPEN_PATH, "drkd_bench_open", _open)
