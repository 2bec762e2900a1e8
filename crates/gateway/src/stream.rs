//! The upstream's response body on its way to the agent: each chunk is passed on as soon as it
//! arrives (an SSE event reaches the agent when the upstream sends it, never buffered), and the
//! stream ends when the gateway shuts down, so a long-lived SSE stream does not hold a graceful
//! shutdown forever (the client reconnects, with `Last-Event-ID`, to wherever it is sent next).

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use futures_util::Stream;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

type Chunks = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

pub(crate) struct UpstreamBody {
    chunks: Chunks,
    shutdown: Pin<Box<WaitForCancellationFutureOwned>>,
    started: Instant,
    bytes: u64,
    done: bool,
}

impl UpstreamBody {
    pub(crate) fn new(response: reqwest::Response, shutdown: CancellationToken, started: Instant) -> Self {
        Self {
            chunks: Box::pin(response.bytes_stream()),
            shutdown: Box::pin(shutdown.cancelled_owned()),
            started,
            bytes: 0,
            done: false,
        }
    }

    fn finish(&mut self, how: &'static str) {
        self.done = true;
        let duration_ms = self.started.elapsed().as_millis() as u64;
        tracing::debug!(bytes = self.bytes, duration_ms, "upstream body {how}");
    }
}

impl Stream for UpstreamBody {
    type Item = reqwest::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        if self.shutdown.as_mut().poll(cx).is_ready() {
            self.finish("cut short by shutdown");
            return Poll::Ready(None);
        }
        match self.chunks.as_mut().poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                self.bytes += chunk.len() as u64;
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(e))) => {
                // The agent's connection is closed without a clean end, so it knows the body is
                // incomplete.
                tracing::warn!(error = %error_chain(&e), bytes = self.bytes, "the upstream body broke off");
                self.finish("broke off");
                Poll::Ready(Some(Err(e)))
            }
            Poll::Ready(None) => {
                self.finish("complete");
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

/// The error and its causes on one line, without the URL (which could carry a query).
pub(crate) fn error_chain(e: &reqwest::Error) -> String {
    let mut line = String::new();
    let mut current: Option<&dyn std::error::Error> = Some(e);
    let mut first = true;
    while let Some(err) = current {
        let text = if first {
            // reqwest's Display names the URL; its kind is enough.
            if e.is_timeout() {
                "timed out".to_owned()
            } else if e.is_connect() {
                "connection failed".to_owned()
            } else if e.is_body() || e.is_decode() {
                "body error".to_owned()
            } else {
                "request failed".to_owned()
            }
        } else {
            err.to_string()
        };
        if !first {
            line.push_str(": ");
        }
        line.push_str(&text);
        first = false;
        current = err.source();
    }
    line
}
