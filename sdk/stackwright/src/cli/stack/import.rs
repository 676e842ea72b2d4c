//! `stack import`: replaces a stack's state with a validated export.

use std::path::PathBuf;
use std::process::ExitCode;

use stackwright_state::Backend;

use anyhow::Context;

use crate::cli::context::Context_;

/// Replaces a stack's state with a validated export.
pub(super) async fn run(ctx: &Context_, flag: &Option<String>, file: PathBuf) -> anyhow::Result<ExitCode> {
    let opened = ctx.open(flag).await?;
    let bytes = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
    // Validate everything (format, version, checksum, stack, secrets) before writing.
    let imported = stackwright_state::snapshot::decode(&file, &opened.name, &bytes, opened.cipher.as_deref())?;
    let lock = opened.backend.lock(&opened.name, stackwright_state::LockInfo::current("stack import")).await?;
    let current = opened.backend.load(&opened.name).await?;
    let mut next = imported;
    next.serial = current.map(|c| c.serial).unwrap_or(0).max(next.serial);
    opened.backend.write_snapshot(&next, lock.token()).await?;
    println!("Imported {} resource(s) into stack `{}` from {}.", next.resources.len(), opened.name, file.display());
    Ok(ExitCode::SUCCESS)
}
