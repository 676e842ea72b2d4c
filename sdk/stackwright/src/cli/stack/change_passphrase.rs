//! `stack change-passphrase`: re-encrypts a stack's secrets under a new passphrase, the state and
//! the configuration file in one transaction, so exactly one of the two passphrases opens the
//! stack after a crash at any point.

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
    let lock = opened.backend.lock(&stack, stackwright_state::LockInfo::current("stack change-passphrase")).await?;
    let state = opened.backend.load(&stack).await?;
    if state.as_ref().is_some_and(|s| !s.pending.is_empty()) {
        bail!("stack `{stack}` has operations from an interrupted run; run `up` or `refresh` first");
    }
    let (cipher, record) = Cipher::create(&new, KdfParams::default())?;
    let cipher = Arc::new(cipher);
    // Re-encrypt the configuration and the state, and write both in one transaction.
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
    let mut txn = reencrypted.transaction();
    if let Some(state) = &state {
        reencrypted.stage_snapshot(&mut txn, state, lock.token())?;
    }
    txn.write(&opened.config_path, file.render().into_bytes());
    txn.commit()?;
    println!("Re-encrypted the secrets of stack `{stack}` with the new passphrase; no resource was touched.");
    Ok(ExitCode::SUCCESS)
}
