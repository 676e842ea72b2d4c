//! `stack pending ls|resolve`: the operations of interrupted runs whose outcome is not known yet,
//! and how a user settles a create the provider cannot recognise (like Pulumi's pending
//! operations, without editing state files by hand).

use std::process::ExitCode;

use crate::cli::args::PendingCommand;
use crate::cli::context::Context_;
use crate::engine::Resolution;
use crate::stack::Program;

/// Runs `stack pending ls` or `stack pending resolve`.
pub(super) async fn run(
    ctx: &Context_,
    flag: &Option<String>,
    program: &Program,
    command: PendingCommand,
) -> anyhow::Result<ExitCode> {
    match command {
        PendingCommand::Ls { json } => {
            let opened = ctx.open_read_only(flag).await?;
            let pending = ctx.engine(&opened, 1, "stack pending ls", false).pending(&opened.name).await?;
            if json {
                let rows: Vec<serde_json::Value> = pending
                    .iter()
                    .map(|(op, p)| {
                        serde_json::json!({
                            "operation": op,
                            "resource": p.urn,
                            "type": p.type_token,
                            "provider": p.provider,
                            "kind": p.kind,
                            "id": p.id,
                            "started_at": p.started_at,
                        })
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else if pending.is_empty() {
                println!("Stack `{}` has no pending operations.", opened.name);
            } else {
                for (op, p) in &pending {
                    let id = p.id.as_deref().map(|id| format!(" of object {id}")).unwrap_or_default();
                    println!(
                        "{}  {:?}{id} of `{}` ({}, provider `{}`), started {}",
                        op, p.kind, p.urn, p.type_token, p.provider, p.started_at
                    );
                }
                println!(
                    "\nThe next `up` settles these when the provider can tell what happened; for a create it cannot \
                     recognise, run `stack pending resolve NAME --created ID` or `--absent`."
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        PendingCommand::Resolve { name, created, absent } => {
            let resolution = match (created, absent) {
                (Some(id), false) => Resolution::Created { id },
                _ => Resolution::Absent,
            };
            let opened = ctx.open(flag).await?;
            let stack = opened.name.clone();
            let done = ctx
                .engine(&opened, 1, "stack pending resolve", false)
                .resolve_pending(&stack, program, &name, resolution)
                .await?;
            println!("Stack `{stack}`: {done}.");
            Ok(ExitCode::SUCCESS)
        }
    }
}
