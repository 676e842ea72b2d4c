//! The command line every Stackwright program gets from `stackwright::run`: preview, up,
//! destroy, refresh, stack and state management, outputs and the dependency graph.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use stackwright_state::{Backend, Cipher, KdfParams, LocalBackend, StackState, validate_stack_name};
use zeroize::Zeroizing;

use crate::config::{Config, ConfigFile};
use crate::saved_plan::SavedPlan;
use tokio::sync::watch;

use crate::engine::{Engine, Settings};
use crate::error::EngineError;
use crate::events::Event;
use crate::plan::Plan;
use crate::refresh::Drift;
use crate::render;
use crate::stack::{Program, Stack};

#[derive(Parser, Debug)]
#[command(about = "Preview and apply this program's infrastructure.", long_about = None)]
struct Cli {
    /// The stack to operate on (default: the selected stack).
    #[arg(long, short = 's', global = true, env = "STACKWRIGHT_STACK")]
    stack: Option<String>,
    /// Where stack state lives (default: `.stackwright` in the project directory).
    #[arg(long, global = true, env = "STACKWRIGHT_STATE_DIR")]
    state_dir: Option<PathBuf>,
    /// The project directory, holding `Stackwright.<stack>.toml` (default: the program's crate).
    #[arg(long, global = true, env = "STACKWRIGHT_PROJECT_DIR")]
    project_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Show what `up` would change, without changing anything.
    Preview {
        /// Read every resource first and show changes made outside the program.
        #[arg(long)]
        refresh: bool,
        /// Exit 0 when there are no changes, 2 when there are, 1 on error.
        #[arg(long)]
        detailed_exitcode: bool,
        /// Print the plan as JSON.
        #[arg(long)]
        json: bool,
        /// Preview a destroy instead of an update.
        #[arg(long)]
        destroy: bool,
        /// Save the plan to this file, for `up --plan`.
        #[arg(long, value_name = "FILE", conflicts_with = "refresh")]
        save_plan: Option<PathBuf>,
    },
    /// Apply the program: create, update, replace and delete resources.
    Up {
        /// Apply without asking.
        #[arg(long, short = 'y')]
        yes: bool,
        /// Read every resource first, so drift is repaired.
        #[arg(long)]
        refresh: bool,
        /// Run at most this many steps at once.
        #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..))]
        parallel: u16,
        /// Apply exactly this saved plan (from `preview --save-plan`), or refuse.
        #[arg(long, value_name = "FILE", conflicts_with = "refresh")]
        plan: Option<PathBuf>,
    },
    /// Delete every resource of the stack.
    Destroy {
        /// Delete without asking.
        #[arg(long, short = 'y')]
        yes: bool,
        /// Run at most this many steps at once.
        #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..))]
        parallel: u16,
    },
    /// Read every resource and record changes made outside the program.
    Refresh {
        /// Run at most this many reads at once.
        #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..))]
        parallel: u16,
    },
    /// Manage stacks.
    #[command(subcommand)]
    Stack(StackCommand),
    /// Inspect the stack's state.
    #[command(subcommand)]
    State(StateCommand),
    /// Print the stack's exported outputs.
    Output {
        /// One output to print.
        name: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// Show secret values instead of `[secret]`.
        #[arg(long)]
        show_secrets: bool,
    },
    /// Manage the stack's configuration (`Stackwright.<stack>.toml`).
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Print the program's dependency graph in Graphviz DOT.
    Graph,
    /// Adopt an existing object into the stack, and print the declaration to add.
    Import {
        /// The resource type token, e.g. `postgres:Role`.
        type_token: String,
        /// The name it gets in the stack.
        name: String,
        /// The provider's id of the object.
        id: String,
    },
}

