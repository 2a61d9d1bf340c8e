//! Standard Webhooks signing: this module owns webhook signing secrets (`whsec_<base64>`, at least
//! 24 random bytes; the HMAC key is the decoded bytes), the `webhook-signature` header a sender
//! puts on every delivery (`v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`, several
//! space-separated during a key rotation), and the check a receiver makes ([`verify`]: timestamp
//! within a tolerance, any `v1` entry matching, compared in constant time). It does no I/O.
//! Spec: <https://www.standardwebhooks.com/> and `ENGINEERING.md` §4.

use std::fmt;
use std::str::FromStr;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use rand::rngs::OsRng;
use rand::RngCore;
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The prefix of a serialised secret.
pub const SECRET_PREFIX: &str = "whsec_";
/// The fewest secret bytes [`WebhookSecret::parse`] accepts (the spec's minimum).
pub const MIN_SECRET_BYTES: usize = 24;
/// How many bytes [`WebhookSecret::generate`] draws.
pub const GENERATED_SECRET_BYTES: usize = 32;
/// The timestamp tolerance the spec recommends to receivers: five minutes either way.
pub const DEFAULT_TOLERANCE_SECS: i64 = 5 * 60;

type HmacSha256 = Hmac<Sha256>;

/// A webhook signing secret. Its bytes are the HMAC key; it is shown to the subscriber once, as
/// `whsec_<base64>` ([`Display`](fmt::Display)), and never appears in `Debug` output.
#[derive(Clone)]
pub struct WebhookSecret {
    bytes: Vec<u8>,
}

/// Why a string is not a webhook secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("a webhook secret starts with `whsec_`")]
    MissingPrefix,
    #[error("a webhook secret is `whsec_` followed by standard base64: {0}")]
    InvalidBase64(#[from] base64::DecodeError),
    #[error("a webhook secret has at least {MIN_SECRET_BYTES} bytes, this one has {len}")]
    TooShort { len: usize },
}

impl WebhookSecret {
    /// A fresh secret of [`GENERATED_SECRET_BYTES`] bytes from the operating system's RNG.
    pub fn generate() -> Self {
        let mut bytes = vec![0u8; GENERATED_SECRET_BYTES];
        OsRng.fill_bytes(&mut bytes);
        Self { bytes }
    }

    /// Parses `whsec_<standard base64>` of at least [`MIN_SECRET_BYTES`] bytes.
    pub fn parse(text: &str) -> Result<Self, SecretError> {
        let encoded = text
            .strip_prefix(SECRET_PREFIX)
            .ok_or(SecretError::MissingPrefix)?;
        let bytes = STANDARD.decode(encoded)?;
        if bytes.len() < MIN_SECRET_BYTES {
            return Err(SecretError::TooShort { len: bytes.len() });
        }
        Ok(Self { bytes })
    }

    /// The HMAC key.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }
}

impl FromStr for WebhookSecret {
    type Err = SecretError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

impl fmt::Display for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{SECRET_PREFIX}{}", STANDARD.encode(&self.bytes))
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(whsec_<redacted>)")
    }
}

/// Constant-time comparison of the key bytes.
impl PartialEq for WebhookSecret {
    fn eq(&self, other: &Self) -> bool {
        self.bytes.ct_eq(&other.bytes).into()
    }
}

impl Eq for WebhookSecret {}

fn mac(secret: &WebhookSecret, msg_id: &str, timestamp: &str, body: &[u8]) -> [u8; 32] {
    let mut mac =
        HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC accepts keys of any length");
    mac.update(msg_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize().into_bytes().into()
}

/// One signature: `v1,<base64 HMAC-SHA256 of "{msg_id}.{timestamp}.{body}">`.
pub fn signature(secret: &WebhookSecret, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    let mac = mac(secret, msg_id, &timestamp.to_string(), body);
    format!("v1,{}", STANDARD.encode(mac))
}

/// The `webhook-signature` header value: one signature per secret, space-separated, in the order
/// given. During a rotation pass the new and the old secret so receivers holding either accept.
pub fn signature_header(
    secrets: &[&WebhookSecret],
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    secrets
        .iter()
        .map(|secret| signature(secret, msg_id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Why a receiver rejects a delivery.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("the webhook-timestamp header is not a Unix time in seconds: {0:?}")]
    InvalidTimestamp(String),
    #[error(
        "the message timestamp {timestamp} is more than {tolerance_secs} s before now ({now})"
    )]
    TimestampTooOld {
        timestamp: i64,
        now: i64,
        tolerance_secs: i64,
    },
    #[error("the message timestamp {timestamp} is more than {tolerance_secs} s after now ({now})")]
    TimestampTooNew {
        timestamp: i64,
        now: i64,
        tolerance_secs: i64,
    },
    #[error("the webhook-signature header has no `v1,` signature")]
    NoSignature,
    #[error("no signature in the webhook-signature header matches")]
    NoMatchingSignature,
}

