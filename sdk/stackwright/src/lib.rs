//! Stackwright: infrastructure as code in Rust. A program declares typed resources on a
//! [`Stack`]; [`run`] gives it a command line that previews and applies the changes with a
//! parallel, journaled engine.

pub mod builtin;
mod cli;
pub mod config;
pub mod diagnostic;
pub mod engine;
pub mod error;
pub mod events;
mod executor;
pub mod failure;
mod format;
pub mod graph;
mod journal_writer;
pub mod options;
mod panics;
pub mod plan;
mod planner;
pub mod policy;
mod refresh;
pub mod render;
mod retry;
mod runner;
pub mod saved_plan;
pub mod scheduler;
pub mod settings;
pub mod stack;
pub mod state_edit;
pub mod testing;

pub use builtin::data::{Data, DataArgs, DataOutputs};
pub use cli::{run, run_with_args};
pub use config::{Config, ConfigError};
pub use diagnostic::{Diagnostic, Severity};
pub use engine::{Engine, PreviewOptions, PreviewReport, Resolution, UpOptions, UpReport};
pub use error::{DeclarationError, EngineError, UncertainOperation};
pub use failure::{Failure, FailureReason, StepError};
pub use options::{ResourceOptions, Timeouts};
pub use plan::{Plan, PlannedStep, StepOp};
pub use policy::{Enforcement, PolicyContext, StepView, Violation};
pub use refresh::Drift;
pub use settings::{RetryPolicy, Settings};
pub use stack::{Program, Stack};
pub use stackwright_core as core;
pub use stackwright_core::{Input, Output, Provider, Resource, ResourceRef, Urn, all, zip};
pub use stackwright_state as state;
