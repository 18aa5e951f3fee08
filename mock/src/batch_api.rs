//! What the two batch APIs the mock serves share (OpenAI's Batch API in
//! [`crate::batch`], Anthropic's Message Batches in [`crate::message_batches`]):
//! the key check as an extractor, the store behind its lock, and the retrieve
//! and cancel handlers, so each API states only what differs.

use std::marker::PhantomData;
use std::sync::{Mutex, MutexGuard, PoisonError};

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use crate::dialect::{Dialect, Reply};
use crate::server::MockState;
use crate::stats::Counters;

/// One batch API as the mock serves it.
pub(crate) trait BatchApi: Send + Sync + 'static {
    /// Its files and batches.
    type Store: Send + 'static;
    /// One of its batches.
    type Batch: StoredBatch;
    /// Where `state` keeps this API's store.
    fn store(state: &MockState) -> &Mutex<Self::Store>;
    /// The answer to a call this API refuses (a wrong key, a missing header).
    fn refusal(state: &MockState, headers: &HeaderMap) -> Option<Response>;
    /// The answer when there is no batch `id`.
    fn not_found(id: &str) -> Response;
    /// Its batches, oldest first.
    fn batches(store: &mut Self::Store) -> &mut [Self::Batch];
    /// Batch `id` as this API words it now (writing its results once it has ended).
    fn object(call: &BatchCall<Self>, store: &mut Self::Store, id: &str) -> Value
    where
        Self: Sized;
}

/// A batch as the shared handlers see it.
pub(crate) trait StoredBatch {
    fn id(&self) -> &str;
    /// Marks it cancelled, unless it has ended (its results are written) or
    /// was cancelled before.
    fn cancel(&mut self);
}

/// A call to batch API `A` that passed its key check: handlers take it instead
/// of repeating the check.
pub(crate) struct BatchCall<A> {
    pub(crate) state: MockState,
    pub(crate) headers: HeaderMap,
    api: PhantomData<A>,
}

impl<A: BatchApi> FromRequestParts<MockState> for BatchCall<A> {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &MockState,
    ) -> Result<Self, Self::Rejection> {
        match A::refusal(state, &parts.headers) {
            Some(refusal) => Err(refusal),
            None => Ok(BatchCall {
                state: state.clone(),
                headers: parts.headers.clone(),
                api: PhantomData,
            }),
        }
    }
}

impl<A: BatchApi> BatchCall<A> {
    /// A call whose key is checked here rather than by the extractor (a route
    /// shared with a live handler): the refusal to answer, if any.
    pub(crate) fn checked(state: &MockState, headers: &HeaderMap) -> Result<Self, Box<Response>> {
        match A::refusal(state, headers) {
            Some(refusal) => Err(Box::new(refusal)),
            None => Ok(BatchCall {
                state: state.clone(),
                headers: headers.clone(),
                api: PhantomData,
            }),
        }
    }

    /// The API's store; a handler that panicked while holding it left it usable.
    pub(crate) fn store(&self) -> MutexGuard<'_, A::Store> {
        A::store(&self.state)
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The mock's counters.
    pub(crate) fn counters(&self) -> &Counters {
        &self.state.inner.counters
    }
}

/// A refused key (counted), answered as `dialect` words it, when the mock
/// requires a key and `headers` carry another.
pub(crate) fn key_refusal(
    state: &MockState,
    headers: &HeaderMap,
    dialect: Dialect,
    unauthorized: impl FnOnce() -> Reply,
) -> Option<Response> {
    let key = state.inner.cfg.require_key.as_deref()?;
    if dialect.key_matches(headers, key) {
        return None;
    }
    Counters::bump(&state.inner.counters.unauthorized);
    let (status, body) = unauthorized();
    Some(json_response(status, &body))
}

pub(crate) fn json_response(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// `GET …/batches/{id}`.
pub(crate) async fn retrieve<A: BatchApi>(call: BatchCall<A>, Path(id): Path<String>) -> Response {
    Counters::bump(&call.counters().batch_polls);
    let mut store = call.store();
    if !A::batches(&mut store).iter().any(|b| b.id() == id) {
        return A::not_found(&id);
    }
    json_response(StatusCode::OK, &A::object(&call, &mut store, &id))
}

/// `POST …/batches/{id}/cancel`.
pub(crate) async fn cancel<A: BatchApi>(call: BatchCall<A>, Path(id): Path<String>) -> Response {
    Counters::bump(&call.counters().batch_cancels);
    let mut store = call.store();
    let Some(batch) = A::batches(&mut store).iter_mut().find(|b| b.id() == id) else {
        return A::not_found(&id);
    };
    batch.cancel();
    json_response(StatusCode::OK, &A::object(&call, &mut store, &id))
}
