//! Web Push: alerts to a reader's browser or phone through the push service its browser chose
//! (RFC 8030), encrypted for that browser alone (RFC 8291, `aes128gcm` of RFC 8188) and signed
//! with the installation's VAPID key (RFC 8292).
//!
//! The VAPID key pair (P-256) is made at first start and kept in the notifier's store beside
//! the webhook secrets (`installation_secrets`: `notifier.db`, 0600, or the shared PostgreSQL
//! database, so every notifier copy signs with the same key); only its public half is ever
//! shown (`GET /v1/push/key`) or logged. The cryptography is RustCrypto's: ECDH and ECDSA from
//! `p256`, HKDF from `hkdf`, the record encryption from `ece-native`; what is here is RFC 8291's
//! key schedule (which secret and which info go into HKDF), checked against the RFC's own test
//! vector, and the VAPID token's JSON.
//!
//! [`Vapid::load_or_create`] makes or loads the key pair. A VAPID token (RFC 8292) is an ES256 JWT
//! whose `aud` is the push service's origin, valid 12 hours, with `sub` the https public URL or
//! `mailto:` the mail sender. What a push carries ([`MESSAGE_LIMIT`] bytes at most of JSON:
//! headline, story, kind, a link to the development, correction or retraction, a tag) is for the
//! reader's service worker; the dispatcher sends it with `TTL`, `Urgency` from the development's,
//! and a `Topic` per development, so that a correction replaces its original on the device.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use newsroom_domain::{FieldError, Urgency};
use newsroom_log::args;
use newsroom_log::sql::OptionalRow;
use p256::ecdsa::signature::Signer as _;
use p256::elliptic_curve::sec1::ToEncodedPoint as _;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

use crate::error::{NotifyError, PushError};
use crate::store::{ts, NotifierStore};

/// How long a push service keeps an alert for a device that is offline: news older than half a
/// day is not worth waking a phone for.
pub const TTL_SECONDS: u64 = 12 * 60 * 60;
/// How long a VAPID token is valid (RFC 8292 allows at most 24 hours).
const TOKEN_VALID: chrono::Duration = chrono::Duration::hours(12);
/// The name of the VAPID private key among the installation's secrets.
const VAPID_SECRET: &str = "vapid_private_key";
/// Push services take at most 4096 bytes of body; RFC 8291's header and tag take 103 of them.
/// The message is kept well below.
pub const MESSAGE_LIMIT: usize = 3_000;
/// The `rs` of the one `aes128gcm` record a message is.
const RECORD_SIZE: u32 = 4096;
/// The longest push endpoint URL accepted.
pub const ENDPOINT_LIMIT: usize = 2_048;

/// The installation's VAPID key pair. Its `Debug` shows the public key only.
#[derive(Clone)]
pub struct Vapid {
    key: p256::ecdsa::SigningKey,
    /// The public key as browsers take it (`applicationServerKey`): the uncompressed point,
    /// base64url without padding.
    public: String,
    /// The token's `sub`: how a push service reaches whoever runs this installation.
    subject: String,
}

impl std::fmt::Debug for Vapid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vapid")
            .field("public", &self.public)
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

impl Vapid {
    fn from_key(key: p256::ecdsa::SigningKey, subject: String) -> Self {
        let point = key.verifying_key().to_encoded_point(false);
        Self {
            public: URL_SAFE_NO_PAD.encode(point.as_bytes()),
            key,
            subject,
        }
    }

    /// A new key pair.
    pub fn generate(subject: String) -> Self {
        Self::from_key(
            p256::ecdsa::SigningKey::random(&mut rand::rngs::OsRng),
            subject,
        )
    }

    /// The key pair whose private scalar is `secret` (base64url, as stored).
    pub fn from_secret(secret: &str, subject: String) -> Result<Self, PushError> {
        let bytes = URL_SAFE_NO_PAD
            .decode(secret.trim())
            .map_err(|_| PushError::VapidKey)?;
        let key = p256::ecdsa::SigningKey::from_slice(&bytes).map_err(|_| PushError::VapidKey)?;
        Ok(Self::from_key(key, subject))
    }

