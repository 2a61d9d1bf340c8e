"""A whole newsroom scenario driven through a client generated from the OpenAPI document.

`.ci/contract` generates the client with openapi-python-client (a tool nobody here wrote) from
the running server's `/openapi.json`, then runs this against that server: staff tokens are
issued, a subscriber signs up, adds a webhook (a receiver in this process) and a subscription to
a story; the story is opened, a claim, a denial of it and an update are filed, the update is
corrected and retracted; a follow-up story is related to it; the story (with its related story) and
its claims ledger are read back, the relation is removed, and the webhook must have received the
alerts (the subscription asked for related stories too). Every answer must parse as the document's success type, not a problem.

usage: client_scenario.py BASE_URL ADMIN_TOKEN CLIENT_PACKAGE_DIR
"""

import http.server
import importlib
import json
import os
import sys
import threading
import time
import uuid

base, admin_token, package_dir = sys.argv[1:4]
sys.path.insert(0, os.path.dirname(os.path.abspath(package_dir)))
name = os.path.basename(os.path.abspath(package_dir))
client_pkg = importlib.import_module(name)
api = lambda path: importlib.import_module(f"{name}.api.{path}")  # noqa: E731
models = importlib.import_module(f"{name}.models")

create_token = api("default.create_token")
open_story = api("default.open_story")
record_development = api("default.record_development")
correct_development = api("default.correct_development")
retract_development = api("default.retract_development")
revise_story = api("default.revise_story")
link_story = api("default.link_story")
unlink_story = api("default.unlink_story")
sign_up = api("subscribers.sign_up")
add_endpoint = api("subscribers.add_endpoint")
subscribe = api("subscribers.subscribe")
story_json = api("read.story_json")
claims_json = api("read.claims_json")


def expect(answer, kind, what):
    if not isinstance(answer, kind):
        detail = answer.to_dict() if hasattr(answer, "to_dict") else answer
        sys.exit(f"FAIL {what}: expected {kind.__name__}, got {detail!r}")
    return answer


def authed(token):
    return client_pkg.AuthenticatedClient(base_url=base, token=token, raise_on_unexpected_status=True)


# A webhook receiver: records every POST body.
received = []


