//! The program's handle: the stack's name and the resources, providers and exports the program
//! declares. Declaring does no I/O; the engine resolves and applies declarations afterwards.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::panic::Location;
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;
use stackwright_core::{Output, Path, Provider, Resource, ResourceRef, Urn, collect_dependencies};

use crate::config::Config;
use crate::error::DeclarationError;
use crate::options::ResourceOptions;
use crate::policy::{Enforcement, Policy, PolicyContext};

pub(crate) type ArgsFn = Arc<dyn Fn() -> Result<Value, serde_json::Error> + Send + Sync>;

/// One declared resource.
#[derive(Clone)]
pub(crate) struct Registration {
    pub urn: Urn,
    pub type_token: &'static str,
    pub args: ArgsFn,
    /// Data-flow dependencies and `depends_on`, sorted and without duplicates.
    pub deps: Vec<Urn>,
    pub opts: ResourceOptions,
    pub ignore: Vec<Path>,
    pub replace_paths: Vec<Path>,
    pub location: &'static Location<'static>,
}

/// A user program: declares the stack's resources.
pub type Program = Arc<dyn Fn(&mut Stack) -> anyhow::Result<()> + Send + Sync>;

/// The program's handle on the stack being deployed.
pub struct Stack {
    name: String,
    pub(crate) registrations: Vec<Registration>,
    index: HashMap<Urn, usize>,
    pub(crate) errors: Vec<DeclarationError>,
    pub(crate) providers: Vec<Provider>,
    pub(crate) exports: Vec<(String, ArgsFn)>,
    pub(crate) policies: Vec<Policy>,
    pub(crate) config: Arc<Config>,
    pub(crate) references: Option<ReferenceLoader>,
}

/// Loads another stack's exported outputs (secrets still wrapped), for stack references.
pub type ReferenceLoader = Arc<dyn Fn(&str) -> Result<BTreeMap<String, Value>, String> + Send + Sync>;

/// Another stack's outputs, read by [`Stack::reference`].
#[derive(Debug, Clone)]
pub struct StackReference {
    stack: String,
    outputs: BTreeMap<String, Value>,
}

impl StackReference {
    /// An exported output of the referenced stack; secret if it was exported secret.
    pub fn output<T>(&self, name: &str) -> Result<Output<T>, anyhow::Error> {
        match self.outputs.get(name) {
            Some(v) => Ok(Output::from_value(v.clone())),
            None => Err(anyhow::anyhow!(
                "stack `{}` has no output named `{name}` (it has: {}); export it there with `stack.export`",
                self.stack,
                self.outputs.keys().cloned().collect::<Vec<_>>().join(", ")
            )),
        }
    }

    /// The names of the referenced stack's outputs.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.outputs.keys().map(String::as_str)
    }
}

impl Stack {
    /// An empty stack named `name`, with the built-in provider registered.
    pub fn new(name: &str) -> Self {
        Self::with_config(name, Arc::new(Config::empty(name)))
    }

    /// An empty stack with its configuration.
    pub fn with_config(name: &str, config: Arc<Config>) -> Self {
        Stack {
            config,
            references: None,
            policies: Vec::new(),
            name: name.to_owned(),
            registrations: Vec::new(),
            index: HashMap::new(),
            errors: Vec::new(),
            providers: vec![crate::builtin::provider()],
            exports: Vec::new(),
        }
    }

    /// The stack's configuration (`Stackwright.<stack>.toml`).
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The stack's name (`dev`, `staging`, `prod`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Registers a configured provider. Resources of its types use it unless they name another.
    pub fn provider(&mut self, provider: Provider) -> &mut Self {
        self.providers.retain(|p| p.name() != provider.name());
        self.providers.push(provider);
        self
    }

    /// Declares a resource with default options.
    #[track_caller]
    pub fn resource<R: Resource>(&mut self, name: &str, args: R::Args) -> ResourceRef<R> {
        self.resource_with(name, args, ResourceOptions::default())
    }

