//! Text rendering of plans, drift, progress and summaries. Every value passes through
//! `redact`, so secrets show as `[secret]` and unknowns as `(known after apply)`.

use std::fmt::Write;

use serde_json::Value;
use stackwright_core::value::redact;
use stackwright_core::{ChangeKind, PropertyChange};

use crate::engine::UpReport;
use crate::events::Event;
use crate::plan::{Plan, StepOp};
use crate::refresh::Drift;

pub use crate::format::duration;

/// A value for display, secrets and unknowns replaced.
pub fn value(v: &Value) -> String {
    match redact(v) {
        Value::String(s)
            if s == stackwright_core::value::SECRET_PLACEHOLDER
                || s == stackwright_core::value::UNKNOWN_PLACEHOLDER =>
        {
            s
        }
        other => other.to_string(),
    }
}

fn change_line(out: &mut String, c: &PropertyChange) {
    let note = if c.replaces { "  (forces replacement)" } else { "" };
    let _ = match c.kind {
        ChangeKind::Add => writeln!(out, "      + {}: {}{note}", c.path, value(c.new.as_ref().unwrap_or(&Value::Null))),
        ChangeKind::Delete => {
            writeln!(out, "      - {}: {}{note}", c.path, value(c.old.as_ref().unwrap_or(&Value::Null)))
        }
        ChangeKind::Update => writeln!(
            out,
            "      ~ {}: {} → {}{note}",
            c.path,
            value(c.old.as_ref().unwrap_or(&Value::Null)),
            value(c.new.as_ref().unwrap_or(&Value::Null))
        ),
    };
}

fn symbol(op: StepOp) -> (&'static str, &'static str) {
    match op {
        StepOp::Same => (" ", "same"),
        StepOp::Create => ("+", "create"),
        StepOp::Update => ("~", "update"),
        StepOp::Replace { delete_before_create: false } => ("+-", "replace"),
        StepOp::Replace { delete_before_create: true } => ("-+", "replace (delete first)"),
        StepOp::Delete => ("-", "delete"),
        StepOp::DeleteReplaced => ("-", "delete replaced"),
    }
}

/// Drift found by a refresh.
pub fn drift(drift: &[Drift]) -> String {
    let mut out = String::new();
    if drift.is_empty() {
        return out;
    }
    let _ = writeln!(out, "Changed outside the program:");
    for d in drift {
        if d.gone {
            let _ = writeln!(out, "  ! {} ({}) no longer exists", d.urn, d.type_token);
        } else {
            let _ = writeln!(out, "  ! {} ({})", d.urn, d.type_token);
            d.changes.iter().for_each(|c| change_line(&mut out, c));
        }
    }
    out.push('\n');
    out
}

/// A plan, with property-level diffs for every change.
pub fn plan(plan: &Plan) -> String {
    let mut out = String::new();
    for step in plan.steps.iter().filter(|s| s.op.is_change() || s.renamed_from.is_some()) {
        let (sym, word) = symbol(step.op);
        let word = match (&step.renamed_from, step.op) {
            (Some(from), StepOp::Same) => format!("rename from `{from}`"),
            (Some(from), _) => format!("{word}, renamed from `{from}`"),
            _ => word.to_string(),
        };
        let _ = writeln!(out, "  {sym:<2} {} ({}) {word}", step.urn, step.type_token);
        if let Some(reason) = &step.reason {
            let _ = writeln!(out, "      because {reason}");
        }
        step.changes.iter().for_each(|c| change_line(&mut out, c));
    }
    let c = plan.counts();
    let _ = writeln!(
        out,
        "Plan: {} to create, {} to update, {} to replace, {} to delete, {} unchanged.",
        c.create, c.update, c.replace, c.delete, c.same
    );
    out
}

/// One progress line for an event, or `None` for events not worth a line.
pub fn event(e: &Event) -> Option<String> {
    match e {
        Event::StepStarted { .. } => None,
        Event::StepFinished { urn, op, elapsed } => {
            let (sym, _) = symbol(*op);
            let done = match op {
                StepOp::Create => "created",
                StepOp::Update => "updated",
                StepOp::Replace { .. } => "replaced",
                StepOp::Delete | StepOp::DeleteReplaced => "deleted",
                StepOp::Same => "unchanged",
            };
            Some(format!("  {sym:<2} {urn}: {done} ({})", duration(*elapsed)))
        }
        Event::StepFailed { urn, message, .. } => Some(format!("  ✗  {urn}: {message}")),
        Event::Retrying { urn, call, delay, message } => {
            Some(format!("  …  {urn}: {call} will be retried in {}: {message}", duration(*delay)))
        }
        Event::Reconciled { urn, message } => Some(format!("  ↺  {urn}: {message}")),
        Event::PolicyWarning { violation } => Some(format!("  warning: {violation}")),
    }
}

/// The end-of-run summary, listing every failure.
pub fn summary(report: &UpReport, verb: &str) -> String {
    let mut out = String::new();
    let status = if report.interrupted {
        "was interrupted"
    } else if report.failures.is_empty() {
        "succeeded"
    } else {
        "failed"
    };
    let _ = writeln!(out, "\n{verb} {status}: {} change(s) applied in {}.", report.changed, duration(report.elapsed));
    if !report.failures.is_empty() {
        let _ = writeln!(out, "{} resource(s) did not finish:", report.failures.len());
        for f in &report.failures {
            for d in f.diagnostics() {
                let _ = writeln!(out, "  ✗ {d}");
            }
        }
    }
    out
}
