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
    driver_in_zone(None)
}

/// Starts chromedriver whose browsers run in the time zone `zone` (an IANA name, as `TZ`), or in
/// the machine's when `None`.
pub fn driver_in_zone(zone: Option<&str>) -> Option<Driver> {
    let (driver, browser) = ("/usr/bin/chromedriver", "/usr/bin/chromium");
    if !std::path::Path::new(driver).exists() || !std::path::Path::new(browser).exists() {
        crate::services::skip_or_fail("chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)");
        return None;
    }
    let port = crate::services::free_port();
    let mut command = Command::new(driver);
    if let Some(zone) = zone {
        command.env("TZ", zone);
    }
    let child = command
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
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/screenshots");
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
/// A look-up that met the page being replaced (chromedriver answers "aborted by navigation" when
/// a command runs while the next page loads) is tried again on the new page until the deadline.
pub async fn wait_for(client: &Client, xpath: &str, what: &str) -> fantoccini::elements::Element {
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let found = client
            .wait()
            .at_most(left)
            .for_element(Locator::XPath(xpath))
            .await;
        match found {
            Ok(element) => return element,
            Err(e)
                if e.to_string().contains("aborted by navigation")
                    && std::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => {
                let url = client.current_url().await.map(|u| u.to_string());
                let source = client.source().await.unwrap_or_default();
                panic!("{what}: {e} (at {url:?})\n{source}");
            }
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

/// Follows the link whose text is `text`.
pub async fn click_link(client: &Client, text: &str) {
    client
        .find(Locator::LinkText(text))
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
    press(client, "#token-sign-in button[type=submit]").await;
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
    // Ticked when the form opens: a new story's filings wait for an editor.
    let ticked = client
        .find(Locator::Css("#f-review-required"))
        .await
        .unwrap()
        .is_selected()
        .await
        .unwrap();
    if ticked != review {
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

// ----- accessibility: axe-core and tap targets ----------------------------------------------

/// The axe-core version the accessibility checks run (installed by `.ci/run` with npm).
pub const AXE_CORE: &str = "4.14.1";

/// axe-core's script: `NEWSROOM_AXE_JS`, else `target/axe/node_modules/axe-core/axe.min.js`
/// (`npm install --prefix target/axe axe-core@4.14.1`). `None` (a skip, or a failure in CI) when
/// it is not installed.
pub fn axe_script() -> Option<String> {
    let path = std::env::var_os("NEWSROOM_AXE_JS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../target/axe/node_modules/axe-core/axe.min.js")
        });
    match std::fs::read_to_string(&path) {
        Ok(script) => Some(script),
        Err(_) => {
            crate::services::skip_or_fail(&format!(
                "axe-core is not installed at {} (npm install --prefix target/axe axe-core@{AXE_CORE})",
                path.display()
            ));
            None
        }
    }
}

/// Runs axe-core on the page the browser shows, against WCAG 2.x A and AA (2.2 included), and
/// returns the violations of impact moderate, serious or critical: id, impact, help and where.
pub async fn axe_violations(client: &Client, axe: &str) -> Vec<serde_json::Value> {
    client
        .execute(&format!("{axe}\n;return typeof window.axe;"), vec![])
        .await
        .expect("axe-core loads into the page");
    let found = client
        .execute_async(
            r#"const done = arguments[arguments.length - 1];
               const tags = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa'];
               window.axe.run(document, { runOnly: { type: 'tag', values: tags } }).then(
                 (r) => done(r.violations
                   .filter((v) => ['moderate', 'serious', 'critical'].includes(v.impact))
                   .map((v) => ({ id: v.id, impact: v.impact, help: v.help,
                                  nodes: v.nodes.slice(0, 5).map((n) => n.target.join(' ')) }))),
                 (e) => done([{ id: 'axe-failed', impact: 'critical', help: String(e) }]));"#,
            vec![],
        )
        .await
        .expect("axe-core runs");
    serde_json::from_value(found).expect("a list of violations")
}

/// The links, buttons and form controls shown on the page that are smaller than 44 × 44 CSS
/// pixels: what each says and its size.
pub async fn small_tap_targets(client: &Client) -> Vec<serde_json::Value> {
    let found = client
        .execute(
            r#"const shown = (el) => {
                 const r = el.getBoundingClientRect();
                 const style = getComputedStyle(el);
                 return r.width > 0 && r.height > 0 && style.visibility !== 'hidden' &&
                   r.bottom > 0 && r.right > 0;
               };
               return Array.from(document.querySelectorAll(
                   'a[href], button, input:not([type=hidden]), select, textarea, summary'))
                 .filter(shown)
                 .map((el) => { const r = el.getBoundingClientRect();
                                return { text: (el.textContent || el.name || '').trim().slice(0, 40),
                                         width: Math.round(r.width), height: Math.round(r.height) }; })
                 .filter((t) => t.width < 44 || t.height < 44);"#,
            vec![],
        )
        .await
        .expect("the page's targets are measured");
    serde_json::from_value(found).expect("a list of targets")
}
