"""The feeds judged by the official JSON Schemas and an independent validator (Python's
`jsonschema`): a story with every kind of change a reader sees — actors and a source, a denial
responding to a claim, a correction, a retraction — then its JSON Feed 1.1, an actor's JSON Feed,
the front page's JSON Feed and the story's ninjs item (with a related story among its associations), each validated against the schemas in shared/conformance/schemas (JSON Feed
1.1; ninjs 3.0, which the item names in `$schema`, and 3.1).

Usage: python conformance.py BASE_URL ADMIN_TOKEN SCHEMA_DIR
"""

import json
import sys
import urllib.error
import urllib.parse
import urllib.request
import uuid

import jsonschema

base, token, schemas = sys.argv[1].rstrip("/"), sys.argv[2], sys.argv[3]


def call(method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method)
    request.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return json.load(answer)
    except urllib.error.HTTPError as e:
        sys.exit(f"FAIL {method} {path}: {e.code} {e.read().decode()[:500]}")


def schema(name):
    with open(f"{schemas}/{name}") as f:
        return json.load(f)


def development(kind, headline, **extra):
    return {"id": str(uuid.uuid4()), "kind": kind, "headline": headline, **extra}


slug = "conformance-" + uuid.uuid4().hex[:12]
story = call("POST", "/v1/stories", {"slug": slug, "headline": "Campaign reports a hack",
                                     "summary": "What is known about the breach.",
                                     "tags": ["elections"]})["id"]
claim = development("hack_reported", "Campaign A says its email was breached",
                    body="The campaign said so in a statement.", actors=["Campaign A", "Fancy Bear"],
                    source={"name": "Campaign A spokesperson", "kind": "official_statement",
                            "url": "https://example.com/statement"},
                    urgency="flash")
call("POST", f"/v1/stories/{story}/developments", claim)
denial = development("denial_issued", "The agency denies any involvement", actors=["Fancy Bear"],
                     source={"name": "Agency press office", "kind": "official_statement"},
                     responds_to={"development": claim["id"], "stance": "denies"})
call("POST", f"/v1/stories/{story}/developments", denial)
wrong = development("update", "An early figure that was wrong")
call("POST", f"/v1/stories/{story}/developments", wrong)
call("POST", f"/v1/stories/{story}/developments/{claim['id']}/corrections",
     {"note": "The statement came a day later.", "changes": {"occurred_at": "2026-01-02T10:00:00Z"}})
call("POST", f"/v1/stories/{story}/developments/{wrong['id']}/retraction",
     {"reason": "The figure was not confirmed."})
# A related story: the item's `associations` hold it beside the developments.
earlier = call("POST", "/v1/stories", {"slug": slug + "-background",
                                       "headline": "How the campaign's email was set up"})["id"]
last = call("POST", f"/v1/stories/{story}/relations",
            {"story": earlier, "relation": "background"})["position"]
call("GET", f"/v1/stories/{story}?min_position={last}")

actor = urllib.parse.quote("Fancy Bear")
documents = {
    "story JSON Feed": call("GET", f"/v1/stories/{story}/feed.json"),
    "actor JSON Feed": call("GET", f"/v1/actors/{actor}/feed.json"),
    "front page JSON Feed": call("GET", "/v1/feed.json"),
    "ninjs item": call("GET", f"/v1/stories/{story}/ninjs"),
}
checks = [
    ("story JSON Feed", "jsonfeed-schema-v1.1.json"),
    ("actor JSON Feed", "jsonfeed-schema-v1.1.json"),
    ("front page JSON Feed", "jsonfeed-schema-v1.1.json"),
    ("ninjs item", "ninjs-schema_3.0.json"),
    ("ninjs item", "ninjs-schema_3.1.json"),
]
passed = failed = 0
for name, schema_file in checks:
    document, rules = documents[name], schema(schema_file)
    validator = jsonschema.validators.validator_for(rules)(
        rules, format_checker=jsonschema.FormatChecker())
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    if errors:
        failed += 1
        print(f"FAIL {name} against {schema_file}:")
        for e in errors[:20]:
            print(f"  at {'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message[:300]}")
    else:
        passed += 1
        print(f"ok   {name} against {schema_file}")
# Every extension object says where it is described, and the description is served.
for name in ("story JSON Feed", "actor JSON Feed"):
    feed = documents[name]
    objects = [feed["_newsroom"]] + [item["_newsroom"] for item in feed["items"]]
    if all(o.get("about") == objects[0]["about"] for o in objects) and objects[0]["about"]:
        path = urllib.parse.urlsplit(objects[0]["about"]).path
        with urllib.request.urlopen(base + path, timeout=30) as answer:
            ok = answer.status == 200 and b"_newsroom" in answer.read()
    else:
        ok = False
    passed, failed = (passed + 1, failed) if ok else (passed, failed + 1)
    print(("ok  " if ok else "FAIL") + f" {name}: every `_newsroom` object has `about`, and it is served")
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