#[derive(Subcommand, Debug)]
enum StackCommand {
    /// List stacks.
    Ls,
    /// Create a stack.
    Init {
        /// Its name.
        name: String,
    },
    /// Make a stack the default for later commands.
    Select {
        /// Its name.
        name: String,
    },
    /// Break a stack's lock left by a run that is gone.
    Unlock,
    /// Delete a stack's state (its configuration file is kept).
    Rm {
        /// The stack.
        name: String,
        /// Delete even though it still has resources (they are forgotten, not deleted).
        #[arg(long)]
        force: bool,
    },
    /// Rename the selected (or `--stack`) stack.
    Rename {
        /// The new name.
        new_name: String,
    },
    /// Show the stack's update history.
    History {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Write the stack's state as versioned, checksummed JSON (secrets stay encrypted).
    Export {
        /// Write to this file instead of stdout.
        #[arg(long)]
        file: Option<PathBuf>,
    },
    /// Replace the stack's state with an export, after validating it completely.
    Import {
        /// The export to read.
        #[arg(long)]
        file: PathBuf,
    },
    /// Re-encrypt the stack's secrets under a new passphrase (from STACKWRIGHT_NEW_PASSPHRASE,
    /// STACKWRIGHT_NEW_PASSPHRASE_FILE or a prompt). Resources are not touched.
    ChangePassphrase,
}

#[derive(Subcommand, Debug)]
enum ConfigCommand {
    /// Set a value. VALUE is TOML (`3`, `true`, `[1, 2]`) or plain text.
    Set {
        /// The key.
        key: String,
        /// The value.
        value: String,
        /// Encrypt it with the stack's passphrase.
        #[arg(long)]
        secret: bool,
    },
    /// Print a value.
    Get {
        /// The key.
        key: String,
        /// Show a secret value instead of `[secret]`.
        #[arg(long)]
        show_secrets: bool,
    },
    /// Remove a value.
    Rm {
        /// The key.
        key: String,
    },
    /// List the values.
    Ls {
        /// Show secret values instead of `[secret]`.
        #[arg(long)]
        show_secrets: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
enum StateCommand {
    /// List the resources in the stack's state.
    Ls,
    /// Forget a resource: remove it from the state without deleting the real object.
    Rm {
        /// The resource's name.
        name: String,
        /// Remove it even if it is protected or others depend on it.
        #[arg(long)]
        force: bool,
    },
    /// Rename a resource in the state without touching the real object.
    Mv {
        /// The current name.
        from: String,
        /// The new name.
        to: String,
    },
}

#[derive(Clone)]
struct Context_ {
    backend: Arc<LocalBackend>,
    state_dir: PathBuf,
    project_dir: PathBuf,
}

impl Context_ {
    fn config_file(&self, stack: &str) -> PathBuf {
        self.project_dir.join(format!("Stackwright.{stack}.toml"))
    }

    fn current_file(&self) -> PathBuf {
        self.state_dir.join("current-stack")
    }

    async fn known_stacks(&self) -> anyhow::Result<Vec<String>> {
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
    async fn stack(&self, flag: &Option<String>) -> anyhow::Result<String> {
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
struct Opened {
    name: String,
    backend: Arc<LocalBackend>,
    config: Arc<Config>,
    config_path: PathBuf,
    cipher: Option<Arc<Cipher>>,
}

/// A passphrase from `var`, from the file named by `file_var`, or from a prompt on a terminal.
fn passphrase_from(var: &str, file_var: &str, prompt: &str) -> anyhow::Result<Option<Zeroizing<String>>> {
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
    /// The stack's secrets provider. A stack gets its salt the first time a passphrase is given.
    fn cipher(&self, stack: &str) -> anyhow::Result<Option<Arc<Cipher>>> {
        let path = self.config_file(stack);
        let mut file = ConfigFile::read(&path)?;
        let pass = passphrase_from(
            "STACKWRIGHT_PASSPHRASE",
            "STACKWRIGHT_PASSPHRASE_FILE",
            &format!("Passphrase for stack `{stack}`: "),
        )?;
        match (&file.encryption_salt, pass) {
            (Some(record), Some(p)) => {
                Ok(Some(Arc::new(Cipher::open(&p, record, stack, &path.display().to_string())?)))
            }
            (Some(_), None) => bail!(
                "stack `{stack}` encrypts its secrets with a passphrase (salt in {}): set STACKWRIGHT_PASSPHRASE or STACKWRIGHT_PASSPHRASE_FILE",
                path.display()
            ),
            (None, Some(p)) => {
                let (cipher, record) = Cipher::create(&p, KdfParams::default())?;
                file.encryption_salt = Some(record);
                file.write(&path)?;
                Ok(Some(Arc::new(cipher)))
            }
            (None, None) => Ok(None),
        }
    }

    async fn open(&self, flag: &Option<String>) -> anyhow::Result<Opened> {
        let name = self.stack(flag).await?;
        self.open_named(name)
    }

    fn open_named(&self, name: String) -> anyhow::Result<Opened> {
        let cipher = self.cipher(&name)?;
        let mut backend = LocalBackend::new(&self.state_dir);
        if let Some(c) = &cipher {
            backend = backend.with_cipher(c.clone());
        }
        let config_path = self.config_file(&name);
        let config = Arc::new(Config::load(&name, &config_path, cipher.as_deref())?);
        Ok(Opened { name, backend: Arc::new(backend), config, config_path, cipher })
    }
}

fn confirm(yes: bool, verb: &str) -> impl Fn(&Plan, &[Drift]) -> bool + Sync {
    let verb = verb.to_owned();
    move |plan: &Plan, drift: &[Drift]| {
        print!("{}", render::drift(drift));
        print!("{}", render::plan(plan));
        if yes || !plan.has_changes() {
            return true;
        }
        if !std::io::stdin().is_terminal() {
            eprintln!("error: refusing to {verb} without confirmation; pass --yes to apply non-interactively");
            return false;
        }
        print!("Do you want to {verb}? [y/N] ");
        let _ = std::io::stdout().flush();
        let mut line = String::new();
        let _ = std::io::stdin().lock().read_line(&mut line);
        matches!(line.trim(), "y" | "Y" | "yes")
    }
}

fn interrupt_on_ctrl_c() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!(
                "\nInterrupted: no new steps will start; waiting for running steps to finish. Press Ctrl-C again to stop at once."
            );
            let _ = tx.send(true);
            if tokio::signal::ctrl_c().await.is_ok() {
                // Every started call has a durable pending record; the next run reconciles it.
                eprintln!(
                    "Stopped. Operations in flight are recorded as pending and will be reconciled by the next run."
                );
                std::process::exit(130);
            }
        }
    });
    rx
}

fn printer() -> crate::events::Observer {
    Arc::new(|e: &Event| {
        if let Some(line) = render::event(e) {
            println!("{line}");
        }
    })
}

fn default_project_dir() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("."))
}

