//! The store contract (`cases`), run against every backend by `suite`, and what each backend
//! adds beyond it.

mod cases;
mod dynamodb;
mod file;
mod suite;