class Receiver(http.server.BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 (the standard library's name)
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


receiver = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
threading.Thread(target=receiver.serve_forever, daemon=True).start()
hook = f"http://127.0.0.1:{receiver.server_address[1]}/hook"

admin = authed(admin_token)
Role = models.Role
editor = authed(expect(create_token.sync(client=admin, body=models.CreateTokenRequest(name="Scenario editor", role=Role.EDITOR)), models.IssuedToken, "editor token").token)
reporter = authed(expect(create_token.sync(client=admin, body=models.CreateTokenRequest(name="Scenario reporter", role=Role.REPORTER)), models.IssuedToken, "reporter token").token)
anonymous = client_pkg.Client(base_url=base, raise_on_unexpected_status=True)

slug = f"scenario-{uuid.uuid4().hex[:10]}"
story = expect(open_story.sync(client=editor, body=models.OpenStoryRequest(slug=slug, headline="Campaign reports a hack", tags=["cyber"])), models.StoryOpened, "open story")

subscriber = expect(sign_up.sync(client=anonymous, body=models.SignUp(name="Scenario subscriber")), models.SignedUp, "sign up")
mine = authed(subscriber.token)
expect(add_endpoint.sync(uuid.UUID(subscriber.id), client=mine, body=models.NewEndpointType0(kind=models.NewEndpointType0Kind.WEBHOOK, url=hook)), models.EndpointView, "add webhook")
expect(subscribe.sync(uuid.UUID(subscriber.id), client=mine, body=models.NewSubscription(story=story.id, include_related=True)), models.SubscriptionView, "subscribe")

source = models.SourceRequest(name="Campaign spokesperson", kind=models.SourceKind.OFFICIAL_STATEMENT)


def filing(kind, headline, **extra):
    return models.RecordDevelopmentRequest(
        id=uuid.uuid4(), kind=kind, headline=headline, body="What happened, in a sentence.",
        actors=["Campaign A", "APT28"], source=source, **extra)


Kind = models.DevelopmentKind
claim = filing(Kind.ATTRIBUTION_CLAIMED, "Campaign blames APT28", accused=["APT28"])
expect(record_development.sync(story.id, client=reporter, body=claim), models.DevelopmentFiled, "file a claim")
denial = filing(Kind.DENIAL_ISSUED, "Embassy denies involvement",
                responds_to=models.RespondsToRequest(development=claim.id, stance=models.Stance.DENIES))
expect(record_development.sync(story.id, client=reporter, body=denial), models.DevelopmentFiled, "file a denial")
update = filing(Kind.UPDATE, "Campaign says emails were taken")
filed = expect(record_development.sync(story.id, client=reporter, body=update), models.DevelopmentFiled, "file an update")
expect(correct_development.sync(story.id, update.id, client=editor, body=models.CorrectionRequest(note="The campaign said drafts, not emails.", changes=models.ChangesRequest(headline="Campaign says drafts were taken"))), models.CommandAccepted, "correct")
retracted = expect(retract_development.sync(story.id, update.id, client=editor, body=models.ReasonRequest(reason="The campaign withdrew the statement.")), models.CommandAccepted, "retract")
expect(revise_story.sync(story.id, client=editor, body=models.ReviseStoryTags(tags=["cyber", "elections"])), models.CommandAccepted, "revise the tags")

# A later story follows this one up: related, shown on this one as "followed up by".
ruling = expect(open_story.sync(client=editor, body=models.OpenStoryRequest(slug=slug + "-ruling", headline="Court rules on the campaign hack")), models.StoryOpened, "open a follow-up")
linked = expect(link_story.sync(ruling.id, client=editor, body=models.LinkStoryRequest(story=story.id, relation=models.Relation.FOLLOW_UP)), models.CommandAccepted, "relate the stories")

# Read back, once the views hold the relation.
read = expect(story_json.sync(str(story.id), client=anonymous, min_position=linked.position), models.StoryResource, "read the story").to_dict()
related = read.get("relations") or []
if [(r["id"], r["relation"]) for r in related] != [(str(ruling.id), "followed_up_by")]:
    sys.exit(f"FAIL relations: the follow-up expected, got {related}")
timeline = {d["id"]: d for d in read["timeline"]}
if len(timeline) != 3:
    sys.exit(f"FAIL story: three developments expected, got {list(timeline)}")
gone = timeline[str(update.id)]
if gone["state"] != "retracted" or gone["headline"] != "Campaign says drafts were taken" or not gone.get("corrections"):
    sys.exit(f"FAIL story: the update should read corrected and retracted: {gone}")
ledger = expect(claims_json.sync(slug, client=anonymous), models.ClaimsAnswer, "read the claims").to_dict()
entries = ledger["claims"]
if len(entries) != 1 or entries[0]["status"] != "denied" or entries[0]["responses"][0]["id"] != str(denial.id):
    sys.exit(f"FAIL claims: one denied claim expected, got {entries}")
expect(unlink_story.sync(story.id, ruling.id, client=editor), models.CommandAccepted, "unlink the stories")

# The webhook got the alert of each published development.
deadline = time.time() + 20
wanted = {str(claim.id), str(denial.id), str(update.id), '"story.related"'}
while time.time() < deadline:
    seen = {json.dumps(r) for r in received}
    if all(any(w in s for s in seen) for w in wanted):
        break
    time.sleep(0.2)
else:
    sys.exit(f"FAIL webhook: alerts for {wanted} expected, received {received}")
print(f"client scenario: ok (story {slug}, {len(received)} webhook deliveries, filed at {filed.position})")
