//! What every command starts from: the project and state directories, which stack to use,
//! the stack's passphrase and cipher, and the backend and engine opened for it.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use stackwright_state::{Backend, Cipher, KdfParams, LocalBackend, validate_stack_name};
use zeroize::Zeroizing;

use crate::config::{Config, ConfigFile};
use crate::engine::{Engine, Settings, StackOpener};
use crate::error::EngineError;

use super::ui::{interrupt_on_ctrl_c, printer};

#[derive(Clone)]
pub(super) struct Context_ {
    pub(super) backend: Arc<LocalBackend>,
    pub(super) state_dir: PathBuf,
    pub(super) project_dir: PathBuf,
}

impl Context_ {
    pub(super) fn config_file(&self, stack: &str) -> PathBuf {
        self.project_dir.join(format!("Stackwright.{stack}.toml"))
    }

    pub(super) fn current_file(&self) -> PathBuf {
        self.state_dir.join("current-stack")
    }

    pub(super) async fn known_stacks(&self) -> anyhow::Result<Vec<String>> {
        let mut stacks = self.backend.list_stacks().await?;
        if let Ok(entries) = std::fs::read_dir(&self.project_dir) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if let Some(s) = name.strip_prefix("Stackwright.").and_then(|s| s.strip_suffix(".toml"))
                    && validate_stack_name(s).is_ok()
                {
                    stacks.push(s.to_owned());
                }
            }
        }
        stacks.sort();
        stacks.dedup();
        Ok(stacks)
    }

    /// The stack to use: `--stack`, else the selected one; it must exist.
    pub(super) async fn stack(&self, flag: &Option<String>) -> anyhow::Result<String> {
        let name = match flag {
            Some(s) => s.clone(),
            None => match std::fs::read_to_string(self.current_file()) {
                Ok(s) if !s.trim().is_empty() => s.trim().to_owned(),
                _ => bail!("no stack selected: pass --stack NAME, or run `stack select NAME` (see `stack ls`)"),
            },
        };
        validate_stack_name(&name)?;
        if !self.backend.list_stacks().await?.contains(&name) && !self.config_file(&name).exists() {
            return Err(EngineError::UnknownStack {
                stack: name,
                backend: self.backend.describe(),
                known: self.known_stacks().await?,
            }
            .into());
        }
        Ok(name)
    }
}

/// A stack opened for a command: its backend with the stack's secrets provider, and its
/// configuration.
pub(super) struct Opened {
    pub(super) name: String,
    pub(super) backend: Arc<LocalBackend>,
    pub(super) config: Arc<Config>,
    pub(super) config_path: PathBuf,
    pub(super) cipher: Option<Arc<Cipher>>,
    /// A passphrase was given but the stack has no salt yet, and it was opened read-only, so
    /// none was created: there is no cipher, and nothing can be encrypted.
    pub(super) salt_deferred: bool,
}

/// Whether opening a stack may write its configuration file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Access {
    /// For commands that only look (`preview`, `graph`, `output`, …): nothing is written, so a
    /// stack without a salt stays without one.
    ReadOnly,
    /// For commands that change the stack: a stack gets its salt the first time a passphrase
    /// is given.
    Write,
}

/// The stack's secrets provider, as [`Context_::cipher`] finds it.
struct Secrets {
    cipher: Option<Arc<Cipher>>,
    salt_deferred: bool,
}

/// A passphrase from `var`, from the file named by `file_var`, or from a prompt on a terminal.
pub(super) fn passphrase_from(var: &str, file_var: &str, prompt: &str) -> anyhow::Result<Option<Zeroizing<String>>> {
    if let Ok(p) = std::env::var(var) {
        return Ok(Some(Zeroizing::new(p)));
    }
    if let Ok(path) = std::env::var(file_var) {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading the passphrase file {path} (from {file_var})"))?;
        return Ok(Some(Zeroizing::new(text.trim_end_matches(['\n', '\r']).to_owned())));
    }
    if std::io::stdin().is_terminal() && std::io::stderr().is_terminal() {
        return Ok(Some(Zeroizing::new(rpassword::prompt_password(prompt)?)));
    }
    Ok(None)
}

