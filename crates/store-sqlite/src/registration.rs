//! Self-registered clients on SQLite (RFC 7591) and their management (RFC 7592). A registration row
//! hangs off its client with `ON DELETE CASCADE` (the pool enables foreign keys), so deleting the
//! client deletes the registration in the same statement.

use async_trait::async_trait;
use mandate_core::client::ClientSource;
use mandate_core::{Client, UnixTime};
use mandate_store::rows::RegistrationRow;
use mandate_store::{Registration, RegistrationStore, StoreResult};

use crate::{SqliteStore, bind_client};

#[async_trait]
impl RegistrationStore for SqliteStore {
    async fn register_client(&self, client: &Client, registration: &Registration) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        // A plain insert: a registration never replaces an existing client, config or dynamic.
        bind_client(sqlx::query(insert_client_sql!()), client, ClientSource::Dynamic, registration.created_at)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO client_registrations (client_id, access_token_hash, metadata_hash, created_at, last_used_at,
                                               metadata, software_publisher)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        // The caller gives both the same id; one naming no client fails the foreign key.
        .bind(&registration.client_id)
        .bind(&registration.access_token_hash)
        .bind(&registration.metadata_hash)
        .bind(registration.created_at)
        .bind(registration.last_used_at)
        .bind(&registration.metadata)
        .bind(&registration.software_publisher)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn get_registration(&self, client_id: &str) -> StoreResult<Option<Registration>> {
        Ok(sqlx::query_as::<_, RegistrationRow>(
            "SELECT client_id, access_token_hash, metadata_hash, created_at, last_used_at, metadata, software_publisher
             FROM client_registrations WHERE client_id = ?",
        )
        .bind(client_id)
        .fetch_optional(&self.pool)
        .await?
        .map(Registration::from))
    }

    async fn find_registration_by_metadata(&self, metadata_hash: &str) -> StoreResult<Option<Registration>> {
        Ok(sqlx::query_as::<_, RegistrationRow>(
            "SELECT r.client_id, r.access_token_hash, r.metadata_hash, r.created_at, r.last_used_at, r.metadata,
                    r.software_publisher
             FROM client_registrations r JOIN clients c ON c.client_id = r.client_id
             WHERE r.metadata_hash = ? AND NOT c.disabled
             ORDER BY r.created_at DESC, r.client_id DESC LIMIT 1",
        )
        .bind(metadata_hash)
        .fetch_optional(&self.pool)
        .await?
        .map(Registration::from))
    }

    async fn update_registered_client(
        &self,
        client: &Client,
        registration: &Registration,
        now: UnixTime,
    ) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await?;
        // Only a client that is still self-registered: one the configuration took over stays as configured.
        let updated = sqlx::query(
            "UPDATE client_registrations SET metadata = ?, metadata_hash = ?, software_publisher = ?
             WHERE client_id = ?
             AND client_id IN (SELECT client_id FROM clients WHERE source = ?)",
        )
        .bind(&registration.metadata)
        .bind(&registration.metadata_hash)
        .bind(&registration.software_publisher)
        .bind(&client.client_id)
        .bind(ClientSource::Dynamic.as_str())
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() != 1 {
            return Ok(false);
        }
        bind_client(sqlx::query(upsert_client_sql!()), client, ClientSource::Dynamic, now).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn delete_registered_client(&self, client_id: &str) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM clients WHERE client_id = ? AND source = ?")
            .bind(client_id)
            .bind(ClientSource::Dynamic.as_str())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn touch_registration(&self, client_id: &str, now: UnixTime) -> StoreResult<()> {
        // Only forward: an instance with a slower clock cannot make a client look unused.
        sqlx::query("UPDATE client_registrations SET last_used_at = ? WHERE client_id = ? AND last_used_at < ?")
            .bind(now)
            .bind(client_id)
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn purge_unused_registrations(&self, before: UnixTime) -> StoreResult<u64> {
        // Cascaded deletes are not counted in `rows_affected`: the count is of clients.
        let done = sqlx::query(
            "DELETE FROM clients WHERE source = ?
             AND client_id IN (SELECT client_id FROM client_registrations WHERE last_used_at < ?)",
        )
        .bind(ClientSource::Dynamic.as_str())
        .bind(before)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }
}
