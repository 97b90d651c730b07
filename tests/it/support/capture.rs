//! Capturing everything that is logged on this thread, at every level, as the text an operator
//! would read: the broker's own lines, the simulator's, and the TRACE output of hyper
//! and sqlx underneath.

use std::future::Future;
use std::io;
use std::sync::{Arc, Mutex};

use tracing::level_filters::LevelFilter;
use tracing::subscriber::{DefaultGuard, Interest};
use tracing::{Dispatch, Event, Level, Metadata, Subscriber, span};

/// A buffer every formatted log line is appended to.
#[derive(Clone, Default)]
pub struct Capture(Arc<Mutex<Vec<u8>>>);

struct Sink(Arc<Mutex<Vec<u8>>>);

impl io::Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A subscriber that wants nothing and only stays registered. `tracing` caches one interest per
/// callsite for the whole process; while a single dispatcher is registered, a callsite first
/// reached by another test's thread (which has no subscriber) is cached as "never" and a
/// thread-local capture silently loses it. With this one registered too, interest is asked of
/// every registered dispatcher, the capture included.
struct Anchor;

impl Subscriber for Anchor {
    fn register_callsite(&self, _: &'static Metadata<'static>) -> Interest {
        Interest::sometimes()
    }
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        false
    }
    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(LevelFilter::OFF)
    }
    fn new_span(&self, _: &span::Attributes<'_>) -> span::Id {
        span::Id::from_u64(1)
    }
    fn record(&self, _: &span::Id, _: &span::Record<'_>) {}
    fn record_follows_from(&self, _: &span::Id, _: &span::Id) {}
    fn event(&self, _: &Event<'_>) {}
    fn enter(&self, _: &span::Id) {}
    fn exit(&self, _: &span::Id) {}
}

/// Keeps the capture installed on this thread (and the anchor registered) while alive.
pub struct Installed {
    _default: DefaultGuard,
    _anchor: Dispatch,
}

impl Capture {
    /// Route this thread's tracing, TRACE and up, into the buffer until the guard drops. Run
    /// async code on a current-thread runtime so every task logs on this thread.
    pub fn install(&self) -> Installed {
        let anchor = Dispatch::new(Anchor);
        let buffer = self.0.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(Level::TRACE)
            .with_ansi(false)
            .with_writer(move || Sink(buffer.clone()))
            .finish();
        let default = tracing::subscriber::set_default(subscriber);
        tracing::callsite::rebuild_interest_cache();
        Installed {
            _default: default,
            _anchor: anchor,
        }
    }

    /// Everything captured so far.
    pub fn text(&self) -> String {
        let bytes = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

/// Run `work` to the end on a current-thread runtime with this thread's logs captured (tasks
/// it spawns run on this thread too); returns its output and everything logged meanwhile,
/// including while the runtime shuts down.
pub fn run_captured<T>(work: impl Future<Output = T>) -> (T, String) {
    let capture = Capture::default();
    let guard = capture.install();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let out = runtime.block_on(work);
    drop(runtime);
    drop(guard);
    (out, capture.text())
}

/// A value that must never be printed, and a name for it in failure messages.
#[derive(Clone)]
pub struct Needle {
    pub what: String,
    pub value: String,
}

impl Needle {
    pub fn new(what: impl Into<String>, value: impl Into<String>) -> Needle {
        Needle {
            what: what.into(),
            value: value.into(),
        }
    }
}

/// Fail with the offending lines (every secret in them masked) if any needle occurs in
/// `haystack`.
pub fn assert_absent(place: &str, haystack: &str, needles: &[Needle]) {
    let mask = |line: &str| {
        let masked = needles.iter().fold(line.to_owned(), |l, n| {
            l.replace(&n.value, &format!("<{}>", n.what))
        });
        masked.chars().take(400).collect::<String>()
    };
    let mut found = Vec::new();
    for needle in needles {
        assert!(
            needle.value.len() >= 8,
            "{} is too short to search for",
            needle.what
        );
        for line in haystack.lines().filter(|l| l.contains(&needle.value)) {
            found.push(format!("{}: {}", needle.what, mask(line)));
        }
    }
    assert!(
        found.is_empty(),
        "secrets in {place}:\n{}",
        found.join("\n")
    );
}