async fn dispatch(cli: Cli, program: Program) -> anyhow::Result<ExitCode> {
    let project_dir = cli.project_dir.clone().unwrap_or_else(default_project_dir);
    let state_dir = cli.state_dir.clone().unwrap_or_else(|| project_dir.join(".stackwright"));
    let ctx = Context_ { backend: Arc::new(LocalBackend::new(&state_dir)), state_dir, project_dir };
    // Another stack's state is opened with its own salt (and the same passphrase variables).
    let opener = ctx.clone();
    let references: crate::engine::StackOpener = Arc::new(move |other: &str| {
        opener.open_named(other.to_owned()).map(|o| o.backend as Arc<dyn Backend>).map_err(|e| format!("{e:#}"))
    });
    let engine = |opened: &Opened, parallel: u16, command: &str, interrupt: bool| {
        Engine::new(
            opened.backend.clone(),
            Settings {
                parallel: parallel as usize,
                observer: printer(),
                interrupt: interrupt.then(interrupt_on_ctrl_c),
                command: command.to_owned(),
                config: Some(opened.config.clone()),
                references: Some(references.clone()),
                ..Settings::default()
            },
        )
    };
    match cli.command {
        Command::Preview { refresh, detailed_exitcode, json, destroy, save_plan } => {
            let opened = ctx.open(&cli.stack).await?;
            let stack = opened.name.clone();
            let engine = engine(&opened, 16, "preview", false);
            let report = match &save_plan {
                Some(path) => {
                    let (report, saved) = engine.preview_to_save(&stack, &program, destroy).await?;
                    let bytes = saved.to_bytes(opened.cipher.as_deref())?;
                    std::fs::write(path, bytes).with_context(|| format!("writing the plan to {}", path.display()))?;
                    report
                }
                None => engine.preview(&stack, &program, refresh, destroy).await?,
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&redacted_json(&report)?)?);
            } else {
                println!("Previewing {} of stack `{stack}`\n", if destroy { "destroy" } else { "update" });
                print!("{}", render::drift(&report.drift));
                print!("{}", render::plan(&report.plan));
                for w in &report.policy_warnings {
                    println!("warning: {w}");
                }
                if report.pending > 0 {
                    println!(
                        "note: {} operation(s) from an interrupted run are pending; `up` reconciles them first.",
                        report.pending
                    );
                }
            }
            if let Some(path) = &save_plan {
                println!("Saved the plan to {}; apply it with `up --plan {}`.", path.display(), path.display());
            }
            let changes = report.plan.has_changes() || !report.drift.is_empty();
            Ok(ExitCode::from(if detailed_exitcode && changes { 2 } else { 0 }))
        }
        Command::Up { yes, refresh, parallel, plan } => {
            let opened = ctx.open(&cli.stack).await?;
            let stack = opened.name.clone();
            println!("Updating stack `{stack}`\n");
            let engine = engine(&opened, parallel, "up", true);
            let confirm = confirm(yes, "apply these changes");
            let report = match &plan {
                Some(path) => {
                    let bytes = std::fs::read(path).with_context(|| format!("reading the plan {}", path.display()))?;
                    let saved = SavedPlan::from_bytes(path, &stack, &bytes, opened.cipher.as_deref())?;
                    engine.up_with_plan(&stack, &program, &saved, &confirm).await?
                }
                None => engine.up(&stack, &program, refresh, &confirm).await?,
            };
            finish(report, "Update")
        }
        Command::Destroy { yes, parallel } => {
            let opened = ctx.open(&cli.stack).await?;
            let stack = opened.name.clone();
            println!("Destroying stack `{stack}`\n");
            let report = engine(&opened, parallel, "destroy", true)
                .destroy(&stack, &program, &confirm(yes, "delete these resources"))
                .await?;
            finish(report, "Destroy")
        }
        Command::Refresh { parallel } => {
            let opened = ctx.open(&cli.stack).await?;
            let stack = opened.name.clone();
            let drift = engine(&opened, parallel, "refresh", false).refresh(&stack, &program).await?;
            if drift.is_empty() {
                println!("No changes outside the program.");
            } else {
                print!("{}", render::drift(&drift));
                println!("Recorded {} change(s) in the state of stack `{stack}`.", drift.len());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Stack(StackCommand::Ls) => {
            let current = std::fs::read_to_string(ctx.current_file()).unwrap_or_default();
            for s in ctx.known_stacks().await? {
                let mark = if s == current.trim() { "*" } else { " " };
                let has_state = ctx.backend.list_stacks().await?.contains(&s);
                println!("{mark} {s:<20} {}", if has_state { "has state" } else { "no state yet" });
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Stack(StackCommand::Init { name }) => {
            validate_stack_name(&name)?;
            if ctx.backend.list_stacks().await?.contains(&name) {
                bail!("stack `{name}` already exists in {}", ctx.backend.describe());
            }
            let opened = ctx.open_named(name.clone())?;
            if !opened.config_path.exists() {
                ConfigFile::default().write(&opened.config_path)?;
            }
            opened.backend.write_snapshot(&StackState::new(&name)).await?;
            write_current(&ctx, &name)?;
            let secrets =
                if opened.cipher.is_some() { "secrets encrypted with its passphrase" } else { "no passphrase yet" };
            println!("Created stack `{name}` in {} ({secrets}) and selected it.", ctx.backend.describe());
            Ok(ExitCode::SUCCESS)
        }
        Command::Stack(StackCommand::Select { name }) => {
            let name = ctx.stack(&Some(name)).await?;
            write_current(&ctx, &name)?;
            println!("Selected stack `{name}`.");
            Ok(ExitCode::SUCCESS)
        }
        Command::Stack(StackCommand::Unlock) => {
            let stack = ctx.stack(&cli.stack).await?;
            match ctx.backend.force_unlock(&stack).await? {
                Some(holder) => println!("Removed the lock on stack `{stack}` held by {holder}."),
                None => println!("Stack `{stack}` was not locked."),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Stack(StackCommand::Rm { name, force }) => {
            let opened = ctx.open(&Some(name.clone())).await?;
            let _lock = opened.backend.lock(&name, stackwright_state::LockInfo::current("stack rm")).await?;
            let state = opened.backend.load(&name).await?.unwrap_or_else(|| StackState::new(&name));
            if !state.resources.is_empty() && !force {
                bail!(
                    "stack `{name}` still has {} resource(s); run `destroy --stack {name}` first, or pass --force to forget them (they are not deleted)",
                    state.resources.len()
                );
            }
            opened.backend.remove_stack(&name).await?;
            if std::fs::read_to_string(ctx.current_file()).unwrap_or_default().trim() == name {
                let _ = std::fs::remove_file(ctx.current_file());
            }
            println!(
                "Removed the state of stack `{name}`; its configuration file {} is kept.",
                opened.config_path.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Stack(StackCommand::Rename { new_name }) => {
            validate_stack_name(&new_name)?;
            let opened = ctx.open(&cli.stack).await?;
            let old = opened.name.clone();
            if ctx.known_stacks().await?.contains(&new_name) {
                bail!("cannot rename `{old}` to `{new_name}`: a stack named `{new_name}` already exists");
            }
            let _lock = opened.backend.lock(&old, stackwright_state::LockInfo::current("stack rename")).await?;
            let mut state = opened.backend.load(&old).await?.unwrap_or_else(|| StackState::new(&old));
            if !state.pending.is_empty() {
                bail!("stack `{old}` has operations from an interrupted run; run `up` or `refresh` first");
            }
            state.stack = new_name.clone();
            let new_config = ctx.config_file(&new_name);
            if opened.config_path.exists() {
                std::fs::rename(&opened.config_path, &new_config)
                    .with_context(|| format!("renaming {}", opened.config_path.display()))?;
            }
            opened.backend.write_snapshot(&state).await?;
            opened.backend.remove_stack(&old).await?;
            if std::fs::read_to_string(ctx.current_file()).unwrap_or_default().trim() == old {
                write_current(&ctx, &new_name)?;
            }
            println!("Renamed stack `{old}` to `{new_name}` (configuration now in {}).", new_config.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Stack(StackCommand::ChangePassphrase) => {
            let opened = ctx.open(&cli.stack).await?;
            let stack = opened.name.clone();
            let new = passphrase_from(
                "STACKWRIGHT_NEW_PASSPHRASE",
                "STACKWRIGHT_NEW_PASSPHRASE_FILE",
                &format!("New passphrase for stack `{stack}`: "),
            )?
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "give the new passphrase in STACKWRIGHT_NEW_PASSPHRASE or STACKWRIGHT_NEW_PASSPHRASE_FILE"
                )
            })?;
            let _lock =
                opened.backend.lock(&stack, stackwright_state::LockInfo::current("stack change-passphrase")).await?;
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
        Command::Stack(StackCommand::History { json }) => {
            let stack = ctx.stack(&cli.stack).await?;
            let history = ctx.backend.history(&stack).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&history)?);
            } else if history.is_empty() {
                println!("Stack `{stack}` has no history yet.");
            } else {
                for h in history {
                    let changes: Vec<String> = h.changes.iter().map(|(k, n)| format!("{n} {k}")).collect();
                    let changes = if changes.is_empty() { "no changes".to_string() } else { changes.join(", ") };
                    println!("{}  {:<8} {:<11} {}@{}  {changes}", h.started_at, h.command, h.result, h.user, h.host);
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Stack(StackCommand::Export { file }) => {
            let opened = ctx.open(&cli.stack).await?;
            let state = opened.backend.load(&opened.name).await?.unwrap_or_else(|| StackState::new(&opened.name));
            let bytes = stackwright_state::snapshot::encode(&state, opened.cipher.as_deref())?;
            match file {
                Some(path) => {
                    std::fs::write(&path, &bytes).with_context(|| format!("writing {}", path.display()))?;
                    println!(
                        "Exported stack `{}` ({} resources) to {}.",
                        opened.name,
                        state.resources.len(),
                        path.display()
                    );
                }
                None => print!("{}", String::from_utf8_lossy(&bytes)),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Stack(StackCommand::Import { file }) => {
            let opened = ctx.open(&cli.stack).await?;
            let bytes = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            // Validate everything (format, version, checksum, stack, secrets) before writing.
            let imported = stackwright_state::snapshot::decode(&file, &opened.name, &bytes, opened.cipher.as_deref())?;
            let _lock = opened.backend.lock(&opened.name, stackwright_state::LockInfo::current("stack import")).await?;
            let current = opened.backend.load(&opened.name).await?;
            let mut next = imported;
            next.serial = current.map(|c| c.serial).unwrap_or(0).max(next.serial);
            opened.backend.write_snapshot(&next).await?;
            println!(
                "Imported {} resource(s) into stack `{}` from {}.",
                next.resources.len(),
                opened.name,
                file.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::State(StateCommand::Rm { name, force }) => {
            let opened = ctx.open(&cli.stack).await?;
            let stack = opened.name.clone();
            let urn = stackwright_core::Urn::from(name.as_str());
            engine(&opened, 1, "state rm", false)
                .edit_state(&stack, |state| {
                    let r = state.resources.get(&urn).ok_or_else(|| EngineError::UnknownResource(name.clone()))?;
                    let users: Vec<&str> = state
                        .resources
                        .values()
                        .filter(|o| o.dependencies.contains(&urn))
                        .map(|o| o.urn.as_str())
                        .collect();
                    if !force && (r.protect || !users.is_empty()) {
                        return Err(EngineError::StateEdit {
                            resource: name.clone(),
                            message: format!(
                                "it is {}; pass --force to forget it anyway",
                                if r.protect {
                                    "protected".to_string()
                                } else {
                                    format!("used by {}", users.join(", "))
                                }
                            ),
                        });
                    }
                    Ok(vec![stackwright_state::Record::Remove { op: None, urn: urn.clone() }])
                })
                .await?;
            println!("Removed `{name}` from the state of stack `{stack}`; the real object was not touched.");
            Ok(ExitCode::SUCCESS)
        }
        Command::State(StateCommand::Mv { from, to }) => {
            let opened = ctx.open(&cli.stack).await?;
            let stack = opened.name.clone();
            let (old, new) = (stackwright_core::Urn::from(from.as_str()), stackwright_core::Urn::from(to.as_str()));
            engine(&opened, 1, "state mv", false)
                .edit_state(&stack, |state| {
                    if !state.resources.contains_key(&old) {
                        return Err(EngineError::UnknownResource(from.clone()));
                    }
                    if state.resources.contains_key(&new) {
                        return Err(EngineError::StateEdit {
                            resource: to.clone(),
                            message: "a resource with that name already exists".into(),
                        });
                    }
                    Ok(vec![stackwright_state::Record::Rename { from: old.clone(), to: new.clone() }])
                })
                .await?;
            println!("Renamed `{from}` to `{to}` in the state of stack `{stack}`.");
            Ok(ExitCode::SUCCESS)
        }
        Command::State(StateCommand::Ls) => {
            let opened = ctx.open(&cli.stack).await?;
            let stack = opened.name.clone();
            let state = opened.backend.load(&stack).await?.unwrap_or_else(|| StackState::new(&stack));
            for r in state.resources.values() {
                let flags = [(r.protect, " [protected]"), (r.retain_on_delete, " [retain]")]
                    .iter()
                    .filter(|(on, _)| *on)
                    .map(|(_, t)| *t)
                    .collect::<String>();
                println!("{:<32} {:<24} {}{flags}", r.urn, r.type_token, r.id);
            }
            for r in &state.retired {
                println!("{:<32} {:<24} {} [replaced, awaiting delete]", r.urn, r.type_token, r.id);
            }
            for (op, p) in &state.pending {
                println!("{:<32} {:<24} pending {:?} ({op})", p.urn, p.type_token, p.kind);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Output { name, json, show_secrets } => {
            let opened = ctx.open(&cli.stack).await?;
            let stack = opened.name.clone();
            let state = opened.backend.load(&stack).await?.unwrap_or_else(|| StackState::new(&stack));
            let exports: std::collections::BTreeMap<&String, serde_json::Value> = state
                .exports
                .iter()
                .filter(|(k, _)| name.as_ref().is_none_or(|n| n == *k))
                .map(|(k, v)| (k, shown(v, show_secrets)))
                .collect();
            if let Some(n) = &name
                && exports.is_empty()
            {
                bail!("stack `{stack}` has no output named `{n}`; `output` lists them");
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&exports)?);
            } else if let (Some(_), Some((_, v))) = (&name, exports.iter().next()) {
                println!("{}", v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string()));
            } else {
                for (k, v) in exports {
                    println!("{k:<24} {}", render::value(&v));
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Config(command) => config_command(&ctx, &cli.stack, command).await,
        Command::Import { type_token, name, id } => {
            let opened = ctx.open(&cli.stack).await?;
            let stack = opened.name.clone();
            let resource =
                engine(&opened, 1, "import", false).import(&stack, &program, &type_token, &name, &id).await?;
            println!("Imported `{type_token}` {id} as `{name}` into stack `{stack}`.\n");
            println!("Declare it in the program with these arguments so the next preview shows no changes:");
            println!("  stack.resource::<…>({name:?}, /* {type_token} arguments */);");
            let args = stackwright_core::value::redact(&resource.inputs);
            println!("{}", serde_json::to_string_pretty(&args)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Graph => {
            let stack_name = cli.stack.clone().unwrap_or_else(|| "graph".into());
            let mut stack = Stack::new(&stack_name);
            program(&mut stack)?;
            println!("{}", crate::graph::dot(&stack));
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// A value for output: revealed with `--show-secrets`, else with secrets as `[secret]`.
fn shown(v: &serde_json::Value, show_secrets: bool) -> serde_json::Value {
    if show_secrets { stackwright_core::value::reveal(v.clone()).0 } else { stackwright_core::value::redact(v) }
}

async fn config_command(ctx: &Context_, flag: &Option<String>, command: ConfigCommand) -> anyhow::Result<ExitCode> {
    let opened = ctx.open(flag).await?;
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

fn redacted_json<T: serde::Serialize>(value: &T) -> anyhow::Result<serde_json::Value> {
    Ok(stackwright_core::value::redact(&serde_json::to_value(value)?))
}

fn write_current(ctx: &Context_, name: &str) -> anyhow::Result<()> {
    std::fs::create_dir_all(&ctx.state_dir).with_context(|| format!("creating {}", ctx.state_dir.display()))?;
    std::fs::write(ctx.current_file(), name).with_context(|| format!("writing {}", ctx.current_file().display()))
}

fn finish(report: crate::engine::UpReport, verb: &str) -> anyhow::Result<ExitCode> {
    if report.declined {
        println!("{verb} cancelled; nothing was changed.");
        return Ok(ExitCode::FAILURE);
    }
    print!("{}", render::summary(&report, verb));
    Ok(if report.interrupted {
        ExitCode::from(130)
    } else if report.failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Runs a Stackwright program as a command-line tool. Call it from `main`:
///
/// ```no_run
/// fn main() -> std::process::ExitCode {
///     stackwright::run(|stack| {
///         stack.resource::<stackwright::Data>("greeting", stackwright::DataArgs::new(serde_json::json!("hello")));
///         Ok(())
///     })
/// }
/// ```
pub fn run<F>(program: F) -> ExitCode
where
    F: Fn(&mut Stack) -> anyhow::Result<()> + Send + Sync + 'static,
{
    run_with_args(std::env::args_os(), Arc::new(program))
}

/// Like [`run`], with explicit arguments (the first is the program name).
pub fn run_with_args<I, T>(args: I, program: Program) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { ExitCode::from(1) } else { ExitCode::SUCCESS };
        }
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("STACKWRIGHT_LOG"))
        .with_writer(std::io::stderr)
        .try_init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: could not start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dispatch(cli, program)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
