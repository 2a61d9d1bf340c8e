//! Reader pages in a real browser: headless Chromium driven over WebDriver (chromedriver).

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use newsroom_tests::*;
use serde_json::json;

/// A chromedriver process on a free port, killed on drop.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts chromedriver, or says why the test is skipped (a failure when services are required).
fn driver() -> Option<Driver> {
    let (driver, browser) = ("/usr/bin/chromedriver", "/usr/bin/chromium");
    if !std::path::Path::new(driver).exists() || !std::path::Path::new(browser).exists() {
        skip_or_fail("chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)");
        return None;
    }
    let port = free_port();
    let child = Command::new(driver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    Some(Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    })
}

async fn browser(driver: &Driver) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": "/usr/bin/chromium",
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                     "--no-first-run", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync",
                     "--window-size=1200,900"]
        }),
    );
    // chromedriver takes a moment to listen.
    let mut last_error = None;
    for _ in 0..50 {
        // chromedriver speaks plain HTTP on loopback: no TLS stack needed.
        match ClientBuilder::new(HttpConnector::new())
            .capabilities(caps.clone())
            .connect(&driver.url)
            .await
        {
            Ok(client) => return client,
            Err(e) => last_error = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("cannot start a browser session: {last_error:?}");
}

async fn screenshot(client: &Client, name: &str) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    let png = client.screenshot().await.unwrap();
    std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
}

#[tokio::test]
async fn a_story_page_shows_a_new_development_without_reloading() {
    let Some(driver) = driver() else { return };
    let app = spawn_app().await;
    let answer = app
        .open_story_as(
            &app.reporter,
            json!({"slug": "live-page", "headline": "<script>alert('pwned')</script> Campaign hack",
                   "summary": "A campaign says its email was breached."}),
        )
        .await;
    let story = answer.ok(201)["id"].as_str().unwrap().to_owned();
    let mut first = development("hack_reported");
    first["headline"] = json!("Campaign A says its email was breached");
    let p = app.record(&story, first).await.ok(201)["position"]
        .as_i64()
        .unwrap();
    app.call(
        reqwest::Method::GET,
        &format!("/v1/stories/{story}?min_position={p}"),
        None,
        None,
    )
    .await
    .ok(200);

    let client = browser(&driver).await;
    client
        .goto(&format!("{}/stories/live-page", app.address))
        .await
        .unwrap();
    let h1 = client.find(Locator::Css("h1")).await.unwrap();
    assert_eq!(
        h1.text().await.unwrap().trim(),
        "<script>alert('pwned')</script> Campaign hack",
        "the hostile headline renders as text"
    );
    let timeline = client.find(Locator::Id("timeline")).await.unwrap();
    assert!(timeline
        .text()
        .await
        .unwrap()
        .contains("Campaign A says its email was breached"));
    // A marker on the page's window: it survives only if the page is never reloaded.
    client
        .execute("window.__not_reloaded = true; return true;", vec![])
        .await
        .unwrap();
    // Let the page open its event stream before the next development is filed.
    client
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::XPath(
            "//*[@id='live-status' and contains(., 'Live')]",
        ))
        .await
        .expect("the page says it is live");

    let mut denial = development("statement_issued");
    denial["headline"] = json!("Foreign ministry calls the accusation baseless");
    app.record(&story, denial).await.ok(201);

    client
        .wait()
        .at_most(Duration::from_secs(15))
        .for_element(Locator::XPath(
            "//*[@id='timeline']//*[contains(., 'Foreign ministry calls the accusation baseless')]",
        ))
        .await
        .expect("the new development appears without a reload");
    let marker = client
        .execute("return window.__not_reloaded === true;", vec![])
        .await
        .unwrap();
    assert_eq!(marker, json!(true), "the page was not reloaded");
    screenshot(&client, "story-page").await;

    client.goto(&format!("{}/", app.address)).await.unwrap();
    let front = client.find(Locator::Css("main")).await.unwrap();
    assert!(front.text().await.unwrap().contains("Campaign hack"));
    screenshot(&client, "front-page").await;
    client.close().await.unwrap();
}
