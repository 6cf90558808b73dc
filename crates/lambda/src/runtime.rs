//! The Lambda runtime with the event read from the invocation's raw body
//! by [`KinesisBatch::from_json`] (a direct scan, issue 18), instead of
//! `lambda_runtime`'s `serde_json` reading.
//!
//! `lambda_runtime` deserializes the body inside its own service, after the
//! layers. [`run`] adds a layer that reads the body into a [`KinesisBatch`]
//! first, keeps it in a slot of the runtime and hands the inner service an
//! empty event in its place; the handler then takes the batch from the
//! slot. A body the scan does not read as an event goes on unchanged, so
//! `lambda_runtime` reads it as before and answers the invocation with the
//! same deserialization error (Lambda retries the batch).

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use aws_lambda_events::streams::KinesisEventResponse;
use dms_cdc_core::dms::KinesisBatch;
use lambda_runtime::layers::TracingLayer;
use lambda_runtime::tower::{Layer, Service};
use lambda_runtime::{service_fn, Error, LambdaEvent, LambdaInvocation, Runtime};

/// The body handed on when the batch waits in the slot: an empty event.
const HANDED_OVER: &[u8] = br#"{"Records":[]}"#;

/// The batch read from the current invocation's body, if it was.
type Slot = Arc<Mutex<Option<KinesisBatch>>>;

/// Runs the Lambda runtime like `lambda_runtime::run` (with its
/// `TracingLayer`), `handler` getting each event read by
/// [`KinesisBatch::from_json`] (see the module docs).
pub async fn run<F, Fut>(mut handler: F) -> Result<(), Error>
where
    F: FnMut(LambdaEvent<KinesisBatch>) -> Fut,
    Fut: Future<Output = Result<KinesisEventResponse, Error>>,
{
    let slot = Slot::default();
    let taken = slot.clone();
    let service = service_fn(move |mut event: LambdaEvent<KinesisBatch>| {
        if let Some(batch) = take(&taken) {
            event.payload = batch;
        }
        handler(event)
    });
    Runtime::new(service)
        .layer(ReadBatchLayer { slot })
        .layer(TracingLayer::new())
        .run()
        .await
}

fn take(slot: &Slot) -> Option<KinesisBatch> {
    slot.lock().unwrap_or_else(PoisonError::into_inner).take()
}

/// The layer that reads the invocation's body into the slot.
struct ReadBatchLayer {
    slot: Slot,
}

impl<S> Layer<S> for ReadBatchLayer {
    type Service = ReadBatch<S>;

    fn layer(&self, inner: S) -> ReadBatch<S> {
        ReadBatch {
            inner,
            slot: self.slot.clone(),
        }
    }
}

/// The service of [`ReadBatchLayer`].
struct ReadBatch<S> {
    inner: S,
    slot: Slot,
}

impl<S> Service<LambdaInvocation> for ReadBatch<S>
where
    S: Service<LambdaInvocation, Response = (), Error = Error>,
{
    type Response = ();
    type Error = Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut invocation: LambdaInvocation) -> S::Future {
        // lambda_runtime logs the body it gets at this level; it gets the
        // empty event, so the raw one is logged here.
        tracing::trace!(
            body = %String::from_utf8_lossy(&invocation.body),
            "raw JSON event received from Lambda"
        );
        let batch = KinesisBatch::from_json(&invocation.body).ok();
        if batch.is_some() {
            invocation.body = bytes::Bytes::from_static(HANDED_OVER);
        }
        *self.slot.lock().unwrap_or_else(PoisonError::into_inner) = batch;
        self.inner.call(invocation)
    }
}

#[cfg(test)]
mod tests {
    use std::future::{ready, Ready};

    use super::*;

    /// The inner service: keeps the bodies it is handed.
    #[derive(Default)]
    struct Bodies(Vec<bytes::Bytes>);

    impl Service<LambdaInvocation> for Bodies {
        type Response = ();
        type Error = Error;
        type Future = Ready<Result<(), Error>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Error>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, invocation: LambdaInvocation) -> Self::Future {
            self.0.push(invocation.body);
            ready(Ok(()))
        }
    }

    fn invocation(body: &[u8]) -> LambdaInvocation {
        let (parts, ()) = http::Response::new(()).into_parts();
        LambdaInvocation {
            parts,
            body: bytes::Bytes::copy_from_slice(body),
            context: lambda_runtime::Context::default(),
        }
    }

    #[test]
    fn an_event_waits_in_the_slot_and_anything_else_goes_on_unchanged() {
        let slot = Slot::default();
        let mut service = ReadBatchLayer { slot: slot.clone() }.layer(Bodies::default());
        let event = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../fixtures/events/01-load.json"
        ))
        .unwrap();
        drop(service.call(invocation(&event)));
        assert_eq!(service.inner.0.last().unwrap().as_ref(), HANDED_OVER);
        let expected: KinesisBatch = serde_json::from_slice(&event).unwrap();
        assert_eq!(take(&slot), Some(expected));

        for body in [&b"{\"Records\":null}"[..], b"not json", b""] {
            drop(service.call(invocation(body)));
            assert_eq!(service.inner.0.last().unwrap().as_ref(), body);
            assert_eq!(take(&slot), None);
        }
    }
}
