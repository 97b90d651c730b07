//! Races and crashes: several broker processes on one DynamoDB table (moto), requests in a
//! forced order, kill -9 between steps, SAKURA Cloud faults, the cost of each request in store
//! calls, and the shared SAKURA budget under a small provisioning storm.

mod bind;
mod chaos;
mod cost;
mod dedicated;
mod faults;
mod finish;
mod pools;
mod provision;
mod storm;
mod takeover;
mod tombstone;
