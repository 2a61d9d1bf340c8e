//! The newsroom HTTP API as the benches' load clients call it: the story and the development
//! they file (the same bodies the end-to-end tests use), and the POST of a development.

use serde_json::{json, Value};
use uuid::Uuid;

use crate::http::{post_json_to, CallError};

/// A development as the tests and the benches file it, with `id` and `urgency`.
pub fn development_with_urgency(id: Uuid, urgency: &str) -> Value {
    json!({
        "id": id,
        "kind": "statement_issued",
        "headline": "Campaign A says its email was breached",
        "body": "The campaign said attackers had access for three weeks.",
        "occurred_at": "2026-10-01T09:30:00Z",
        "actors": ["Campaign A", "Fancy Bear"],
        "source": {"name": "Campaign spokesperson", "kind": "official_statement", "url": "https://example.org/statement"},
        "evidence": "none_provided",
        "urgency": urgency,
    })
}

/// [`development_with_urgency`] at `priority`.
pub fn development(id: Uuid) -> Value {
    development_with_urgency(id, "priority")
}

/// A fresh slug: `{prefix}-` and 12 hexadecimal digits.
pub fn slug(prefix: &str) -> String {
    format!("{prefix}-{}", &Uuid::new_v4().simple().to_string()[..12])
}

/// The body of `POST /v1/stories` the benches open their stories with, published at once
/// (no desk review); its tags are `elections` and `cyber`.
pub fn story(slug: &str) -> Value {
    json!({
        "slug": slug,
        "headline": "Campaign reports a hack",
        "summary": "A campaign says its email was breached.",
        "tags": ["elections", "cyber"],
        "review_required": false,
    })
}

/// `POST {base}/v1/stories/{story}/developments` of `body` as `token`: the answer as it starts
/// to arrive.
pub async fn send_development(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    story: &str,
    body: &Value,
) -> Result<reqwest::Response, reqwest::Error> {
    client
        .post(format!("{base}/v1/stories/{story}/developments"))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
}

/// [`send_development`]: the position the answer gives; the error says what went wrong.
pub async fn post_development(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    story: &str,
    body: &Value,
) -> Result<i64, String> {
    let response = send_development(client, base, token, story, body)
        .await
        .map_err(|e| format!("POST developments: {e}"))?;
    let status = response.status();
    let bytes = response
        .bytes()
        .await
        .map_err(|e| format!("POST developments: {status}: {e}"))?;
    if !status.is_success() {
        return Err(format!(
            "POST developments: {status}: {}",
            String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
        ));
    }
    serde_json::from_slice::<Value>(&bytes)
        .ok()
        .and_then(|v| v["position"].as_i64())
        .ok_or_else(|| "POST developments: no position in the answer".to_owned())
}

/// The `webhook-id` header of an alert's request (empty when it has none).
pub fn webhook_id(headers: &axum::http::HeaderMap) -> String {
    headers
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// The id of the development an alert's body (`{type, timestamp, data}`) tells of.
pub fn alerted_development(body: &[u8]) -> Option<String> {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v["data"]["development"]["id"].as_str().map(str::to_owned))
}

/// Signs a subscriber up at `base` as `name`, gives it a webhook endpoint at `hook` and one
/// subscription (`{"story": …}`, `{"tag": …}`, `{"actor": …}`).
pub async fn webhook_subscriber(
    client: &reqwest::Client,
    base: &str,
    name: &str,
    hook: &str,
    subscription: &Value,
) -> Result<(), CallError> {
    let signed = post_json_to(
        client,
        base,
        "/v1/subscribers",
        None,
        &json!({"name": name}),
    )
    .await?;
    let id = signed["id"]
        .as_str()
        .ok_or(CallError::Missing("no subscriber id"))?;
    let token = signed["token"]
        .as_str()
        .ok_or(CallError::Missing("no subscriber token"))?;
    post_json_to(
        client,
        base,
        &format!("/v1/subscribers/{id}/endpoints"),
        Some(token),
        &json!({"kind": "webhook", "url": hook}),
    )
    .await?;
    post_json_to(
        client,
        base,
        &format!("/v1/subscribers/{id}/subscriptions"),
        Some(token),
        subscription,
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_fresh_and_prefixed() {
        let (a, b) = (slug("bench"), slug("bench"));
        assert_ne!(a, b);
        assert_eq!(a.len(), "bench-".len() + 12);
        assert!(a.starts_with("bench-"));
        assert!(a["bench-".len()..].chars().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn an_alert_names_its_webhook_and_development() {
        let mut headers = axum::http::HeaderMap::new();
        assert_eq!(webhook_id(&headers), "");
        headers.insert("webhook-id", "msg_1".parse().expect("header value"));
        assert_eq!(webhook_id(&headers), "msg_1");
        let body = br#"{"type":"story.development_recorded","data":{"development":{"id":"d-1"}}}"#;
        assert_eq!(alerted_development(body).as_deref(), Some("d-1"));
        assert_eq!(alerted_development(b"{\"data\":{}}"), None);
        assert_eq!(alerted_development(b"not json"), None);
    }

    #[test]
    fn a_development_carries_its_id_and_urgency() {
        let id = Uuid::new_v4();
        let d = development(id);
        assert_eq!(d["id"], id.to_string());
        assert_eq!(d["urgency"], "priority");
        assert_eq!(development_with_urgency(id, "flash")["urgency"], "flash");
        assert_eq!(story("s-1")["review_required"], false);
    }
}
