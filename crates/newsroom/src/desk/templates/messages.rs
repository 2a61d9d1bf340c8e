//! The desk's message page: a page that only says something (a refusal, a missing page, a
//! failure), with one link onwards.

use maud::{html, Markup};

use super::{layout, Chrome};

/// A page that only says something: a refusal, a missing page, a failure.
pub(crate) fn message_page(
    chrome: Option<&Chrome<'_>>,
    title: &str,
    message: &str,
    link: (&str, &str),
) -> Markup {
    let content = html! {
        div.narrow {
            h1 { (title) }
            p { (message) }
            p { a href=(link.0) { (link.1) } }
        }
    };
    layout(title, chrome, content)
}
