//! The authorization server over real HTTP on loopback, every test on SQLite and on PostgreSQL.

mod common;

mod authorize;
mod code_flow;
mod discovery;
mod introspection;
mod operations;
mod pages;
mod persistence;
mod refresh;
mod token;
