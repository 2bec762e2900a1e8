//! Fresh PostgreSQL databases for tests: each test gets its own, named `mandate_t_<random>`, so
//! runs never see each other's rows. The test script drops leftovers before each run.

use std::str::FromStr as _;

use sqlx::ConnectOptions as _;
use sqlx::Connection as _;
use sqlx::postgres::PgConnectOptions;

/// The server tests use: `PG_TEST_URL`, or the local trust-auth server.
pub fn admin_url() -> String {
    std::env::var("PG_TEST_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// Creates an empty database and returns its URL. Panics with a clear message when PostgreSQL is
/// not reachable: the PostgreSQL run is mandatory, not skipped.
pub async fn fresh_database() -> String {
    let admin = admin_url();
    let options = PgConnectOptions::from_str(&admin).expect("PG_TEST_URL is not a postgres:// URL");
    let mut conn = options.connect().await.unwrap_or_else(|e| {
        panic!("PostgreSQL is required for the tests but {admin} is unreachable ({e}); start it or set PG_TEST_URL")
    });
    let mut bytes = [0u8; 8];
    aws_lc_rs::rand::fill(&mut bytes).expect("system random");
    let name = format!("mandate_t_{}", bytes.iter().map(|b| format!("{b:02x}")).collect::<String>());
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("CREATE DATABASE");
    conn.close().await.ok();
    let (base, _) = admin.rsplit_once('/').expect("admin URL has a database path");
    format!("{base}/{name}")
}
