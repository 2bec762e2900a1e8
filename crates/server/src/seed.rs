//! Config as code: `[[users]]`, `[[resources]]` and `[[clients]]` written to the database at
//! start. Idempotent: an unchanged file writes nothing; an edited entry is updated; a client
//! removed from the file is disabled (kept for the audit trail), and enabled again if it returns.

use mandate_core::client::ClientSource;
use mandate_core::password::{hash_password, verify_password};
use mandate_core::{Clock, Random, User};
use mandate_store::{Store, StoreResult};

use crate::config::Settings;

#[derive(Debug, Default, PartialEq, Eq)]
pub struct SeedReport {
    pub created: Vec<String>,
    pub updated: Vec<String>,
    pub disabled: Vec<String>,
}

pub async fn seed(
    store: &dyn Store,
    settings: &Settings,
    clock: &dyn Clock,
    rng: &dyn Random,
) -> StoreResult<SeedReport> {
    let now = clock.now();
    let mut report = SeedReport::default();

    for r in &settings.resources {
        match store.get_resource(&r.uri).await? {
            Some(existing) if existing == *r => {}
            existing => {
                store.put_resource(r, now).await?;
                let list = if existing.is_some() { &mut report.updated } else { &mut report.created };
                list.push(format!("resource {}", r.uri));
            }
        }
    }

    for c in &settings.clients {
        match store.get_client(&c.client_id).await? {
            Some(existing) if existing == *c => {}
            existing => {
                store.put_client(c, ClientSource::Config, now).await?;
                if existing.as_ref().is_some_and(|e| e.redirect_uris != c.redirect_uris) {
                    // Nothing a person decided for the old redirect URIs may reach the new ones.
                    store.forget_client_authorizations(&c.client_id).await?;
                }
                let list = if existing.is_some() { &mut report.updated } else { &mut report.created };
                list.push(format!("client {}", c.client_id));
            }
        }
    }
    for id in store.list_client_ids(ClientSource::Config).await? {
        if !settings.clients.iter().any(|c| c.client_id == id) {
            let existing = store.get_client(&id).await?;
            if existing.is_some_and(|c| !c.disabled) {
                store.set_client_disabled(&id, true, now).await?;
                report.disabled.push(format!("client {id}"));
            }
        }
    }

    for u in &settings.users {
        let existing = store.get_user(&u.username).await?;
        // A plaintext password is rehashed only when the stored hash no longer matches it, so an
        // unchanged file leaves the row untouched.
        let password_hash = match (&u.password_hash, &u.password, &existing) {
            (Some(h), _, _) => h.clone(),
            (None, Some(p), Some(e)) if verify_password_blocking(p, &e.password_hash).await => e.password_hash.clone(),
            (None, Some(p), _) => hash_password(p, rng),
            (None, None, _) => unreachable!("config check requires password or password_hash"),
        };
        let user = User { username: u.username.clone(), password_hash, email: u.email.clone(), disabled: u.disabled };
        if existing.as_ref() != Some(&user) {
            store.put_user(&user, now).await?;
            let list = if existing.is_some() { &mut report.updated } else { &mut report.created };
            list.push(format!("user {}", u.username));
        }
    }
    Ok(report)
}

async fn verify_password_blocking(password: &str, hash: &str) -> bool {
    let (p, h) = (password.to_owned(), hash.to_owned());
    tokio::task::spawn_blocking(move || verify_password(&p, &h)).await.unwrap_or(false)
}
