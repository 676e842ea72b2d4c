//! `stack export`: writes a stack's state as an export.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use stackwright_state::{Backend, StackState};

use crate::cli::context::Context_;

/// Writes a stack's state as an export.
pub(super) async fn run(ctx: &Context_, flag: &Option<String>, file: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let opened = ctx.open_read_only(flag).await?;
    let state = opened.backend.load(&opened.name).await?.unwrap_or_else(|| StackState::new(&opened.name));
    let bytes = stackwright_state::snapshot::encode(&state, opened.cipher.as_deref())?;
    match file {
        Some(path) => {
            std::fs::write(&path, &bytes).with_context(|| format!("writing {}", path.display()))?;
            println!("Exported stack `{}` ({} resources) to {}.", opened.name, state.resources.len(), path.display());
        }
        None => print!("{}", String::from_utf8_lossy(&bytes)),
    }
    Ok(ExitCode::SUCCESS)
}