    /// Declares a resource with options.
    #[track_caller]
    pub fn resource_with<R: Resource>(&mut self, name: &str, args: R::Args, opts: ResourceOptions) -> ResourceRef<R> {
        let location = Location::caller();
        let urn = Urn::from(name);
        let handle = ResourceRef::new(urn.clone());
        if let Some(&first) = self.index.get(&urn) {
            self.errors.push(DeclarationError::Duplicate {
                name: name.to_owned(),
                first: self.registrations[first].location.to_string(),
                second: location.to_string(),
            });
            return handle;
        }
        let args = Arc::new(args);
        let args_fn: ArgsFn = Arc::new(move || serde_json::to_value(args.as_ref()));
        let (declared, mut deps) = collect_dependencies(|| args_fn());
        if let Err(e) = declared {
            self.errors.push(DeclarationError::Arguments {
                resource: name.to_owned(),
                location: location.to_string(),
                message: e.to_string(),
            });
        }
        deps.extend(opts.depends_on.iter().cloned());
        let parse = |paths: &[String], option: &'static str, errors: &mut Vec<DeclarationError>| -> Vec<Path> {
            paths
                .iter()
                .filter_map(|p| match Path::parse(p) {
                    Ok(p) => Some(p),
                    Err(e) => {
                        errors.push(DeclarationError::BadOption {
                            resource: name.to_owned(),
                            location: location.to_string(),
                            option,
                            message: e.to_string(),
                        });
                        None
                    }
                })
                .collect()
        };
        let ignore = parse(&opts.ignore_changes, "ignore_changes", &mut self.errors);
        let replace_paths = parse(&opts.replace_on_changes, "replace_on_changes", &mut self.errors);
        self.index.insert(urn.clone(), self.registrations.len());
        self.registrations.push(Registration {
            urn,
            type_token: R::TYPE,
            args: args_fn,
            deps: deps.into_iter().collect::<BTreeSet<_>>().into_iter().collect(),
            opts,
            ignore,
            replace_paths,
            location,
        });
        handle
    }

    /// Reads another stack's exported outputs (a stack reference). Secret outputs stay secret.
    pub fn reference(&self, stack: &str) -> Result<StackReference, anyhow::Error> {
        let loader = self.references.as_ref().ok_or_else(|| {
            anyhow::anyhow!("stack references are not available in this context (referencing `{stack}`)")
        })?;
        let outputs = loader(stack).map_err(|e| anyhow::anyhow!("reading the outputs of stack `{stack}`: {e}"))?;
        Ok(StackReference { stack: stack.to_owned(), outputs })
    }

    /// Registers a policy that inspects every plan before it is applied. `check` returns the
    /// resources in violation with the reason; a mandatory policy refuses the update.
    ///
    /// ```no_run
    /// # use stackwright::{Enforcement, Stack};
    /// # fn declare(stack: &mut Stack) {
    /// stack.policy("never-delete-databases-in-prod", Enforcement::Mandatory, |ctx| {
    ///     ctx.changes()
    ///         .filter(|s| ctx.stack == "prod" && s.type_token() == "postgres:Database" && s.deletes())
    ///         .map(|s| (s.urn().clone(), "databases are never deleted in prod".to_string()))
    ///         .collect()
    /// });
    /// # }
    /// ```
    pub fn policy(
        &mut self,
        name: &str,
        enforcement: Enforcement,
        check: impl Fn(&PolicyContext<'_>) -> Vec<(Urn, String)> + Send + Sync + 'static,
    ) {
        self.policies.push(Policy { name: name.to_owned(), enforcement, check: Arc::new(check) });
    }

    /// Exports a value as a stack output (see the `output` command). Wrap a literal with
    /// `Output::new`.
    pub fn export<T: Serialize + Send + Sync + 'static>(&mut self, name: &str, value: Output<T>) {
        let value = Arc::new(value);
        self.exports.retain(|(n, _)| n != name);
        self.exports.push((name.to_owned(), Arc::new(move || serde_json::to_value(value.as_ref()))));
    }
}
