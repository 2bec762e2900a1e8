//! mandate-server: the authorization server. An axum router with one module per endpoint and one
//! handler per grant type; storage only through the `mandate-store` traits.

pub mod app;
pub mod audit;
pub mod authorization;
pub mod client_address;
pub mod client_auth;
pub mod clients;
pub mod config;
pub mod endpoints;
pub mod error;
pub mod form;
pub mod grants;
pub mod issuer;
pub mod keyring;
pub mod lineage;
pub mod lookups;
pub mod minting;
pub mod seed;
pub mod state;
pub mod trusted;
pub mod web;

pub use app::{Parts, Running, StartError, prepare, router, serve, start};
pub use config::Settings;
pub use state::AppState;
