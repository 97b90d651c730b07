//! Capturing everything that is logged on this thread, at every level, as the text an operator
//! would read: the broker's own lines, the simulator's, and the TRACE output of hyper, reqwest
//! and sqlx underneath.

use std::future::Future;
use std::io;
use std::sync::{Arc, Mutex};

use tracing::Level;
use tracing::subscriber::DefaultGuard;

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

impl Capture {
    /// Route this thread's tracing, TRACE and up, into the buffer until the guard drops. Run
    /// async code on a current-thread runtime so every task logs on this thread.
    pub fn install(&self) -> DefaultGuard {
        let buffer = self.0.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(Level::TRACE)
            .with_ansi(false)
            .with_writer(move || Sink(buffer.clone()))
            .finish();
        tracing::subscriber::set_default(subscriber)
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
