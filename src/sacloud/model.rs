//! Wire and domain types of the database appliance API.

/// The database engine of an appliance (`Remark.DBConf.Common.DatabaseName`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Engine {
    #[serde(rename = "MariaDB")]
    MariaDb,
    #[serde(rename = "postgres")]
    Postgres,
}

impl Engine {
    /// The name SAKURA Cloud uses on the wire: `MariaDB` or `postgres` (case matters).
    pub fn wire_name(self) -> &'static str {
        match self {
            Engine::MariaDb => "MariaDB",
            Engine::Postgres => "postgres",
        }
    }

    pub fn default_port(self) -> u16 {
        match self {
            Engine::MariaDb => 3306,
            Engine::Postgres => 5432,
        }
    }
}
