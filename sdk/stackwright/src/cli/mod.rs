//! The command line every Stackwright program gets from `stackwright::run`: preview, up,
//! destroy, refresh, stack and state management, outputs and the dependency graph. One module
//! per command; `context` opens stacks and `ui` holds the terminal interaction they share.

mod args;
mod config;
mod context;
mod graph;
mod import;
mod output;
mod panics;
mod preview;
mod refresh;
mod stack;
mod state;
mod ui;
mod up;

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;

use crate::stack::{Program, Stack};

use args::{Cli, Command};
use context::Context_;

async fn dispatch(cli: Cli, program: Program) -> anyhow::Result<ExitCode> {
    let ctx = Context_::new(cli.project_dir.clone(), cli.state_dir.clone());
    // Finish a stack rename or passphrase change that a crash interrupted, before reading any
    // configuration or state it changes.
    ctx.backend.recover()?;
    let flag = &cli.stack;
    let program = panics::catching(program);
    match cli.command {
        Command::Preview(args) => preview::run(&ctx, flag, &program, args).await,
        Command::Up(args) => up::up(&ctx, flag, &program, args).await,
        Command::Destroy(args) => up::destroy(&ctx, flag, &program, args).await,
        Command::Refresh(args) => refresh::run(&ctx, flag, &program, args).await,
        Command::Stack(command) => stack::run(&ctx, flag, &program, command).await,
        Command::State(command) => state::run(&ctx, flag, command).await,
        Command::Output(args) => output::run(&ctx, flag, args).await,
        Command::Config(command) => config::run(&ctx, flag, command).await,
        Command::Import(args) => import::run(&ctx, flag, &program, args).await,
        Command::Graph(args) => graph::run(&ctx, flag, &program, args).await,
    }
}

/// Runs a Stackwright program as a command-line tool. Call it from `main`:
///
/// ```no_run
/// fn main() -> std::process::ExitCode {
///     stackwright::run(|stack| {
///         stack.resource::<stackwright::Data>("greeting", stackwright::DataArgs::new(serde_json::json!("hello")));
///         Ok(())
///     })
/// }
/// ```
pub fn run<F>(program: F) -> ExitCode
where
    F: Fn(&mut Stack) -> anyhow::Result<()> + Send + Sync + 'static,
{
    run_with_args(std::env::args_os(), Arc::new(program))
}

/// Like [`run`], with explicit arguments (the first is the program name).
pub fn run_with_args<I, T>(args: I, program: Program) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { ExitCode::from(1) } else { ExitCode::SUCCESS };
        }
    };
    crate::panics::install_hook();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("STACKWRIGHT_LOG"))
        .with_writer(std::io::stderr)
        .try_init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: could not start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dispatch(cli, program)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
