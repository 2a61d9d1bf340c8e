//! The notifier's [`Mailer`] against a real SMTP server on loopback ([`SmtpSink`]): messages
//! arrive with their envelope, headers and body intact, and failures are classified as permanent
//! or transient the way the delivery queue needs.

use std::time::Duration;

use newsroom_notifier::email::{EmailError, Mailer};
use newsroom_testkit::smtp_sink::SmtpSink;

const WAIT: Duration = Duration::from_secs(10);

fn mailer(url: &str) -> Mailer {
    Mailer::new(url, "Newsroom Alerts <alerts@newsroom.test>")
        .expect("a valid mailer")
        .with_timeout(Duration::from_secs(5))
}

#[tokio::test]
async fn mails_arrive_at_the_sink_with_envelope_subject_and_body() {
    let sink = SmtpSink::start().await;
    let mailer = mailer(&sink.url());

    mailer
        .send(
            "ada@example.org",
            "Flash: Campaign A says its email was breached",
            "Campaign A said attackers had access for three weeks.\n\nUnsubscribe: https://newsroom.test/u/1",
        )
        .await
        .expect("first mail sent");
    mailer
        .send(
            "grace@example.net",
            "Correction: turnout figure",
            ".a line starting with a dot\nand the rest",
        )
        .await
        .expect("second mail sent");

    let messages = sink.wait_for(2, WAIT).await;
    assert_eq!(messages.len(), 2, "{messages:#?}");

    let first = &messages[0];
    assert_eq!(first.from, "alerts@newsroom.test");
    assert_eq!(first.to, vec!["ada@example.org".to_owned()]);
    assert_eq!(
        first.header("Subject").as_deref(),
        Some("Flash: Campaign A says its email was breached")
    );
    let from_header = first.header("From").unwrap();
    assert!(
        from_header.contains("alerts@newsroom.test") && from_header.contains("Newsroom Alerts"),
        "{from_header}"
    );
    assert_eq!(first.header("To").as_deref(), Some("ada@example.org"));
    assert!(first
        .header("Content-Type")
        .unwrap()
        .starts_with("text/plain"));
    assert!(first.header("Message-ID").is_some());
    assert!(first.header("Date").is_some());
    let body = first.body().replace("\r\n", "\n");
    assert!(
        body.contains("Campaign A said attackers had access for three weeks.\n\nUnsubscribe: https://newsroom.test/u/1"),
        "{body:?}"
    );

    let second = &messages[1];
    assert_eq!(second.from, "alerts@newsroom.test");
    assert_eq!(second.to, vec!["grace@example.net".to_owned()]);
    assert_eq!(
        second.header("Subject").as_deref(),
        Some("Correction: turnout figure")
    );
    // The leading dot survives dot-stuffing.
    let body = second.body().replace("\r\n", "\n");
    assert!(
        body.starts_with(".a line starting with a dot\nand the rest"),
        "{body:?}"
    );
}

#[tokio::test]
async fn non_ascii_subjects_and_bodies_arrive() {
    let sink = SmtpSink::start().await;
    mailer(&sink.url())
        .send(
            "zoë@example.org",
            "Élection : résultats",
            "Zoë — ünïcödé body",
        )
        .await
        .expect("sent");
    let messages = sink.wait_for(1, WAIT).await;
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].to, vec!["zoë@example.org".to_owned()]);
    // The subject is RFC 2047 encoded; the body is 8bit, quoted-printable or base64 as lettre
    // chooses, so only check that something arrived in each.
    assert!(messages[0].header("Subject").is_some());
    assert!(!messages[0].body().is_empty());
}

#[tokio::test]
async fn a_closed_port_is_a_transient_failure() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let error = mailer(&format!("smtp://127.0.0.1:{port}"))
        .send("ada@example.org", "hello", "body")
        .await
        .unwrap_err();
    assert!(!error.is_permanent(), "{error:?}");
    assert!(matches!(error, EmailError::Unavailable(_)), "{error:?}");
}

#[tokio::test]
async fn reply_codes_decide_permanent_or_transient() {
    let sink = SmtpSink::start().await;
    let mailer = mailer(&sink.url());

    sink.reject_recipients_with(Some(550));
    let error = mailer.send("ada@example.org", "s", "t").await.unwrap_err();
    assert!(error.is_permanent(), "{error:?}");
    assert_eq!(error.smtp_code(), Some(550));

    sink.reject_recipients_with(Some(451));
    let error = mailer.send("ada@example.org", "s", "t").await.unwrap_err();
    assert!(!error.is_permanent(), "{error:?}");
    assert_eq!(error.smtp_code(), Some(451));

    sink.reject_recipients_with(None);
    mailer.send("ada@example.org", "s", "t").await.unwrap();
    assert_eq!(sink.wait_for(1, WAIT).await.len(), 1);

    let error = mailer.send("not-an-address", "s", "t").await.unwrap_err();
    assert!(error.is_permanent(), "{error:?}");
    assert_eq!(sink.messages().len(), 1);
}