    fn secret(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.key.to_bytes())
    }

    /// The installation's key pair: made and stored at first start, read afterwards. Copies
    /// starting together on a shared store all end up with the one that was stored first.
    pub async fn load_or_create(
        store: &NotifierStore,
        subject: String,
    ) -> Result<Self, NotifyError> {
        let candidate = Self::generate(subject.clone()).secret();
        let stored: String = store
            .write(move |tx| {
                tx.execute(
                    "INSERT INTO installation_secrets (name, value, created_at) VALUES (?1, ?2, ?3)
                     ON CONFLICT (name) DO NOTHING",
                    args![VAPID_SECRET, candidate, ts(Utc::now())],
                )?;
                Ok(tx
                    .query_row(
                        "SELECT value FROM installation_secrets WHERE name = ?1",
                        args![VAPID_SECRET],
                        |r| r.get(0),
                    )
                    .optional()?
                    .unwrap_or_default())
            })
            .await?;
        Ok(Self::from_secret(&stored, subject)?)
    }

    /// The public key, base64url (unpadded) of the uncompressed point.
    pub fn public_key(&self) -> &str {
        &self.public
    }

    /// The `sub` of the tokens.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The `Authorization` header for a push to `endpoint` (RFC 8292): `vapid t=<ES256 JWT>,
    /// k=<public key>`, the token's audience the endpoint's origin, valid 12 hours from `now`.
    pub fn authorization(&self, endpoint: &url::Url, now: DateTime<Utc>) -> String {
        let header = URL_SAFE_NO_PAD.encode(br#"{"typ":"JWT","alg":"ES256"}"#);
        let claims = json!({
            "aud": endpoint.origin().ascii_serialization(),
            "exp": (now + TOKEN_VALID).timestamp(),
            "sub": self.subject,
        });
        let claims = URL_SAFE_NO_PAD.encode(claims.to_string());
        let input = format!("{header}.{claims}");
        // JWS ES256: the signature is r || s, 32 bytes each.
        let signature: p256::ecdsa::Signature = self.key.sign(input.as_bytes());
        let signature = URL_SAFE_NO_PAD.encode(signature.to_bytes());
        format!("vapid t={input}.{signature}, k={}", self.public)
    }
}

/// The keys of a browser's push subscription (`PushSubscription.getKey`): its P-256 public key
/// and the 16-byte authentication secret.
#[derive(Clone, PartialEq)]
pub struct PushKeys {
    ua_public: p256::PublicKey,
    auth: [u8; 16],
}

impl std::fmt::Debug for PushKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushKeys").finish_non_exhaustive()
    }
}

/// The keys as stored (in the endpoint's `secret`) and as the browser gives them.
#[derive(Debug, Serialize, Deserialize)]
struct StoredKeys {
    p256dh: String,
    auth: String,
}

fn base64url(raw: &str) -> Option<Vec<u8>> {
    // Browsers give base64url without padding; some libraries pad.
    URL_SAFE_NO_PAD
        .decode(raw.trim().trim_end_matches('='))
        .ok()
}

