//! Integration tests of the Vercel provider against the in-process emulator, through the real
//! engine: lifecycle of every resource, drift, import, rate limits, faults, read lag, crash
//! recovery, build failures and secret hygiene.

mod common;
mod deployment;
mod domain;
mod env;
mod import;
mod project;
mod resilience;
mod secrets;