#[tokio::test]
async fn list_unsubscribe_goes_in_every_listed_mail_and_one_click_only_with_https() {
    let sink = SmtpSink::start().await;
    let mailer = mailer(&sink.url());
    let https = "https://news.example.org/v1/unsubscribe/abc";
    let http = "http://127.0.0.1:8080/v1/unsubscribe/abc";
    for link in [
        Some(https),
        Some(http),
        Some("bad link <with> spaces"),
        None,
    ] {
        mailer
            .send_listed("ada@example.org", "Alert", "text", link)
            .await
            .expect("sent");
    }
    let m = sink.wait_for(4, WAIT).await;
    assert_eq!(
        m[0].header("List-Unsubscribe").as_deref(),
        Some(format!("<{https}>").as_str())
    );
    assert_eq!(
        m[0].header("List-Unsubscribe-Post").as_deref(),
        Some("List-Unsubscribe=One-Click")
    );
    // RFC 8058's one-click needs an https link: over http only the link itself is given.
    assert_eq!(
        m[1].header("List-Unsubscribe").as_deref(),
        Some(format!("<{http}>").as_str())
    );
    assert_eq!(m[1].header("List-Unsubscribe-Post"), None);
    for plain in &m[2..] {
        assert_eq!(plain.header("List-Unsubscribe"), None);
        assert_eq!(plain.header("List-Unsubscribe-Post"), None);
    }
}

/// An alert mail as Python's `email` package reads it (`policy=default`, an implementation
/// nobody here wrote): its defects, MIME version, content type and parts, Message-ID and
/// unsubscribe headers, as JSON.
fn judged_by_python(raw: &str) -> serde_json::Value {
    const SCRIPT: &str = r#"
import email, email.policy, json, sys
msg = email.message_from_bytes(sys.stdin.buffer.read(), policy=email.policy.default)
parts = [p for p in msg.walk() if not p.is_multipart()]
print(json.dumps({
    "defects": [repr(d) for p in msg.walk() for d in p.defects],
    "mime_version": msg["MIME-Version"],
    "content_type": msg.get_content_type(),
    "parts": [[p.get_content_type(), p.get_content_charset(), p.get_content()] for p in parts],
    "message_id": msg["Message-ID"],
    "list_unsubscribe": msg["List-Unsubscribe"],
    "subject": msg["Subject"],
}))
"#;
    use std::io::Write;
    let mut child = std::process::Command::new("python3")
        .args(["-c", SCRIPT])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(raw.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// An alert mail is MIME done right (MIME-Version, a plain and an HTML alternative, no defect
/// found by Python's parser), greets the relay and names its Message-ID by the public domain,
/// and a mail sent again for the same alert keeps its Message-ID, so that mail clients drop the
/// duplicate.
#[tokio::test]
async fn alert_mails_are_well_formed_mime_with_a_message_id_of_their_alert() {
    let sink = SmtpSink::start().await;
    let mailer = mailer(&sink.url()).with_domain("newsroom.test");
    let text = "Fl\u{e2}sh: Campaign A says <its> email was breached & more\n\nRead it: https://newsroom.test/stories/a-hack#d1";
    for _ in 0..2 {
        mailer
            .send_alert(
                "ada@example.org",
                "Flash: Campaign A — «breached»",
                text,
                Some("https://newsroom.test/v1/unsubscribe/tok"),
                "01HZXALERT",
            )
            .await
            .expect("sent");
    }
    let messages = sink.wait_for(2, WAIT).await;
    assert_eq!(messages.len(), 2);
    let judged: Vec<_> = messages.iter().map(|m| judged_by_python(&m.data)).collect();
    for (m, j) in messages.iter().zip(&judged) {
        assert_eq!(
            m.hello, "newsroom.test",
            "the relay is greeted by the public domain"
        );
        assert_eq!(j["defects"], serde_json::json!([]), "{j}");
        assert_eq!(j["mime_version"], "1.0", "{j}");
        assert_eq!(j["content_type"], "multipart/alternative", "{j}");
        assert_eq!(j["parts"][0][0], "text/plain");
        assert_eq!(j["parts"][0][1], "utf-8");
        assert!(j["parts"][0][2]
            .as_str()
            .unwrap()
            .contains("Fl\u{e2}sh: Campaign A says <its>"));
        assert_eq!(j["parts"][1][0], "text/html");
        let html = j["parts"][1][2].as_str().unwrap();
        assert!(
            html.contains("says &lt;its&gt; email was breached &amp; more"),
            "{html}"
        );
        assert!(
            html.contains(r#"<a href="https://newsroom.test/stories/a-hack#d1">"#),
            "{html}"
        );
        assert_eq!(j["message_id"], "<01HZXALERT@newsroom.test>");
        assert_eq!(
            j["list_unsubscribe"],
            "<https://newsroom.test/v1/unsubscribe/tok>"
        );
        assert_eq!(j["subject"], "Flash: Campaign A — «breached»");
    }
}
