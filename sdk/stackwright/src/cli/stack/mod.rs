//! `stack …`: creating, selecting, renaming, exporting and removing stacks; one module per subcommand.

mod change_passphrase;
mod export;
mod history;
mod import;
mod init;
mod ls;
mod pending;
mod rename;
mod rm;
mod select;
mod unlock;

use std::process::ExitCode;

use super::args::StackCommand;
use super::context::Context_;
use crate::stack::Program;

/// Runs one `stack` subcommand.
pub(super) async fn run(
    ctx: &Context_,
    flag: &Option<String>,
    program: &Program,
    command: StackCommand,
) -> anyhow::Result<ExitCode> {
    match command {
        StackCommand::Ls => ls::run(ctx).await,
        StackCommand::Init { name } => init::run(ctx, name).await,
        StackCommand::Select { name } => select::run(ctx, name).await,
        StackCommand::Unlock { force } => unlock::run(ctx, flag, force).await,
        StackCommand::Rm { name, force } => rm::run(ctx, name, force).await,
        StackCommand::Rename { new_name } => rename::run(ctx, flag, new_name).await,
        StackCommand::Pending(command) => pending::run(ctx, flag, program, command).await,
        StackCommand::History { json } => history::run(ctx, flag, json).await,
        StackCommand::Export { file } => export::run(ctx, flag, file).await,
        StackCommand::Import { file } => import::run(ctx, flag, file).await,
        StackCommand::ChangePassphrase => change_passphrase::run(ctx, flag).await,
    }
}
