//! What the broker logs: never a secret (on the local server, on Lambda, in `Debug`, when
//! things fail), an audit trail that cannot be forged, and lines bounded whatever the request.

mod audit;
mod clipped;
mod debug;
mod failures;
mod lambda;
mod secrets;