/// What a receiver does with a delivery: `timestamp` (the `webhook-timestamp` header) must be
/// within `tolerance_secs` of `now` (both Unix seconds), and any `v1,` entry of
/// `signature_header` must be the signature of `"{msg_id}.{timestamp}.{body}"` under `secret`
/// (compared in constant time). Entries of other versions are ignored.
pub fn verify(
    secret: &WebhookSecret,
    msg_id: &str,
    timestamp: &str,
    signature_header: &str,
    body: &[u8],
    now: i64,
    tolerance_secs: i64,
) -> Result<(), VerifyError> {
    let ts: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| VerifyError::InvalidTimestamp(timestamp.to_owned()))?;
    if ts < now.saturating_sub(tolerance_secs) {
        return Err(VerifyError::TimestampTooOld {
            timestamp: ts,
            now,
            tolerance_secs,
        });
    }
    if ts > now.saturating_add(tolerance_secs) {
        return Err(VerifyError::TimestampTooNew {
            timestamp: ts,
            now,
            tolerance_secs,
        });
    }
    // Sign the timestamp as it was sent (the canonical decimal form is what senders use).
    let expected = mac(secret, msg_id, timestamp.trim(), body);
    let mut saw_v1 = false;
    for entry in signature_header.split_whitespace() {
        let Some(("v1", encoded)) = entry.split_once(',') else {
            continue;
        };
        saw_v1 = true;
        let Ok(candidate) = STANDARD.decode(encoded) else {
            continue;
        };
        if bool::from(candidate.as_slice().ct_eq(&expected)) {
            return Ok(());
        }
    }
    Err(if saw_v1 {
        VerifyError::NoMatchingSignature
    } else {
        VerifyError::NoSignature
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    const MSG_ID: &str = "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk";
    const TIMESTAMP: i64 = 1_649_367_553;
    const BODY: &[u8] = br#"{"email":"test@example.com","username":"test_user"}"#;
    const EXPECTED: &str = "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=";

    fn spec_secret() -> WebhookSecret {
        WebhookSecret::parse(SECRET).unwrap()
    }

    #[test]
    fn the_spec_test_vector_signs_exactly() {
        assert_eq!(signature(&spec_secret(), MSG_ID, TIMESTAMP, BODY), EXPECTED);
        assert_eq!(
            signature_header(&[&spec_secret()], MSG_ID, TIMESTAMP, BODY),
            EXPECTED
        );
    }

    #[test]
    fn the_spec_test_vector_verifies() {
        let ts = TIMESTAMP.to_string();
        verify(
            &spec_secret(),
            MSG_ID,
            &ts,
            EXPECTED,
            BODY,
            TIMESTAMP,
            DEFAULT_TOLERANCE_SECS,
        )
        .unwrap();
        // A little clock skew either way is fine.
        for now in [TIMESTAMP - 299, TIMESTAMP + 300] {
            verify(&spec_secret(), MSG_ID, &ts, EXPECTED, BODY, now, 300).unwrap();
        }
    }

    #[test]
    fn verify_rejects_a_changed_body_a_wrong_secret_and_a_changed_id() {
        let ts = TIMESTAMP.to_string();
        let changed = br#"{"email":"test@example.com","username":"test_user2"}"#;
        assert_eq!(
            verify(
                &spec_secret(),
                MSG_ID,
                &ts,
                EXPECTED,
                changed,
                TIMESTAMP,
                300
            ),
            Err(VerifyError::NoMatchingSignature)
        );
        assert_eq!(
            verify(
                &WebhookSecret::generate(),
                MSG_ID,
                &ts,
                EXPECTED,
                BODY,
                TIMESTAMP,
                300
            ),
            Err(VerifyError::NoMatchingSignature)
        );
        assert_eq!(
            verify(
                &spec_secret(),
                "msg_other",
                &ts,
                EXPECTED,
                BODY,
                TIMESTAMP,
                300
            ),
            Err(VerifyError::NoMatchingSignature)
        );
        // The signature covers the timestamp too.
        let later = (TIMESTAMP + 1).to_string();
        assert_eq!(
            verify(
                &spec_secret(),
                MSG_ID,
                &later,
                EXPECTED,
                BODY,
                TIMESTAMP,
                300
            ),
            Err(VerifyError::NoMatchingSignature)
        );
    }

    #[test]
    fn verify_rejects_stale_future_and_malformed_timestamps() {
        let ts = TIMESTAMP.to_string();
        assert!(matches!(
            verify(
                &spec_secret(),
                MSG_ID,
                &ts,
                EXPECTED,
                BODY,
                TIMESTAMP + 301,
                300
            ),
            Err(VerifyError::TimestampTooOld { .. })
        ));
        assert!(matches!(
            verify(
                &spec_secret(),
                MSG_ID,
                &ts,
                EXPECTED,
                BODY,
                TIMESTAMP - 301,
                300
            ),
            Err(VerifyError::TimestampTooNew { .. })
        ));
        assert!(matches!(
            verify(
                &spec_secret(),
                MSG_ID,
                "soon",
                EXPECTED,
                BODY,
                TIMESTAMP,
                300
            ),
            Err(VerifyError::InvalidTimestamp(_))
        ));
    }

    #[test]
    fn verify_skips_other_versions_and_garbage_entries() {
        let ts = TIMESTAMP.to_string();
        let header = format!("v1a,abc v2,xyz v1,!!notbase64!! {EXPECTED}");
        verify(&spec_secret(), MSG_ID, &ts, &header, BODY, TIMESTAMP, 300).unwrap();
        assert_eq!(
            verify(&spec_secret(), MSG_ID, &ts, "v2,abc", BODY, TIMESTAMP, 300),
            Err(VerifyError::NoSignature)
        );
        assert_eq!(
            verify(&spec_secret(), MSG_ID, &ts, "", BODY, TIMESTAMP, 300),
            Err(VerifyError::NoSignature)
        );
    }

    #[test]
    fn a_two_secret_header_verifies_with_either_secret() {
        let new = WebhookSecret::generate();
        let old = spec_secret();
        let header = signature_header(&[&new, &old], MSG_ID, TIMESTAMP, BODY);
        let parts: Vec<&str> = header.split(' ').collect();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[1], EXPECTED);
        let ts = TIMESTAMP.to_string();
        for secret in [&new, &old] {
            verify(secret, MSG_ID, &ts, &header, BODY, TIMESTAMP, 300).unwrap();
        }
        assert_eq!(
            verify(
                &WebhookSecret::generate(),
                MSG_ID,
                &ts,
                &header,
                BODY,
                TIMESTAMP,
                300
            ),
            Err(VerifyError::NoMatchingSignature)
        );
    }

    #[test]
    fn secrets_parse_display_and_redact() {
        let secret = spec_secret();
        assert_eq!(secret.to_string(), SECRET);
        assert_eq!(secret.as_bytes().len(), 24);
        assert_eq!(format!("{secret:?}"), "WebhookSecret(whsec_<redacted>)");
        assert!(!format!("{secret:?}").contains("C2FV"));
        assert_eq!(SECRET.parse::<WebhookSecret>().unwrap(), secret);

        let fresh = WebhookSecret::generate();
        assert_eq!(fresh.as_bytes().len(), GENERATED_SECRET_BYTES);
        assert!(fresh.to_string().starts_with("whsec_"));
        assert_eq!(WebhookSecret::parse(&fresh.to_string()).unwrap(), fresh);
        assert_ne!(WebhookSecret::generate(), fresh);
    }

    #[test]
    fn bad_secrets_are_refused() {
        assert_eq!(
            WebhookSecret::parse("C2FVsBQIhrscChlQIMV+b5sSYspob7oD"),
            Err(SecretError::MissingPrefix)
        );
        assert!(matches!(
            WebhookSecret::parse("whsec_not base64!"),
            Err(SecretError::InvalidBase64(_))
        ));
        // 23 bytes.
        let short = format!("whsec_{}", STANDARD.encode([7u8; 23]));
        assert_eq!(
            WebhookSecret::parse(&short),
            Err(SecretError::TooShort { len: 23 })
        );
        assert_eq!(
            WebhookSecret::parse("whsec_"),
            Err(SecretError::TooShort { len: 0 })
        );
    }

    proptest! {
        #[test]
        fn sign_then_verify_round_trips(
            body in proptest::collection::vec(any::<u8>(), 0..2048),
            id in "[A-Za-z0-9_-]{1,48}",
            timestamp in 0i64..4_000_000_000,
            skew in -300i64..=300,
        ) {
            let secret = WebhookSecret::generate();
            let header = signature_header(&[&secret], &id, timestamp, &body);
            prop_assert_eq!(
                verify(&secret, &id, &timestamp.to_string(), &header, &body, timestamp + skew, 300),
                Ok(())
            );
            let mut tampered = body.clone();
            tampered.push(b'!');
            prop_assert_eq!(
                verify(&secret, &id, &timestamp.to_string(), &header, &tampered, timestamp, 300),
                Err(VerifyError::NoMatchingSignature)
            );
        }
    }
}
