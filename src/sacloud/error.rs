//! The one error type of the SAKURA Cloud client: either the API said no (with its own error JSON),
//! or we could not reach it, or we reached it and could not make sense of the answer.

/// Why a SAKURA Cloud API call did not succeed. `Display` never includes a token or a password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The API answered with a non-success status. `code`, `message` and `serial` come from its
    /// error JSON (`error_code`, `error_msg`, `serial`); they are empty when the body was not one.
    #[error("SAKURA Cloud API answered {status} {code}: {message} (serial {serial})")]
    Api {
        status: u16,
        code: String,
        message: String,
        serial: String,
    },
    /// The API could not be reached, or did not answer in time, or dropped the connection.
    #[error("SAKURA Cloud API unreachable: {0}")]
    Transport(String),
    /// The API answered with a success status but a body we could not parse.
    #[error("SAKURA Cloud API answer not understood: {0}")]
    Parse(String),
    /// Not sent: the deployment's SAKURA request budget is used up for now.
    #[error("SAKURA Cloud request budget used up for now; not sent")]
    Throttled,
}

/// The error body the API sends with every non-success status.
#[derive(serde::Deserialize)]
struct ErrorBody {
    #[serde(default)]
    serial: String,
    #[serde(default)]
    error_code: String,
    #[serde(default)]
    error_msg: String,
}

impl Error {
    /// The resource does not exist (any 404).
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::Api { status: 404, .. })
    }

    /// 409 `still_creating`: the appliance is still being created; power calls must be retried later.
    pub fn is_still_creating(&self) -> bool {
        matches!(self, Error::Api { status: 409, code, .. } if code == "still_creating")
    }

    /// Any 409: still creating, already up, already down, stale `SettingsHash`...
    pub fn is_conflict(&self) -> bool {
        matches!(self, Error::Api { status: 409, .. })
    }

    /// Worth trying again later: 423 Locked, any 5xx, or a transport failure.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Api { status, .. } => *status == 423 || (500..=599).contains(status),
            Error::Transport(_) | Error::Throttled => true,
            Error::Parse(_) => false,
        }
    }

    /// The request was never sent (the budget held it back): nothing can have happened.
    pub fn is_throttled(&self) -> bool {
        matches!(self, Error::Throttled)
    }

    /// Build the error for a non-success answer from its status and body.
    pub(crate) fn from_response(status: u16, body: &[u8]) -> Error {
        match serde_json::from_slice::<ErrorBody>(body) {
            Ok(b) => Error::Api {
                status,
                code: b.error_code,
                message: b.error_msg,
                serial: b.serial,
            },
            // A proxy or load balancer page: keep a short, printable excerpt for the log.
            Err(_) => Error::Api {
                status,
                code: String::new(),
                message: excerpt(body),
                serial: String::new(),
            },
        }
    }

    /// A call that got no answer: connection refused or dropped, TLS refused. Described by its
    /// kind and the error's whole source chain (the client's own message is often just "client
    /// error (Connect)"). The URL and the request's headers are never part of it.
    pub(crate) fn transport(err: &hyper_util::client::legacy::Error) -> Error {
        let kind = if err.is_connect() {
            "could not connect"
        } else {
            "request failed"
        };
        Error::Transport(with_sources(kind, err))
    }

    /// An answer whose body broke off before its end.
    pub(crate) fn broken_body(err: &(dyn std::error::Error + 'static)) -> Error {
        Error::Transport(with_sources("broken response body", err))
    }
}

/// `kind: error: source: source...`.
fn with_sources(kind: &str, err: &(dyn std::error::Error + 'static)) -> String {
    let mut msg = format!("{kind}: {err}");
    let mut source = err.source();
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    msg
}

/// At most 200 printable characters of a body, for messages.
fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut out: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(200)
        .collect();
    if text.chars().count() > 200 {
        out.push('…');
    }
    out.trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_real_error_json() {
        let body = br#"{"is_fatal":true,"serial":"abc123","status":"409 Conflict","error_code":"still_creating","error_msg":"still creating"}"#;
        let e = Error::from_response(409, body);
        assert!(e.is_still_creating() && e.is_conflict() && !e.is_transient());
        assert_eq!(
            e.to_string(),
            "SAKURA Cloud API answered 409 still_creating: still creating (serial abc123)"
        );
    }

    #[test]
    fn classifies_statuses() {
        assert!(Error::from_response(404, b"{}").is_not_found());
        assert!(Error::from_response(423, b"").is_transient());
        assert!(Error::from_response(503, b"<html>busy</html>").is_transient());
        assert!(Error::from_response(500, b"").is_transient());
        assert!(!Error::from_response(400, b"").is_transient());
        assert!(Error::Transport("x".into()).is_transient());
        assert!(!Error::Parse("x".into()).is_transient());
        let conflict = Error::from_response(409, br#"{"error_code":"conflict"}"#);
        assert!(conflict.is_conflict() && !conflict.is_still_creating());
    }

    #[test]
    fn keeps_an_excerpt_of_a_non_json_body() {
        let e = Error::from_response(502, b"<html>\nBad gateway</html>");
        assert!(
            matches!(e, Error::Api { ref message, .. } if message == "<html> Bad gateway</html>")
        );
    }
}
