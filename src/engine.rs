//! The database engines the broker offers: a word of the domain, shared by the catalog, the
//! binder and the broker, none of which needs the SAKURA client to name it. How SAKURA Cloud
//! writes each engine on the wire (`Engine::wire_name`, `Engine::from_wire`) stays with the
//! client in `sacloud::model`, which also re-exports the type.

/// A database engine. Serialised with the names SAKURA Cloud uses (`MariaDB`, `postgres`), as
/// the simulator's control API shows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Engine {
    #[serde(rename = "MariaDB")]
    MariaDb,
    #[serde(rename = "postgres")]
    Postgres,
}

impl Engine {
    /// The port the engine listens on unless told otherwise.
    pub fn default_port(self) -> u16 {
        match self {
            Engine::MariaDb => 3306,
            Engine::Postgres => 5432,
        }
    }
}
