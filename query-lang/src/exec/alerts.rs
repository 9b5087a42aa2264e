//! What SHOW RULES and SHOW ALERTS read: the alert rules and alerts of the server running
//! the query. The query language knows nothing of alerting; tallyd passes an
//! [`AlertCatalog`] in [`QueryOptions`](super::QueryOptions), and without one the statements
//! answer an error saying so.

use super::value::Value;

/// A table of rows, as SHOW RULES and SHOW ALERTS return it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CatalogTable {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Value>>,
}

/// The alert rules and alerts of a server.
pub trait AlertCatalog: Send + Sync + std::fmt::Debug {
    /// One row per rule.
    fn rules(&self) -> CatalogTable;
    /// One row per pending, firing or recently resolved alert.
    fn alerts(&self) -> CatalogTable;
}
