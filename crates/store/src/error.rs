//! Storage errors, split by what the caller can do about them.

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached or is overloaded; the request may be retried (503).
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A row does not decode into a domain value: a bug or a hand-edited database.
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Database(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) | sqlx::Error::Tls(_) => {
                Self::Unavailable(e.to_string())
            }
            sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) | sqlx::Error::ColumnNotFound(_) => {
                Self::Corrupt(e.to_string())
            }
            // A server going away or coming back: connection exceptions (08), operator
            // intervention such as a shutdown or restart (57), insufficient resources (53).
            sqlx::Error::Database(ref db) if db.code().is_some_and(|c| is_transient_sqlstate(&c)) => {
                Self::Unavailable(e.to_string())
            }
            other => Self::Database(other.to_string()),
        }
    }
}

/// SQLSTATE classes after which the same request may succeed once the server is back.
fn is_transient_sqlstate(code: &str) -> bool {
    matches!(code.get(..2), Some("08" | "53" | "57"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn restarts_and_lost_connections_are_transient() {
        for code in ["57P01", "57P03", "08006", "53300"] {
            assert!(super::is_transient_sqlstate(code), "{code}");
        }
        for code in ["23505", "42P01", "40001", ""] {
            assert!(!super::is_transient_sqlstate(code), "{code}");
        }
    }
}