impl Context_ {
    /// The stack's secrets provider. With [`Access::Write`], a stack gets its salt the first
    /// time a passphrase is given.
    fn cipher(&self, stack: &str, access: Access) -> anyhow::Result<Secrets> {
        let path = self.config_file(stack);
        let mut file = ConfigFile::read(&path)?;
        let pass = passphrase_from(
            "STACKWRIGHT_PASSPHRASE",
            "STACKWRIGHT_PASSPHRASE_FILE",
            &format!("Passphrase for stack `{stack}`: "),
        )?;
        match (&file.encryption_salt, pass) {
            (Some(record), Some(p)) => Ok(Secrets {
                cipher: Some(Arc::new(Cipher::open(&p, record, stack, &path.display().to_string())?)),
                salt_deferred: false,
            }),
            (Some(_), None) => bail!(
                "stack `{stack}` encrypts its secrets with a passphrase (salt in {}): set STACKWRIGHT_PASSPHRASE or STACKWRIGHT_PASSPHRASE_FILE",
                path.display()
            ),
            (None, Some(_)) if access == Access::ReadOnly => Ok(Secrets { cipher: None, salt_deferred: true }),
            (None, Some(p)) => {
                let (cipher, record) = Cipher::create(&p, KdfParams::default())?;
                file.encryption_salt = Some(record);
                file.write(&path)?;
                Ok(Secrets { cipher: Some(Arc::new(cipher)), salt_deferred: false })
            }
            (None, None) => Ok(Secrets { cipher: None, salt_deferred: false }),
        }
    }

    /// Opens the stack named by `--stack` (or the selected one) for a command that changes it.
    pub(super) async fn open(&self, flag: &Option<String>) -> anyhow::Result<Opened> {
        let name = self.stack(flag).await?;
        self.open_named(name, Access::Write)
    }

    /// Opens the stack named by `--stack` (or the selected one) for a command that writes
    /// nothing.
    pub(super) async fn open_read_only(&self, flag: &Option<String>) -> anyhow::Result<Opened> {
        let name = self.stack(flag).await?;
        self.open_named(name, Access::ReadOnly)
    }

    /// Opens stack `name`, which need not exist yet.
    pub(super) fn open_named(&self, name: String, access: Access) -> anyhow::Result<Opened> {
        let Secrets { cipher, salt_deferred } = self.cipher(&name, access)?;
        let mut backend = LocalBackend::new(&self.state_dir);
        if let Some(c) = &cipher {
            backend = backend.with_cipher(c.clone());
        }
        let config_path = self.config_file(&name);
        let config = Arc::new(Config::load(&name, &config_path, cipher.as_deref())?);
        Ok(Opened { name, backend: Arc::new(backend), config, config_path, cipher, salt_deferred })
    }
}

impl Context_ {
    /// The project's context: `--project-dir` (default: the program's crate) and `--state-dir`
    /// (default: `.stackwright` in the project directory).
    pub(super) fn new(project_dir: Option<PathBuf>, state_dir: Option<PathBuf>) -> Self {
        let project_dir = project_dir.unwrap_or_else(default_project_dir);
        let state_dir = state_dir.unwrap_or_else(|| project_dir.join(".stackwright"));
        Context_ { backend: Arc::new(LocalBackend::new(&state_dir)), state_dir, project_dir }
    }

    /// Opens other stacks' state for stack references.
    fn references(&self) -> StackOpener {
        // Another stack's state is opened with its own salt (and the same passphrase variables),
        // read-only: referring to a stack must not change its configuration.
        let opener = self.clone();
        Arc::new(move |other: &str| {
            opener
                .open_named(other.to_owned(), Access::ReadOnly)
                .map(|o| o.backend as Arc<dyn Backend>)
                .map_err(|e| format!("{e:#}"))
        })
    }

    /// An engine over an opened stack, printing events as they happen.
    pub(super) fn engine(&self, opened: &Opened, parallel: u16, command: &str, interrupt: bool) -> Engine {
        Engine::new(
            opened.backend.clone(),
            Settings {
                parallel: parallel as usize,
                observer: printer(),
                interrupt: interrupt.then(interrupt_on_ctrl_c),
                command: command.to_owned(),
                config: Some(opened.config.clone()),
                references: Some(self.references()),
                ..Settings::default()
            },
        )
    }
}

fn default_project_dir() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("."))
}

/// Makes `name` the selected stack.
pub(super) fn write_current(ctx: &Context_, name: &str) -> anyhow::Result<()> {
    std::fs::create_dir_all(&ctx.state_dir).with_context(|| format!("creating {}", ctx.state_dir.display()))?;
    std::fs::write(ctx.current_file(), name).with_context(|| format!("writing {}", ctx.current_file().display()))
}
