//! The one integration-test binary; each module is one capability.

mod store_cases;
mod store_dynamodb;
mod store_file;
mod store_suite;
mod support_moto;
