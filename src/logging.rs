//! The process's log subscriber: `RUST_LOG` (default `info`) to stderr, as human text or JSON
//! lines locally and as JSON lines on Lambda.
//!
//! Whatever `RUST_LOG` says, the Lambda runtime crates never log at TRACE: at that level
//! `lambda_runtime` prints every raw invocation event, and an event carries the request's
//! headers, the broker's basic-auth credentials among them. [`within_cap`] holds them to DEBUG,
//! as a filter of its own, so no directive (`trace`, `lambda_runtime=trace`, a more specific
//! module path) can lift it.

use std::io::IsTerminal;

use tracing::{Level, Metadata, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::prelude::*;

/// Target prefixes of the crates that hand invocations between Lambda and the router.
const LAMBDA_RUNTIME_TARGETS: [&str; 2] = ["lambda_runtime", "lambda_http"];

/// Whether a span or event may be logged at all: anything but TRACE from the Lambda runtime
/// crates (`lambda_runtime`, `lambda_runtime_api_client`, `lambda_http`).
pub fn within_cap(meta: &Metadata<'_>) -> bool {
    *meta.level() < Level::TRACE
        || !LAMBDA_RUNTIME_TARGETS
            .iter()
            .any(|prefix| meta.target().starts_with(prefix))
}

fn env_filter() -> EnvFilter {
    EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"))
}

/// The local server's logging: human text, or JSON lines when `json`. Colour codes only when
/// stderr is a terminal: a log redirected to a file or a pipe gets plain text.
pub fn init_local(json: bool) {
    let builder = tracing_subscriber::fmt()
        .with_env_filter(env_filter())
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    if json {
        builder
            .json()
            .with_current_span(false)
            .finish()
            .with(filter_fn(within_cap))
            .init();
    } else {
        builder.finish().with(filter_fn(within_cap)).init();
    }
}

/// On Lambda: JSON lines whose `span` is the invocation's (Lambda request id, OSB request
/// identity), without colour codes, which CloudWatch would keep verbatim.
pub fn init_lambda() {
    lambda_subscriber(env_filter(), std::io::stderr).init();
}

/// The Lambda subscriber, writing to `writer` (tests give a buffer).
pub fn lambda_subscriber<W>(filter: EnvFilter, writer: W) -> impl Subscriber + Send + Sync
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(false)
        .json()
        .with_current_span(true)
        .with_span_list(false)
        .finish()
        .with(filter_fn(within_cap))
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// Under every directive that asks for TRACE, the runtime's TRACE lines stay out and its
    /// DEBUG lines and everyone else's TRACE lines stay in.
    #[test]
    fn the_lambda_runtime_is_held_to_debug_whatever_rust_log_says() {
        for directives in [
            "trace",
            "lambda_runtime=trace",
            "debug,lambda_runtime::layers::api_response=trace,lambda_http=trace",
        ] {
            let buffer = Buffer::default();
            let writer = buffer.clone();
            let subscriber = lambda_subscriber(EnvFilter::new(directives), move || writer.clone());
            tracing::subscriber::with_default(subscriber, || {
                tracing::trace!(target: "lambda_runtime::layers::api_response", body = "RAW-EVENT", "raw JSON event received from Lambda");
                tracing::trace!(target: "lambda_runtime_api_client", "RAW-CLIENT");
                tracing::trace!(target: "lambda_http::request", "RAW-HTTP");
                tracing::debug!(target: "lambda_runtime::runtime", "RUNTIME-DEBUG");
                tracing::trace!(target: "osb_sacloud::broker", "BROKER-TRACE");
            });
            let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
            for held in ["RAW-EVENT", "RAW-CLIENT", "RAW-HTTP"] {
                assert!(!text.contains(held), "{directives}: {held} logged:\n{text}");
            }
            assert!(text.contains("RUNTIME-DEBUG"), "{directives}:\n{text}");
            if directives == "trace" {
                assert!(text.contains("BROKER-TRACE"), "{text}");
            }
        }
    }
}
