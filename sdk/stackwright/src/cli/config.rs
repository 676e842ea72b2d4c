//! `config …`: set, get, remove and list the stack's configuration values.

use std::process::ExitCode;

use anyhow::bail;

use crate::config::ConfigFile;

use super::args::ConfigCommand;
use super::context::Context_;

/// Runs one `config` subcommand.
pub(super) async fn run(ctx: &Context_, flag: &Option<String>, command: ConfigCommand) -> anyhow::Result<ExitCode> {
    // Only `set` and `rm` write the file, so only they may give the stack its salt.
    let opened = match command {
        ConfigCommand::Set { .. } | ConfigCommand::Rm { .. } => ctx.open(flag).await?,
        ConfigCommand::Get { .. } | ConfigCommand::Ls { .. } => ctx.open_read_only(flag).await?,
    };
    let (stack, path) = (opened.name.clone(), opened.config_path.clone());
    match command {
        ConfigCommand::Set { key, value, secret } => {
            let mut file = ConfigFile::read(&path)?;
            let parsed = crate::config::parse_cli_value(&value);
            let entry = if secret {
                let cipher = opened.cipher.as_ref().ok_or_else(|| {
                    anyhow::anyhow!("a secret needs the stack's passphrase: set STACKWRIGHT_PASSPHRASE or STACKWRIGHT_PASSPHRASE_FILE")
                })?;
                let json = serde_json::to_vec(&parsed)?;
                ConfigFile::secure_entry(cipher.encrypt(&json))
            } else {
                parsed
            };
            file.config.insert(key.clone(), entry);
            file.write(&path)?;
            println!("Set `{key}` for stack `{stack}`{}.", if secret { " (encrypted)" } else { "" });
        }
        ConfigCommand::Get { key, show_secrets } => {
            let (value, secret) = opened.config.raw(&key).ok_or_else(|| {
                anyhow::anyhow!("config key `{key}` is not set for stack `{stack}` ({})", path.display())
            })?;
            if secret && !show_secrets {
                println!("{}", stackwright_core::value::SECRET_PLACEHOLDER);
            } else {
                println!("{}", value.as_str().map(str::to_owned).unwrap_or_else(|| value.to_string()));
            }
        }
        ConfigCommand::Rm { key } => {
            let mut file = ConfigFile::read(&path)?;
            if file.config.remove(&key).is_none() {
                bail!("config key `{key}` is not set for stack `{stack}` ({})", path.display());
            }
            file.write(&path)?;
            println!("Removed `{key}` from stack `{stack}`.");
        }
        ConfigCommand::Ls { show_secrets, json } => {
            let mut all = serde_json::Map::new();
            for (key, _) in opened.config.keys() {
                let (value, secret) = opened.config.raw(key).expect("listed key");
                let v = if secret && !show_secrets {
                    serde_json::Value::String(stackwright_core::value::SECRET_PLACEHOLDER.into())
                } else {
                    value.clone()
                };
                all.insert(key.to_owned(), v);
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&all)?);
            } else {
                for (k, v) in all {
                    println!("{k:<24} {}", v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string()));
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
