//! `vercel:Promotion`: which deployment serves a project's production domains.
//!
//! Production is one pointer per project, not a property of a deployment, so it is its own
//! resource: declaring `Promotion { deployment_id: d.id() }` makes `d` the production
//! deployment (`POST /v10/projects/{p}/promote/{d}`, which does not rebuild). Pointing it at an
//! earlier production deployment with [`PromotionMode::Rollback`] is an instant rollback
//! (`POST /v1/projects/{p}/rollback/{d}`); Vercel then stops moving production to new builds
//! until the next promote, which is what a rollback is for.
//!
//! A refresh reads the project's current production deployment, so a promote or rollback made
//! in the dashboard shows as drift of `deployment_id` and the next `up` puts the declared one
//! back. Removing the resource leaves production where it is.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use stackwright_core::{
    Args, CheckFailure, Created, Found, Handler, Input, Observed, OpContext, Outputs, PropertyChange, ProviderError,
    Resource, Stored,
};

use crate::client::now_ms;
use crate::common::{Shared, str_field};

/// The `vercel:Promotion` resource type.
pub struct Promotion;

impl Resource for Promotion {
    const TYPE: &'static str = "vercel:Promotion";
    type Args = PromotionArgs;
    type Outputs = PromotionOutputs;
}

/// How the deployment is made production.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PromotionMode {
    /// Promote it; new production builds keep taking over production afterwards.
    #[default]
    Promote,
    /// Roll back to it (an earlier production deployment); production stays on it until the
    /// next promote.
    Rollback,
}

/// Arguments of `vercel:Promotion`.
#[derive(Clone, Default, Serialize, Deserialize, Args)]
pub struct PromotionArgs {
    /// The project's id (wire `project.id()`).
    #[sw(replace)]
    pub project_id: Input<String>,
    /// The deployment that should serve production (wire `deployment.id()`); must be `READY`.
    pub deployment_id: Input<String>,
    /// Promote or roll back.
    #[serde(default)]
    pub mode: PromotionMode,
}

impl PromotionArgs {
    /// Makes `deployment_id` the production deployment of `project_id`.
    pub fn promote(project_id: impl Into<Input<String>>, deployment_id: impl Into<Input<String>>) -> Self {
        PromotionArgs {
            project_id: project_id.into(),
            deployment_id: deployment_id.into(),
            mode: PromotionMode::Promote,
        }
    }

    /// Rolls production of `project_id` back to `deployment_id`.
    pub fn rollback(project_id: impl Into<Input<String>>, deployment_id: impl Into<Input<String>>) -> Self {
        PromotionArgs {
            project_id: project_id.into(),
            deployment_id: deployment_id.into(),
            mode: PromotionMode::Rollback,
        }
    }
}

/// Outputs of `vercel:Promotion`.
#[derive(Clone, Serialize, Deserialize, Outputs)]
pub struct PromotionOutputs {
    /// The production deployment.
    pub deployment_id: String,
    /// Its URL.
    #[sw(computed)]
    pub url: String,
    /// The deployment that served production before the last promote or rollback.
    #[sw(computed)]
    pub previous_deployment_id: Option<String>,
    /// When this stack last applied the promotion, in Unix milliseconds.
    #[sw(computed)]
    pub applied_at: i64,
}

fn production(p: &Value) -> Option<&Value> {
    p.pointer("/targets/production").filter(|v| v.is_object())
}

fn production_id(p: &Value) -> Option<String> {
    production(p).and_then(|d| str_field(d, "id"))
}

fn pending(p: &Value) -> bool {
    p.pointer("/lastAliasRequest/jobStatus").and_then(Value::as_str) == Some("pending")
}

fn rolled_back(p: &Value) -> bool {
    p.pointer("/lastAliasRequest/type").and_then(Value::as_str) == Some("rollback")
}

fn outputs(p: &Value) -> PromotionOutputs {
    let url = production(p).and_then(|d| str_field(d, "url")).unwrap_or_default();
    PromotionOutputs {
        deployment_id: production_id(p).unwrap_or_default(),
        url: if url.is_empty() || url.starts_with("http") { url } else { format!("https://{url}") },
        previous_deployment_id: p
            .pointer("/lastAliasRequest/fromDeploymentId")
            .and_then(Value::as_str)
            .map(str::to_owned),
        applied_at: now_ms(),
    }
}

/// The handler for `vercel:Promotion`.
pub(crate) struct PromotionHandler {
    pub shared: Arc<Shared>,
}

impl PromotionHandler {
    async fn project(&self, project: &str) -> Result<Option<Value>, ProviderError> {
        match self.shared.client.send(Method::GET, &format!("/v9/projects/{project}"), &[], None, &[]).await {
            Ok(p) => Ok(Some(p)),
            Err(f) if f.is_not_found() => Ok(None),
            Err(f) => Err(f.into_error(&format!("reading project {project}"))),
        }
    }

    /// Polls the project until `until` holds or the deployment timeout passes. A 404 is taken
    /// as the API's read lag for a moment (the project may have been created just now).
    async fn project_until(&self, project: &str, until: impl Fn(&Value) -> bool) -> Result<Value, ProviderError> {
        let config = &self.shared.client.config;
        let started = Instant::now();
        let visible_within = config.consistency_grace.max(std::time::Duration::from_secs(10));
        loop {
            match self.project(project).await? {
                Some(p) if until(&p) => return Ok(p),
                Some(_) => {}
                None if started.elapsed() < visible_within => {}
                None => return Err(ProviderError::not_found(format!("project {project} does not exist"))),
            }
            if started.elapsed() > config.deployment_timeout {
                return Err(ProviderError::transient(format!(
                    "project {project}: the promote or rollback did not finish within {:?}",
                    config.deployment_timeout
                )));
            }
            tokio::time::sleep(config.poll_interval).await;
        }
    }

