//! End-to-end tests: real HTTP (reqwest) against an in-process emulator.

mod admin;
mod cli;
mod common;
mod deployments;
mod domains;
mod env;
mod limits;
mod projects;
