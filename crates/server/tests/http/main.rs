//! The authorization server over real HTTP on loopback, every test on SQLite and on PostgreSQL.

mod common;

mod agent_sdk;
mod attestation;
mod authorize;
mod code_flow;
mod discovery;
mod example_mcp_server;
mod gateway;
mod hostile_input;
mod identity_assertion;
mod introspection;
mod lineage;
mod metadata_documents;
mod operations;
mod pages;
mod persistence;
mod private_key_jwt;
mod pushed_registration;
mod refresh;
mod registration;
mod registration_management;
mod resource_server;
mod rmcp_client;
mod throttles;
mod token;
mod token_exchange;
