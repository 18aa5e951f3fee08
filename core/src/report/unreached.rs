//! A run in which no request reached the endpoint, though nothing aborted it: too
//! few attempts for the engine's breaker, yet the address is the likely cause.

use serde::{Deserialize, Serialize};

use super::ErrorEntry;
use crate::journal::FailureKind;

/// Said of a run with no success whose every failure is a connection failure or an
/// HTTP 404 (an address that is wrong, or a server that is not up). A browser
/// also reports a call the endpoint does not allow from a page (CORS) as a
/// connection failure, so a host that can tell the two apart says which.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Unreached {
    /// The last failure's message.
    pub last_error: String,
    /// Every failure was a failure to connect (no 404 among them).
    pub connection_only: bool,
}

impl Unreached {
    /// `None` unless nothing succeeded and every one of `errors` (at least one)
    /// is a connection failure or a 404.
    pub fn of(successful: usize, errors: &[ErrorEntry]) -> Option<Unreached> {
        let transport = |e: &ErrorEntry| e.error_kind == Some(FailureKind::Transport);
        let last = errors.last()?;
        (successful == 0
            && errors
                .iter()
                .all(|e| transport(e) || e.http_status == Some(404)))
        .then(|| Unreached {
            last_error: last.error.clone(),
            connection_only: errors.iter().all(transport),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(kind: FailureKind, status: Option<u16>, error: &str) -> ErrorEntry {
        ErrorEntry {
            row: 0,
            line: 2,
            image: "a.png".into(),
            label: "cat".into(),
            error: error.into(),
            error_kind: Some(kind),
            http_status: status,
            attempts: 1,
        }
    }

    /// The rule the page applied to its journal lines, now the core's.
    #[test]
    fn only_connection_failures_and_404s_with_no_success_say_unreached() {
        let refused = failure(FailureKind::Transport, None, "could not connect");
        let missing = failure(FailureKind::Http, Some(404), "HTTP 404");
        let server = failure(FailureKind::Http, Some(500), "HTTP 500");
        assert_eq!(
            Unreached::of(0, &[refused.clone(), refused.clone()]),
            Some(Unreached {
                last_error: "could not connect".into(),
                connection_only: true
            })
        );
        assert_eq!(
            Unreached::of(0, &[refused.clone(), missing.clone()]),
            Some(Unreached {
                last_error: "HTTP 404".into(),
                connection_only: false
            })
        );
        // An answer other than 404 reached it; a success, or no failure, says nothing.
        assert_eq!(Unreached::of(0, &[refused.clone(), server]), None);
        assert_eq!(Unreached::of(1, &[refused]), None);
        assert_eq!(Unreached::of(0, &[]), None);
    }
}
