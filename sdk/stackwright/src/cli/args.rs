//! The command line's clap definitions: global flags, commands and their arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(about = "Preview and apply this program's infrastructure.", long_about = None)]
pub(super) struct Cli {
    /// The stack to operate on (default: the selected stack).
    #[arg(long, short = 's', global = true, env = "STACKWRIGHT_STACK")]
    pub(super) stack: Option<String>,
    /// Where stack state lives (default: `.stackwright` in the project directory).
    #[arg(long, global = true, env = "STACKWRIGHT_STATE_DIR")]
    pub(super) state_dir: Option<PathBuf>,
    /// The project directory, holding `Stackwright.<stack>.toml` (default: the program's crate).
    #[arg(long, global = true, env = "STACKWRIGHT_PROJECT_DIR")]
    pub(super) project_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub(super) command: Command,
}

#[derive(Subcommand, Debug)]
pub(super) enum Command {
    /// Show what `up` would change, without changing anything.
    Preview(PreviewArgs),
    /// Apply the program: create, update, replace and delete resources.
    Up(UpArgs),
    /// Delete every resource of the stack.
    Destroy(DestroyArgs),
    /// Read every resource and record changes made outside the program.
    Refresh(RefreshArgs),
    /// Manage stacks.
    #[command(subcommand)]
    Stack(StackCommand),
    /// Inspect the stack's state.
    #[command(subcommand)]
    State(StateCommand),
    /// Print the stack's exported outputs.
    Output(OutputArgs),
    /// Manage the stack's configuration (`Stackwright.<stack>.toml`).
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Print the program's dependency graph (Graphviz DOT or Mermaid).
    Graph(GraphArgs),
    /// Adopt an existing object into the stack, and print the declaration to add.
    Import(ImportArgs),
}

#[derive(Subcommand, Debug)]
pub(super) enum StackCommand {
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
    /// Break a stack's lock. Refuses while the run holding it is alive, unless `--force`.
    Unlock {
        /// Take the lock from a live run (e.g. a hung one): its later writes to the state are
        /// refused, but anything it is doing to resources right now goes on.
        #[arg(long)]
        force: bool,
    },
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
    /// Operations of interrupted runs whose outcome is not yet known.
    #[command(subcommand)]
    Pending(PendingCommand),
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
pub(super) enum ConfigCommand {
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
pub(super) enum StateCommand {
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

/// The arguments of `preview`.
#[derive(Args, Debug)]
pub(super) struct PreviewArgs {
    /// Read every resource first and show changes made outside the program.
    #[arg(long)]
    pub(super) refresh: bool,
    /// Exit 0 when there are no changes, 2 when there are, 1 on error.
    #[arg(long)]
    pub(super) detailed_exitcode: bool,
    /// Print the plan as JSON.
    #[arg(long)]
    pub(super) json: bool,
    /// Preview a destroy instead of an update.
    #[arg(long)]
    pub(super) destroy: bool,
    /// Save the plan to this file, for `up --plan`.
    #[arg(long, value_name = "FILE", conflicts_with = "refresh")]
    pub(super) save_plan: Option<PathBuf>,
}

/// The arguments of `up`.
#[derive(Args, Debug)]
pub(super) struct UpArgs {
    /// Apply without asking.
    #[arg(long, short = 'y')]
    pub(super) yes: bool,
    /// Read every resource first, so drift is repaired.
    #[arg(long)]
    pub(super) refresh: bool,
    /// Run at most this many steps at once.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..))]
    pub(super) parallel: u16,
    /// Apply exactly this saved plan (from `preview --save-plan`), or refuse.
    #[arg(long, value_name = "FILE", conflicts_with = "refresh")]
    pub(super) plan: Option<PathBuf>,
}

/// The arguments of `destroy`.
#[derive(Args, Debug)]
pub(super) struct DestroyArgs {
    /// Delete without asking.
    #[arg(long, short = 'y')]
    pub(super) yes: bool,
    /// Run at most this many steps at once.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..))]
    pub(super) parallel: u16,
}

/// The arguments of `refresh`.
#[derive(Args, Debug)]
pub(super) struct RefreshArgs {
    /// Run at most this many reads at once.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..))]
    pub(super) parallel: u16,
}

/// The arguments of `output`.
#[derive(Args, Debug)]
pub(super) struct OutputArgs {
    /// One output to print.
    pub(super) name: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub(super) json: bool,
    /// Show secret values instead of `[secret]`.
    #[arg(long)]
    pub(super) show_secrets: bool,
}

/// The arguments of `import`.
#[derive(Args, Debug)]
pub(super) struct ImportArgs {
    /// The resource type token, e.g. `postgres:Role`.
    pub(super) type_token: String,
    /// The name it gets in the stack.
    pub(super) name: String,
    /// The provider's id of the object.
    pub(super) id: String,
}

/// The arguments of `graph`.
#[derive(Args, Debug)]
pub(super) struct GraphArgs {
    /// The output format.
    #[arg(long, value_enum, default_value_t = GraphFormat::Dot)]
    pub(super) format: GraphFormat,
}

/// How `graph` prints the graph.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum GraphFormat {
    /// Graphviz DOT (`dot -Tsvg`).
    Dot,
    /// A Mermaid flowchart (renders in Markdown on GitHub and GitLab).
    Mermaid,
}

#[derive(Subcommand, Debug)]
pub(super) enum PendingCommand {
    /// List the stack's pending operations (what was started, on which resource, when).
    Ls {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Say what became of an interrupted create the provider cannot settle by itself.
    Resolve {
        /// The resource.
        name: String,
        /// It made the object with this provider id: adopt it.
        #[arg(long, value_name = "ID", conflicts_with = "absent", required_unless_present = "absent")]
        created: Option<String>,
        /// It made nothing.
        #[arg(long)]
        absent: bool,
    },
}
