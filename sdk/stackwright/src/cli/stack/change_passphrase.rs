//! `stack change-passphrase`: re-encrypts a stack's secrets under a new passphrase.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::bail;
use stackwright_state::{Backend, Cipher, KdfParams, LocalBackend};

use crate::cli::context::{Context_, passphrase_from};
use crate::config::ConfigFile;

/// Re-encrypts a stack's secrets under a new passphrase.
pub(super) async fn run(ctx: &Context_, flag: &Option<String>) -> anyhow::Result<ExitCode> {
    let opened = ctx.open(flag).await?;
    let stack = opened.name.clone();
    let new = passphrase_from(
        "STACKWRIGHT_NEW_PASSPHRASE",
        "STACKWRIGHT_NEW_PASSPHRASE_FILE",
        &format!("New passphrase for stack `{stack}`: "),
    )?
    .ok_or_else(|| {
        anyhow::anyhow!("give the new passphrase in STACKWRIGHT_NEW_PASSPHRASE or STACKWRIGHT_NEW_PASSPHRASE_FILE")
    })?;
    let _lock = opened.backend.lock(&stack, stackwright_state::LockInfo::current("stack change-passphrase")).await?;
    let state = opened.backend.load(&stack).await?;
    let (cipher, record) = Cipher::create(&new, KdfParams::default())?;
    let cipher = Arc::new(cipher);
    // Re-encrypt the configuration, then the state; both are written atomically.
    let mut file = ConfigFile::read(&opened.config_path)?;
    for (key, value) in file.config.iter_mut() {
        if ConfigFile::secure(value).is_some()
            && let Some((plain, _)) = opened.config.raw(key)
        {
            *value = ConfigFile::secure_entry(cipher.encrypt(&serde_json::to_vec(plain)?));
        }
    }
    file.encryption_salt = Some(record);
    let reencrypted = LocalBackend::new(&ctx.state_dir).with_cipher(cipher.clone());
    if let Some(state) = &state {
        if !state.pending.is_empty() {
            bail!("stack `{stack}` has operations from an interrupted run; run `up` or `refresh` first");
        }
        stackwright_state::Backend::write_snapshot(&reencrypted, state).await?;
    }
    file.write(&opened.config_path)?;
    println!("Re-encrypted the secrets of stack `{stack}` with the new passphrase; no resource was touched.");
    Ok(ExitCode::SUCCESS)
}
