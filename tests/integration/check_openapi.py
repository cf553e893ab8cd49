"""The OpenAPI document against the edge (test_rest.sh): the served one is
the one the build generated; every route the test calls is in it; every
operation in it is served (without a key: 401, never 404 or 405); ListJobs'
query parameters and QueueJob's body are the protos' fields.
Usage: check_openapi.py SERVED BUILT BASE_URL 'METHOD PATH'..."""
import json
import re
import sys
import urllib.error
import urllib.request

served, built, base, routes = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
doc = json.load(open(served))
assert doc == json.load(open(built)), "the served document differs from build/docs/openapi.json"
assert doc["openapi"].startswith("3."), doc["openapi"]
ops = {(m.upper(), p) for p, item in doc["paths"].items() for m in item}


def matches(pattern, path):
    parts = re.split(r"\{[a-z_]+\}", pattern)
    rx = "^" + "[^/:]+".join(re.escape(x) for x in parts) + "$"
    return re.match(rx, path) is not None


for r in routes:
    m, path = r.split(" ", 1)
    assert any(om == m and matches(p, path) for om, p in ops), "not in the document: " + r

for m, p in sorted(ops):
    url = base + re.sub(r"\{[a-z_]+\}", "x", p)
    req = urllib.request.Request(url, method=m, data=b"{}" if m in ("POST", "PUT") else None)
    try:
        urllib.request.urlopen(req, timeout=30)
        code = 200
    except urllib.error.HTTPError as e:
        code = e.code
    assert code == 401, "%s %s: HTTP %d, want 401" % (m, p, code)

names = {x["name"] for x in doc["paths"]["/v1/jobs"]["get"]["parameters"]}
want = {"label", "labels", "state", "states", "page_token", "page_size", "namespace"}
assert want <= names, names
body = doc["paths"]["/v1/jobs"]["post"]["requestBody"]["content"]["application/json"]["schema"]
assert body["$ref"].endswith("/QueueJobRequest"), body
spec = doc["components"]["schemas"]["JobSpec"]["properties"]
assert spec["timeoutMs"]["type"] == "string" and spec["labels"]["type"] == "object", spec
print("    %d operations in the document, all served; %d routes called, all in it" % (len(ops), len(routes)))
