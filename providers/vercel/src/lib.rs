//! The Vercel provider for Stackwright: projects, their environment variables and domains,
//! deployments of built files, and which deployment serves production.
//!
//! ```no_run
//! use stackwright_vercel::{
//!     DeploymentArgs, DeploymentTarget, Deployment, EnvironmentVariable, EnvironmentVariableArgs, Project,
//!     ProjectArgs, ProjectDomain, ProjectDomainArgs, Promotion, PromotionArgs, VercelConfig, VercelProvider,
//! };
//!
//! # fn program(stack: &mut stackwright::Stack) -> Result<(), Box<dyn std::error::Error>> {
//! // The token comes from VERCEL_TOKEN; every call is scoped to the team.
//! let vercel = VercelProvider::new(VercelConfig::new().with_team_slug("acme"))?;
//! stack.provider(vercel.provider());
//!
//! let web = stack.resource::<Project>("web", ProjectArgs { framework: Some("nextjs".into()), ..ProjectArgs::new("acme-web") });
//! stack.resource::<EnvironmentVariable>("api-url", EnvironmentVariableArgs::new(web.id(), "API_URL", "https://api.acme.dev"));
//! stack.resource::<ProjectDomain>("www", ProjectDomainArgs::new(web.id(), "www.acme.dev"));
//! let site = stack.resource::<Deployment>("site", DeploymentArgs::from_dir(&web, "web/out", DeploymentTarget::Production)?);
//! stack.resource::<Promotion>("live", PromotionArgs::promote(web.id(), site.id()));
//! stack.export("url", site.url.clone());
//! # Ok(())
//! # }
//! ```
//!
//! Behaviour every resource shares:
//! - Every call carries `Authorization: Bearer <token>` and the team (`?teamId=` or `?slug=`).
//! - Lists are followed page by page to the end.
//! - 429 answers are *throttled* errors with the wait Vercel asked for, 5xx answers and broken
//!   connections are *transient*; the engine retries both. A create whose answer was lost looks
//!   for what it may have made before creating again, so retries never duplicate.
//! - A 404 on read means the object is gone (except right after its creation, when it is the
//!   API's read lag).
//! - A create that collides with an existing object fails with a *conflict* that names the
//!   import id to adopt it.
//! - Requests and responses are logged at debug level (target `stackwright_vercel::http`) with
//!   the token and every secret value redacted.

mod client;
mod common;
pub mod config;
pub mod deployment;
pub mod domain;
pub mod env;
pub mod project;
pub mod promotion;

use std::sync::Arc;

use stackwright_core::{Provider, ProviderError};

pub use client::LOG_TARGET;
pub use config::{TeamScope, VercelConfig};
pub use deployment::{Deployment, DeploymentArgs, DeploymentOutputs, DeploymentTarget, FileDigest};
pub use domain::{ProjectDomain, ProjectDomainArgs, ProjectDomainOutputs, VerificationRecord};
pub use env::{EnvKind, EnvTarget, EnvironmentVariable, EnvironmentVariableArgs, EnvironmentVariableOutputs};
pub use project::{GitProvider, GitRepository, Project, ProjectArgs, ProjectOutputs};
pub use promotion::{Promotion, PromotionArgs, PromotionMode, PromotionOutputs};

use common::Shared;

/// A configured Vercel provider. Clones share the HTTP client and the memory of interrupted
/// creates.
#[derive(Clone, Debug)]
pub struct VercelProvider {
    shared: Arc<Shared>,
    name: String,
}

impl VercelProvider {
    /// A provider named `vercel` for `config`. The token is taken from the configuration or,
    /// when it has none, from `VERCEL_TOKEN`. Nothing is sent until the first call.
    pub fn new(config: VercelConfig) -> Result<Self, ProviderError> {
        let token = config.resolve_token(|k| std::env::var(k).ok())?;
        let client = client::Client::new(config, token)?;
        Ok(VercelProvider { shared: Arc::new(Shared::new(client)), name: "vercel".into() })
    }

    /// A provider configured from the environment (see [`VercelConfig::from_env`]).
    pub fn from_env() -> Result<Self, ProviderError> {
        Self::new(VercelConfig::from_env())
    }

    /// Renames the provider, to manage more than one team from a program (resources pick one
    /// with `ResourceOptions::provider`).
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The configuration in use (its `Debug` hides the token).
    pub fn config(&self) -> &VercelConfig {
        &self.shared.client.config
    }

    /// The provider to register with a stack: `stack.provider(vercel.provider())`.
    pub fn provider(&self) -> Provider {
        let shared = &self.shared;
        Provider::new(self.name.clone())
            .resource::<Project>(project::ProjectHandler { shared: shared.clone() })
            .resource::<EnvironmentVariable>(env::EnvHandler { shared: shared.clone() })
            .resource::<ProjectDomain>(domain::DomainHandler { shared: shared.clone() })
            .resource::<Deployment>(deployment::DeploymentHandler { shared: shared.clone() })
            .resource::<Promotion>(promotion::PromotionHandler { shared: shared.clone() })
            .max_concurrency(shared.client.config.max_concurrency)
    }
}