impl PushKeys {
    /// Parses a subscription's `keys`, naming the field that is wrong.
    pub fn parse(p256dh: &str, auth: &str) -> Result<Self, FieldError> {
        let ua_public = base64url(p256dh)
            .filter(|b| b.len() == 65 && b[0] == 4)
            .and_then(|b| p256::PublicKey::from_sec1_bytes(&b).ok())
            .ok_or_else(|| {
                FieldError::new(
                    "subscription.keys.p256dh",
                    "must be the subscription's P-256 public key: an uncompressed point (65 bytes), base64url",
                )
            })?;
        let auth: [u8; 16] = base64url(auth)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| {
                FieldError::new(
                    "subscription.keys.auth",
                    "must be the subscription's authentication secret: 16 bytes, base64url",
                )
            })?;
        Ok(Self { ua_public, auth })
    }

    /// The form kept in the endpoint's row.
    pub fn to_stored(&self) -> String {
        serde_json::to_string(&StoredKeys {
            p256dh: URL_SAFE_NO_PAD.encode(self.ua_public.to_encoded_point(false).as_bytes()),
            auth: URL_SAFE_NO_PAD.encode(self.auth),
        })
        .expect("two strings serialise")
    }

    pub fn from_stored(raw: &str) -> Result<Self, PushError> {
        let keys: StoredKeys = serde_json::from_str(raw).map_err(|_| PushError::Keys)?;
        Self::parse(&keys.p256dh, &keys.auth).map_err(|_| PushError::Keys)
    }
}

/// Encrypts `plaintext` for the subscription (RFC 8291) with a fresh key pair and salt.
pub fn encrypt(keys: &PushKeys, plaintext: &[u8]) -> Result<Vec<u8>, PushError> {
    let mut salt = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut salt);
    let sender = p256::SecretKey::random(&mut rand::rngs::OsRng);
    encrypt_with(salt, &sender, keys, plaintext)
}

/// RFC 8291 §3.4 with a given salt and sender (application server) key pair: the input keying
/// material is HKDF(auth secret, ECDH secret, "WebPush: info" 0x00 ua_public as_public), and the
/// message one `aes128gcm` record whose header carries the sender's public key as key id.
pub fn encrypt_with(
    salt: [u8; 16],
    sender: &p256::SecretKey,
    keys: &PushKeys,
    plaintext: &[u8],
) -> Result<Vec<u8>, PushError> {
    let as_public = sender.public_key().to_encoded_point(false);
    let ua_public = keys.ua_public.to_encoded_point(false);
    let shared = p256::ecdh::diffie_hellman(sender.to_nonzero_scalar(), keys.ua_public.as_affine());
    let mut info = Vec::with_capacity(14 + 65 + 65);
    info.extend_from_slice(b"WebPush: info\0");
    info.extend_from_slice(ua_public.as_bytes());
    info.extend_from_slice(as_public.as_bytes());
    let mut ikm = [0u8; 32];
    hkdf::Hkdf::<Sha256>::new(Some(&keys.auth), shared.raw_secret_bytes())
        .expand(&info, &mut ikm)
        .map_err(|_| PushError::Encrypt)?;
    // One record (the message, its delimiter and the 16-byte tag) in a record size of 4096, as
    // in the RFC's example: a push body is at most 4096 bytes anyway.
    if plaintext.len() + 17 > RECORD_SIZE as usize {
        return Err(PushError::Encrypt);
    }
    ece_native::encrypt(
        ikm,
        salt,
        as_public.as_bytes(),
        std::iter::once(plaintext.to_vec()),
        RECORD_SIZE,
    )
    .map_err(|_| PushError::Encrypt)
}

/// RFC 8030's `Urgency` for a development's urgency.
pub fn urgency(u: Urgency) -> &'static str {
    match u {
        Urgency::Flash => "high",
        Urgency::Priority => "normal",
        Urgency::Routine => "low",
    }
}

/// The `Topic` of a development's alerts: the same for the original and for its corrections
/// and retraction, so the push service (and the browser, as the notification's `tag`) replaces
/// the older with the newer. 32 characters of base64url, as RFC 8030 allows.
pub fn topic(story: &str, development: &str) -> String {
    let digest = Sha256::digest(format!("{story}/{development}").as_bytes());
    URL_SAFE_NO_PAD.encode(&digest[..24])
}

/// What a push carries, before encryption, and the headers that go with it.
#[derive(Debug, Clone, PartialEq)]
pub struct PushMessage {
    /// The JSON the service worker shows (under [`MESSAGE_LIMIT`] bytes).
    pub body: String,
    pub urgency: &'static str,
    pub topic: Option<String>,
}

