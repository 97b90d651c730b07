//! Hostile input, mostly generated (proptest): paths, queries, headers, bodies, sequences and
//! the windows between steps; every answer is a 2xx or a 4xx with an OSB error body. Also the
//! local server's limits over real sockets. `HOSTILE_SCALE` multiplies the generated cases.

mod bodies;
mod body_generators;
mod cases;
pub mod generators;
mod headers;
mod paths;
mod queries;
mod sequences;
mod server_limits;
mod states;
