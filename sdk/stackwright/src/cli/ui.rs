//! Terminal interaction shared by the commands: confirmation, Ctrl-C, event lines, summaries
//! and how values are shown.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;

use tokio::sync::watch;

use crate::events::Event;
use crate::plan::Plan;
use crate::refresh::Drift;
use crate::render;

/// Prints the drift and the plan, then asks before applying changes (unless `--yes`).
pub(super) fn confirm(yes: bool, verb: &str) -> impl Fn(&Plan, &[Drift]) -> bool + Sync {
    let verb = verb.to_owned();
    move |plan: &Plan, drift: &[Drift]| {
        print!("{}", render::drift(drift));
        print!("{}", render::plan(plan));
        if yes || !plan.has_changes() {
            return true;
        }
        if !std::io::stdin().is_terminal() {
            eprintln!("error: refusing to {verb} without confirmation; pass --yes to apply non-interactively");
            return false;
        }
        print!("Do you want to {verb}? [y/N] ");
        let _ = std::io::stdout().flush();
        let mut line = String::new();
        let _ = std::io::stdin().lock().read_line(&mut line);
        matches!(line.trim(), "y" | "Y" | "yes")
    }
}

/// The first Ctrl-C lets running steps finish; the second exits at once.
pub(super) fn interrupt_on_ctrl_c() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    // One listener for both presses, registered before this returns: with a new listener per
    // press, a second Ctrl-C arriving before the second one was registered would be lost.
    let Ok(mut presses) = ctrl_c_listener() else { return rx };
    tokio::spawn(async move {
        if presses.recv().await.is_some() {
            eprintln!(
                "\nInterrupted: no new steps will start; waiting for running steps to finish. Press Ctrl-C again to stop at once."
            );
            let _ = tx.send(true);
            if presses.recv().await.is_some() {
                // Every started call has a durable pending record; the next run reconciles it.
                eprintln!(
                    "Stopped. Operations in flight are recorded as pending and will be reconciled by the next run."
                );
                std::process::exit(130);
            }
        }
    });
    rx
}

#[cfg(unix)]
fn ctrl_c_listener() -> std::io::Result<tokio::signal::unix::Signal> {
    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
}

#[cfg(windows)]
fn ctrl_c_listener() -> std::io::Result<tokio::signal::windows::CtrlC> {
    tokio::signal::windows::ctrl_c()
}

/// Prints engine events as lines.
pub(super) fn printer() -> crate::events::Observer {
    Arc::new(|e: &Event| {
        if let Some(line) = render::event(e) {
            println!("{line}");
        }
    })
}

/// Prints the summary of an `up` or `destroy` and picks the exit code.
pub(super) fn finish(report: crate::engine::UpReport, verb: &str) -> anyhow::Result<ExitCode> {
    if report.declined {
        println!("{verb} cancelled; nothing was changed.");
        return Ok(ExitCode::FAILURE);
    }
    print!("{}", render::summary(&report, verb));
    Ok(if report.interrupted {
        ExitCode::from(130)
    } else if report.failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// A value for output: revealed with `--show-secrets`, else with secrets as `[secret]`.
pub(super) fn shown(v: &serde_json::Value, show_secrets: bool) -> serde_json::Value {
    if show_secrets { stackwright_core::value::reveal(v.clone()).0 } else { stackwright_core::value::redact(v) }
}

/// Any serialisable report as JSON, with secrets as `[secret]`.
pub(super) fn redacted_json<T: serde::Serialize>(value: &T) -> anyhow::Result<serde_json::Value> {
    Ok(stackwright_core::value::redact(&serde_json::to_value(value)?))
}
