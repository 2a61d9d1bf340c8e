//! Headless Chromium for the page tests: a chromedriver process on a free port and a WebDriver
//! session (fantoccini) with the flags this machine's closed network needs.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;

/// A chromedriver process on a free port, killed on drop.
#[derive(Debug)]
pub struct Driver {
    child: Child,
    pub url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts chromedriver, or says why the test is skipped (a failure when services are required).
pub fn driver() -> Option<Driver> {
    let (driver, browser) = ("/usr/bin/chromedriver", "/usr/bin/chromium");
    if !std::path::Path::new(driver).exists() || !std::path::Path::new(browser).exists() {
        crate::skip_or_fail("chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)");
        return None;
    }
    let port = crate::free_port();
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

pub async fn browser(driver: &Driver) -> Client {
    browser_with(driver, true).await
}

/// A browser that runs no script: what the pages do for someone without JavaScript.
pub async fn browser_without_script(driver: &Driver) -> Client {
    browser_with(driver, false).await
}

async fn browser_with(driver: &Driver, script: bool) -> Client {
    let mut caps = serde_json::Map::new();
    let mut options = json!({
        "binary": "/usr/bin/chromium",
        "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync",
                 "--window-size=1200,900"]
    });
    if !script {
        options["prefs"] = json!({"profile.managed_default_content_settings.javascript": 2});
    }
    caps.insert("goog:chromeOptions".into(), options);
    let mut last_error = None;
    for _ in 0..50 {
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

/// Saves a screenshot of the whole page (the window grows to the page's height for it).
pub async fn screenshot(client: &Client, name: &str) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    let size = client
        .execute(
            "return [window.outerWidth, window.outerHeight, document.documentElement.scrollHeight, window.outerHeight - window.innerHeight];",
            vec![],
        )
        .await
        .unwrap();
    let n = |i: usize| size[i].as_u64().unwrap_or(900) as u32;
    let (width, height, page, chrome) = (n(0), n(1), n(2), n(3));
    client
        .set_window_size(width, (page + chrome).clamp(height, 6000))
        .await
        .unwrap();
    let png = client.screenshot().await.unwrap();
    client.set_window_size(width, height).await.unwrap();
    std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
}

// ----- driving pages: the steps every browser test takes ------------------------------------

/// Waits for an element (the next page after a form was sent), failing with `what`.
pub async fn wait_for(client: &Client, xpath: &str, what: &str) -> fantoccini::elements::Element {
    match client
        .wait()
        .at_most(Duration::from_secs(15))
        .for_element(Locator::XPath(xpath))
        .await
    {
        Ok(element) => element,
        Err(e) => {
            let url = client.current_url().await.map(|u| u.to_string());
            let source = client.source().await.unwrap_or_default();
            panic!("{what}: {e} (at {url:?})\n{source}");
        }
    }
}

pub async fn type_into(client: &Client, css: &str, text: &str) {
    let field = client.find(Locator::Css(css)).await.unwrap();
    field.clear().await.unwrap();
    field.send_keys(text).await.unwrap();
}

pub async fn choose(client: &Client, css: &str, value: &str) {
    client
        .find(Locator::Css(css))
        .await
        .unwrap()
        .select_by_value(value)
        .await
        .unwrap();
}

pub async fn press(client: &Client, css: &str) {
    client
        .find(Locator::Css(css))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

pub async fn value_of(client: &Client, css: &str) -> String {
    client
        .find(Locator::Css(css))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap()
        .unwrap_or_default()
}

/// Sends the filing form to its preview, and files it there with the preview's own button.
pub async fn file_through_preview(client: &Client) {
    press(client, "form[action$='/developments'] button[type=submit]").await;
    wait_for(
        client,
        "//h1[starts-with(., 'Check it before')]",
        "the filing's preview",
    )
    .await;
    press(client, "button[name='confirm'][value='file']").await;
}

/// Signs in at the desk with `token`, as a person would.
pub async fn sign_in_at_desk(client: &Client, base: &str, token: &str) {
    client.goto(&format!("{base}/desk")).await.unwrap();
    wait_for(client, "//input[@id='f-token']", "the desk asks to sign in").await;
    type_into(client, "#f-token", token).await;
    press(client, "form[action='/desk/sign-in'] button[type=submit]").await;
    wait_for(
        client,
        "//h1[.='Stories']",
        "signed in, the desk lists the stories",
    )
    .await;
}

/// Opens a story from the desk's home page (with a summary and tags).
pub async fn open_story_at_desk(client: &Client, headline: &str, slug: &str, review: bool) {
    type_into(client, "#f-headline", headline).await;
    type_into(client, "#f-slug", slug).await;
    type_into(
        client,
        "#f-summary",
        "A campaign says its email was breached.",
    )
    .await;
    type_into(client, "#f-tags", "elections, cyber").await;
    if review {
        press(client, "#f-review-required").await;
    }
    press(client, "form[action='/desk/stories'] button[type=submit]").await;
    wait_for(
        client,
        "//div[@role='status' and contains(., 'Story opened')]",
        "the story is opened",
    )
    .await;
}
