//! `stack init`: creates a stack and selects it.

use std::process::ExitCode;

use anyhow::bail;
use stackwright_state::{Backend, StackState, validate_stack_name};

use crate::cli::context::{Access, Context_, write_current};
use crate::config::ConfigFile;

/// Creates a stack and selects it.
pub(super) async fn run(ctx: &Context_, name: String) -> anyhow::Result<ExitCode> {
    validate_stack_name(&name)?;
    if ctx.backend.list_stacks().await?.contains(&name) {
        bail!("stack `{name}` already exists in {}", ctx.backend.describe());
    }
    let opened = ctx.open_named(name.clone(), Access::Write)?;
    if !opened.config_path.exists() {
        ConfigFile::default().write(&opened.config_path)?;
    }
    let lock = opened.backend.lock(&name, stackwright_state::LockInfo::current("stack init")).await?;
    opened.backend.write_snapshot(&StackState::new(&name), lock.token()).await?;
    write_current(ctx, &name)?;
    let secrets = if opened.cipher.is_some() { "secrets encrypted with its passphrase" } else { "no passphrase yet" };
    println!("Created stack `{name}` in {} ({secrets}) and selected it.", ctx.backend.describe());
    Ok(ExitCode::SUCCESS)
}
