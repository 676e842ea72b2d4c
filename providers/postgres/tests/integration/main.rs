//! Integration tests of the PostgreSQL provider against a real server, driven through the
//! engine end to end (local state in a temporary directory) and checked in the catalogs.
//! Every test uses names of its own, so they run in parallel.

mod common;

mod conflicts;
mod database;
mod default_privileges;
mod errors;
mod extension;
mod grant;
mod import;
mod migrations;
mod role;
mod schema;
mod wiring;