    async fn apply(&self, args: &PromotionArgs) -> Result<(String, PromotionOutputs), ProviderError> {
        let (project, deployment) = (args.project_id.get(), args.deployment_id.get());
        // A project created moments ago may not be readable yet; writes see it at once, so go
        // ahead with the promote then.
        let before = match self.project(project).await? {
            Some(p) if pending(&p) => Some(self.project_until(project, |p| !pending(p)).await?),
            other => other,
        };
        if let Some(p) = &before {
            let unpause = args.mode == PromotionMode::Promote && rolled_back(p);
            if production_id(p).as_deref() == Some(deployment.as_str()) && !unpause {
                return Ok((str_field(p, "id").unwrap_or_else(|| project.clone()), outputs(p)));
            }
        }
        let (path, verb) = match args.mode {
            PromotionMode::Promote => (format!("/v10/projects/{project}/promote/{deployment}"), "promoting"),
            PromotionMode::Rollback => (format!("/v1/projects/{project}/rollback/{deployment}"), "rolling back to"),
        };
        let context = format!("{verb} deployment {deployment} in project {project}");
        match self.shared.client.send(Method::POST, &path, &[], Some(&serde_json::json!({})), &[]).await {
            Ok(_) => {}
            Err(f) if f.status() == Some(409) => {
                return Err(ProviderError::transient(format!(
                    "{context}: another promote or rollback is in progress ({})",
                    f.into_error("").message
                )));
            }
            Err(f) => return Err(f.into_error(&context)),
        }
        let p = self
            .project_until(project, |p| !pending(p) && production_id(p).as_deref() == Some(deployment.as_str()))
            .await?;
        Ok((str_field(&p, "id").unwrap_or_else(|| project.clone()), outputs(&p)))
    }
}

#[async_trait]
impl Handler<Promotion> for PromotionHandler {
    fn check(&self, args: &PromotionArgs) -> Vec<CheckFailure> {
        if args.deployment_id.get().is_empty() {
            return vec![CheckFailure::at("deployment_id", "name the deployment to promote")];
        }
        Vec::new()
    }

    async fn create(&self, _ctx: &OpContext, args: &PromotionArgs) -> Result<Created<PromotionOutputs>, ProviderError> {
        let (id, outputs) = self.apply(args).await?;
        Ok(Created { id, outputs })
    }

    async fn read(
        &self,
        _ctx: &OpContext,
        stored: &Stored<Promotion>,
    ) -> Result<Option<Observed<Promotion>>, ProviderError> {
        let found = self.shared.read_lagging(stored.outputs.applied_at, || self.project(&stored.id)).await?;
        let Some(p) = found else {
            return Ok(None);
        };
        let args = PromotionArgs {
            project_id: stored.args.project_id.clone(),
            deployment_id: Input::Value(production_id(&p).unwrap_or_default()),
            // After a rollback Vercel keeps production pinned until a promote: that is the mode.
            mode: if rolled_back(&p) { PromotionMode::Rollback } else { PromotionMode::Promote },
        };
        let outputs = PromotionOutputs { applied_at: stored.outputs.applied_at, ..outputs(&p) };
        Ok(Some(Observed { id: stored.id.clone(), args, outputs }))
    }

    async fn update(
        &self,
        _ctx: &OpContext,
        _stored: &Stored<Promotion>,
        args: &PromotionArgs,
        _changes: &[PropertyChange],
    ) -> Result<PromotionOutputs, ProviderError> {
        Ok(self.apply(args).await?.1)
    }

    async fn delete(&self, _ctx: &OpContext, _stored: &Stored<Promotion>) -> Result<(), ProviderError> {
        // Production stays where it is: there is always some production deployment.
        Ok(())
    }

    async fn find(&self, _ctx: &OpContext, args: &PromotionArgs) -> Result<Found<PromotionOutputs>, ProviderError> {
        let found: Result<Option<Created<PromotionOutputs>>, ProviderError> = async {
            let Some(p) = self.project(args.project_id.get()).await? else {
                return Ok(None);
            };
            let done = !pending(&p) && production_id(&p).as_deref() == Some(args.deployment_id.get().as_str());
            Ok(done.then(|| Created { id: str_field(&p, "id").unwrap_or_default(), outputs: outputs(&p) }))
        }
        .await;
        Ok(found?.into())
    }

    async fn import(&self, _ctx: &OpContext, id: &str) -> Result<Option<Observed<Promotion>>, ProviderError> {
        let Some(p) = self.project(id).await? else {
            return Ok(None);
        };
        let project_id = str_field(&p, "id").unwrap_or_else(|| id.to_owned());
        let mode = if rolled_back(&p) { PromotionMode::Rollback } else { PromotionMode::Promote };
        let args = PromotionArgs {
            project_id: Input::Value(project_id.clone()),
            deployment_id: Input::Value(production_id(&p).unwrap_or_default()),
            mode,
        };
        Ok(Some(Observed { id: project_id, args, outputs: outputs(&p) }))
    }
}
