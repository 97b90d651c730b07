//! What the broker logs from a request is the sender's text, of the sender's size: a 30 KB path
//! would make a 30 KB log line on every rejected request. [`Clipped`] prints at most
//! [`LOG_TEXT_LIMIT`] bytes of it (cut at a character boundary, with a marker saying how much
//! was left out), escaped so that a line break cannot start a forged log line. It formats
//! straight into the log line: nothing is allocated for the text it leaves out.

use std::fmt;

/// The most bytes of one request-supplied value a log line carries.
pub const LOG_TEXT_LIMIT: usize = 256;

/// Displays a value escaped as `str::escape_debug` does, in at most [`LOG_TEXT_LIMIT`] bytes
/// of output (whole characters) plus a marker naming how many bytes of the value were left out.
#[derive(Clone, Copy)]
pub struct Clipped<'a>(pub &'a str);

impl fmt::Display for Clipped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut written = 0;
        for (at, c) in self.0.char_indices() {
            let escaped = c.escape_debug();
            let len: usize = escaped.clone().map(char::len_utf8).sum();
            if written + len > LOG_TEXT_LIMIT {
                return write!(f, "…[{} more bytes]", self.0.len() - at);
            }
            written += len;
            fmt::Display::fmt(&escaped, f)?;
        }
        Ok(())
    }
}

impl fmt::Debug for Clipped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{self}\"")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_values_are_kept_whole_and_escaped() {
        assert_eq!(Clipped("/v2/catalog").to_string(), "/v2/catalog");
        assert_eq!(Clipped("a\nb\"c").to_string(), "a\\nb\\\"c");
        assert_eq!(format!("{:?}", Clipped("x")), "\"x\"");
        assert_eq!(Clipped(&"a".repeat(LOG_TEXT_LIMIT)).to_string().len(), 256);
    }

    #[test]
    fn long_values_are_cut_at_a_char_boundary_with_a_marker() {
        let long = "/".to_owned() + &"é".repeat(20_000);
        let shown = Clipped(&long).to_string();
        assert!(shown.len() < LOG_TEXT_LIMIT + 40, "{}", shown.len());
        let (kept, marker) = shown.split_once('…').unwrap();
        assert!(kept.len() <= LOG_TEXT_LIMIT && long.starts_with(kept));
        assert_eq!(marker, format!("[{} more bytes]", long.len() - kept.len()));
        // Escapes count towards the limit: control characters cannot inflate a line.
        let controls = "\u{1}".repeat(10_000);
        let shown = Clipped(&controls).to_string();
        assert!(shown.len() < LOG_TEXT_LIMIT + 40, "{}", shown.len());
        assert!(shown.starts_with("\\u{1}") && shown.ends_with("more bytes]"));
    }
}
