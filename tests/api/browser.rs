//! Reader pages in a real browser: headless Chromium driven over WebDriver (chromedriver).

use std::time::Duration;

use fantoccini::Locator;
use newsroom_tests::chrome::{browser, driver, screenshot};
use newsroom_tests::*;
use serde_json::json;

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
    // The change brought its own markup: the page asked the server for nothing to show it.
    let fetched = client
        .execute(
            "return performance.getEntriesByType('resource').map(e => e.name).filter(n => n.includes('/fragment'));",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(fetched, json!([]), "no fragment was fetched");
    let items = client
        .execute(
            "return Array.from(document.querySelectorAll('#timeline li.timeline-item')).map(li => li.dataset.occurred);",
            vec![],
        )
        .await
        .unwrap();
    let items: Vec<String> = serde_json::from_value(items).unwrap();
    assert_eq!(items.len(), 2, "{items:?}");
    let mut sorted = items.clone();
    sorted.sort_by_key(|t| chrono::DateTime::parse_from_rfc3339(t).unwrap());
    assert_eq!(items, sorted, "in the order things happened");
    screenshot(&client, "story-page").await;

    client.goto(&format!("{}/", app.address)).await.unwrap();
    let front = client.find(Locator::Css("main")).await.unwrap();
    assert!(front.text().await.unwrap().contains("Campaign hack"));
    screenshot(&client, "front-page").await;
    client.close().await.unwrap();
}
