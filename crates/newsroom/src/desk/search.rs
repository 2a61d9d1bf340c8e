//! The desk's search: the reader side's search, for staff.

use axum::extract::State;
use axum::http::StatusCode;
use newsroom_web::problem::Problem;

use super::forms::FormError;
use super::templates::{self, Here};
use super::{failure, page};
use super::{Answer, DeskState, Signed, Stop};

/// `/desk/search?q=`: the reader side's search (its parameters, its parsing and its index),
/// for staff: developments waiting for review are found too.
pub(super) async fn search(
    State(state): State<DeskState>,
    Signed(session): Signed,
    axum::extract::RawQuery(raw): axum::extract::RawQuery,
) -> Answer {
    use newsroom_projection::api::{parse_search, search_next, ReadError, DESK_SEARCH_PARAMS};
    use newsroom_projection::search::Audience;
    let chrome = state.chrome(&session, Here::Search);
    let refused = |problem: Problem| {
        let details = problem.details();
        let error = FormError::new(details.field.as_deref(), details.detail.clone());
        page(
            problem.status(),
            templates::search_page(&chrome, "", None, None, None, Some(&error)),
        )
    };
    let params = match newsroom_web::query_params(raw.as_deref(), DESK_SEARCH_PARAMS) {
        Ok(params) => params,
        Err(problem) => return Ok(refused(problem)),
    };
    let q = params.get("q").cloned().unwrap_or_default();
    if q.trim().is_empty() {
        return Ok(page(
            StatusCode::OK,
            templates::search_page(&chrome, "", None, None, None, None),
        ));
    }
    let found = async {
        let search = parse_search(&state.views, &params, Audience::Staff).await?;
        let (offset, limit) = (search.offset, search.limit);
        let found = state.views.search(search).await?;
        let next = found
            .more
            .then(|| search_next("/desk/search", &params, offset + limit));
        Ok::<_, ReadError>((found.hits, next))
    }
    .await;
    match found {
        Ok((hits, next)) => Ok(page(
            StatusCode::OK,
            templates::search_page(
                &chrome,
                &q,
                params.get("status").map(String::as_str),
                Some(&hits),
                next.as_deref(),
                None,
            ),
        )),
        Err(ReadError(problem)) if problem.status().is_client_error() => {
            let details = problem.details();
            let error = FormError::new(details.field.as_deref(), details.detail.clone());
            Ok(page(
                problem.status(),
                templates::search_page(
                    &chrome,
                    &q,
                    params.get("status").map(String::as_str),
                    None,
                    None,
                    Some(&error),
                ),
            ))
        }
        Err(ReadError(problem)) => Err(Stop::from(failure(problem.details().detail.clone()))),
    }
}
