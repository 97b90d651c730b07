//! The catalog: the services and plans this broker offers, their parameter schemas, the
//! `/v2/catalog` body per API version, plan lookup (OSB plan -> SAKURA plan id) and parameter
//! validation for provision, update and bind.

mod version;

pub use version::ApiVersion;