fn cut(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        return s.to_owned();
    }
    s.chars().take(n).collect::<String>() + "…"
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

/// The push message for an alert's payload (as queued for every channel). `alerts_page` is
/// where a digest's notification leads.
pub fn message(payload: &str, alerts_page: &str) -> PushMessage {
    let v: Value = serde_json::from_str(payload).unwrap_or_default();
    let data = &v["data"];
    if v["type"] == "digest" {
        let count = data["count"].as_u64().unwrap_or_default();
        let stories: Vec<&str> = data["stories"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|s| text(&s["story"]["headline"]))
            .collect();
        let body = json!({
            "type": "digest",
            "headline": format!("{count} new in the stories you follow"),
            "story": cut(&stories.join(" · "), 300),
            "kind": "digest",
            "link": alerts_page,
            "correction": false,
            "retraction": false,
            "tag": "digest",
            "body": cut(&stories.join(" · "), 300),
        });
        return PushMessage {
            body: body.to_string(),
            urgency: "low",
            topic: Some("digest".into()),
        };
    }
    if v["type"] == "story.related" {
        let related = &data["related"];
        let body = json!({
            "type": v["type"],
            "headline": cut(text(&related["headline"]), 200),
            "story": cut(text(&data["story"]["headline"]), 200),
            "story_id": data["story"]["id"],
            "link": cut(text(&data["links"]["related"]), 600),
            "correction": false,
            "retraction": false,
            "tag": topic(text(&data["story"]["id"]), text(&related["id"])),
            "body": cut(text(&related["label"]), 400),
        });
        return PushMessage {
            body: body.to_string(),
            urgency: "normal",
            topic: Some(topic(text(&data["story"]["id"]), text(&related["id"]))),
        };
    }
    let d = &data["development"];
    let correction = v["type"] == "story.correction";
    let retraction = v["type"] == "story.retraction";
    let said = if correction {
        format!("Correction: {}", text(&data["correction"]["note"]))
    } else if retraction {
        format!("Retracted: {}", text(&data["retraction"]["reason"]))
    } else {
        text(&data["story"]["headline"]).to_owned()
    };
    let tag = topic(text(&data["story"]["id"]), text(&d["id"]));
    let urgency_of = d["urgency"]
        .as_str()
        .and_then(|u| u.parse::<Urgency>().ok())
        .unwrap_or_default();
    let body = json!({
        "type": v["type"],
        "headline": cut(text(&d["headline"]), 200),
        "story": cut(text(&data["story"]["headline"]), 200),
        "story_id": data["story"]["id"],
        "development_id": d["id"],
        "kind": d["kind"],
        "link": cut(text(&data["links"]["development"]), 600),
        "correction": correction,
        "retraction": retraction,
        "tag": tag,
        "body": cut(&said, 400),
    });
    PushMessage {
        body: body.to_string(),
        urgency: urgency(urgency_of),
        topic: Some(tag),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> Vec<u8> {
        URL_SAFE_NO_PAD.decode(s).unwrap()
    }

    /// RFC 8291, Appendix A: the same keys, salt and plaintext give the RFC's message, byte for
    /// byte.
    #[test]
    fn encryption_gives_the_rfc_8291_appendix_a_message() {
        let plaintext = b"When I grow up, I want to be a watermelon";
        let as_private = b64("yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw");
        let ua_public = "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4";
        let auth = "BTBZMqHH6r4Tts7J_aSIgg";
        let salt: [u8; 16] = b64("DGv6ra1nlYgDCS1FRnbzlw").try_into().unwrap();
        let sender = p256::SecretKey::from_slice(&as_private).unwrap();
        let keys = PushKeys::parse(ua_public, auth).unwrap();
        let message = encrypt_with(salt, &sender, &keys, plaintext).unwrap();
        let expected = "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN";
        assert_eq!(URL_SAFE_NO_PAD.encode(message), expected);
    }

    #[test]
    fn a_vapid_token_is_an_es256_jwt_for_the_endpoint_s_origin_that_verifies() {
        use p256::ecdsa::signature::Verifier as _;
        let vapid = Vapid::generate("mailto:alerts@newsroom.test".into());
        let stored = Vapid::from_secret(&vapid.secret(), vapid.subject.clone()).unwrap();
        assert_eq!(
            stored.public_key(),
            vapid.public_key(),
            "the stored form keeps the key"
        );
        let now = Utc::now();
        let endpoint = url::Url::parse("http://127.0.0.1:4711/push/abc?x=1").unwrap();
        let header = vapid.authorization(&endpoint, now);
        let (t, k) = header
            .strip_prefix("vapid t=")
            .and_then(|rest| rest.split_once(", k="))
            .unwrap();
        assert_eq!(k, vapid.public_key());
        let parts: Vec<&str> = t.split('.').collect();
        let claims: Value = serde_json::from_slice(&b64(parts[1])).unwrap();
        assert_eq!(claims["aud"], "http://127.0.0.1:4711");
        assert_eq!(claims["sub"], "mailto:alerts@newsroom.test");
        let exp = claims["exp"].as_i64().unwrap();
        assert!(exp > now.timestamp() && exp <= now.timestamp() + 24 * 3600);
        let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(&b64(k)).unwrap();
        let signature = p256::ecdsa::Signature::from_slice(&b64(parts[2])).unwrap();
        key.verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &signature)
            .unwrap();
    }

    #[test]
    fn bad_subscription_keys_are_refused_naming_the_field() {
        let auth = "BTBZMqHH6r4Tts7J_aSIgg";
        let point = "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4";
        for bad in [
            "",
            "not base64!",
            "BCVxsr7N",
            &point.replace("BCVx", "BCVy"),
        ] {
            let e = PushKeys::parse(bad, auth).unwrap_err();
            assert_eq!(e.field, "subscription.keys.p256dh", "{bad}");
        }
        for bad in ["", "AAAA", "BTBZMqHH6r4Tts7J_aSIggAA"] {
            let e = PushKeys::parse(point, bad).unwrap_err();
            assert_eq!(e.field, "subscription.keys.auth", "{bad}");
        }
        let keys = PushKeys::parse(point, auth).unwrap();
        assert_eq!(PushKeys::from_stored(&keys.to_stored()).unwrap(), keys);
    }

    #[test]
    fn a_correction_s_message_has_its_original_s_topic_and_stays_small() {
        let long = "x".repeat(20_000);
        let alert = |kind: &str, extra: Value| {
            let mut v = json!({"type": kind, "data": {
                "story": {"id": "s1", "headline": long},
                "development": {"id": "d1", "headline": long, "kind": "statement_issued", "urgency": "flash"},
                "links": {"development": "https://n.test/stories/x#development-d1"},
            }});
            if let Value::Object(extra) = extra {
                for (k, e) in extra {
                    v["data"][k] = e;
                }
            }
            v.to_string()
        };
        let original = message(
            &alert("story.statement_issued", json!({})),
            "https://n.test/alerts",
        );
        let corrected = message(
            &alert("story.correction", json!({"correction": {"note": long}})),
            "https://n.test/alerts",
        );
        assert_eq!(original.topic, corrected.topic);
        let topic = original.topic.clone().unwrap();
        assert_eq!(topic.len(), 32);
        assert!(topic
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_eq!(original.urgency, "high");
        for m in [&original, &corrected] {
            assert!(m.body.len() < MESSAGE_LIMIT, "{}", m.body.len());
        }
        let c: Value = serde_json::from_str(&corrected.body).unwrap();
        assert_eq!(c["correction"], true);
        assert_eq!(c["link"], "https://n.test/stories/x#development-d1");
        assert!(c["body"].as_str().unwrap().starts_with("Correction: "));
    }
}
