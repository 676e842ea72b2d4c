//! `vercel:ProjectDomain`: a domain served by a project, optionally redirecting to another of
//! the project's domains or following one Git branch.
//!
//! The project and the domain name force replacement; the redirect, its status code and the
//! branch are updated in place. A domain can only belong to one project at a time, so moving
//! one to another project needs `ResourceOptions::new().delete_before_replace()`. The outputs carry the verification records to set in DNS when
//! Vercel cannot verify the domain by itself (another team uses the same apex, for instance);
//! a refresh picks up the verified state once they are in place.

use std::sync::Arc;

use async_trait::async_trait;
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use stackwright_core::{
    Args, CheckFailure, Created, Found, Handler, Input, Observed, OpContext, Outputs, PropertyChange, ProviderError,
    Resource, Stored,
};

use crate::client::{Failure, now_ms};
use crate::common::{Shared, conflict_with_import, input, opt, split_import_id, str_field};

/// The `vercel:ProjectDomain` resource type.
pub struct ProjectDomain;

impl Resource for ProjectDomain {
    const TYPE: &'static str = "vercel:ProjectDomain";
    type Args = ProjectDomainArgs;
    type Outputs = ProjectDomainOutputs;
}

/// Arguments of `vercel:ProjectDomain`.
#[derive(Clone, Default, Serialize, Deserialize, Args)]
pub struct ProjectDomainArgs {
    /// The project's id (wire `project.id()`). A change replaces the domain.
    #[sw(replace)]
    pub project_id: Input<String>,
    /// The hostname, e.g. `www.example.com`. A change replaces the domain.
    #[sw(replace)]
    pub domain: Input<String>,
    /// Redirect to this other domain of the same project.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect: Option<Input<String>>,
    /// The redirect's status: 301, 302, 307 or 308. `None` leaves Vercel's default (308).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_status_code: Option<u16>,
    /// Serve this branch's latest preview deployment instead of production.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git_branch: Option<Input<String>>,
}

impl ProjectDomainArgs {
    /// `domain` serving the production deployment of the project.
    pub fn new(project_id: impl Into<Input<String>>, domain: impl Into<Input<String>>) -> Self {
        ProjectDomainArgs { project_id: project_id.into(), domain: domain.into(), ..Default::default() }
    }

    /// Redirects to `target` (another domain of the project) with `status`.
    pub fn redirect_to(mut self, target: impl Into<Input<String>>, status: u16) -> Self {
        self.redirect = Some(target.into());
        self.redirect_status_code = Some(status);
        self
    }
}

/// A DNS record Vercel needs to see before it serves the domain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerificationRecord {
    /// The record type, e.g. `TXT`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The record's name, e.g. `_vercel.example.com`.
    pub domain: String,
    /// The value to put there.
    pub value: String,
    /// Why it is needed.
    pub reason: String,
}

/// Outputs of `vercel:ProjectDomain`.
#[derive(Clone, Serialize, Deserialize, Outputs)]
pub struct ProjectDomainOutputs {
    /// The hostname.
    pub name: String,
    /// Its registrable apex, e.g. `example.com`.
    #[sw(computed)]
    pub apex_name: String,
    /// Whether Vercel verified that the team may serve it.
    #[sw(computed)]
    pub verified: bool,
    /// The records to set in DNS while it is not verified.
    #[sw(computed)]
    pub verification: Vec<VerificationRecord>,
    /// When it was added, in Unix milliseconds.
    #[sw(computed)]
    pub created_at: i64,
}

fn outputs(d: &Value) -> ProjectDomainOutputs {
    let verification = d
        .get("verification")
        .and_then(Value::as_array)
        .map(|records| {
            records
                .iter()
                .map(|r| VerificationRecord {
                    kind: str_field(r, "type").unwrap_or_default(),
                    domain: str_field(r, "domain").unwrap_or_default(),
                    value: str_field(r, "value").unwrap_or_default(),
                    reason: str_field(r, "reason").unwrap_or_default(),
                })
                .collect()
        })
        .unwrap_or_default();
    ProjectDomainOutputs {
        name: str_field(d, "name").unwrap_or_default(),
        apex_name: str_field(d, "apexName").unwrap_or_default(),
        verified: d.get("verified").and_then(Value::as_bool).unwrap_or(false),
        verification,
        created_at: d.get("createdAt").and_then(Value::as_i64).unwrap_or_default(),
    }
}

fn observed_args(d: &Value, project_id: &str, stored: Option<&ProjectDomainArgs>) -> ProjectDomainArgs {
    let redirect = str_field(d, "redirect").filter(|r| !r.is_empty());
    let code = d.get("redirectStatusCode").and_then(Value::as_u64).map(|c| c as u16);
    // A status code the program leaves to Vercel stays unmanaged.
    let code_managed = stored.is_none_or(|s| s.redirect_status_code.is_some());
    ProjectDomainArgs {
        project_id: Input::Value(project_id.to_owned()),
        domain: Input::Value(str_field(d, "name").unwrap_or_default()),
        redirect_status_code: code.filter(|_| code_managed && redirect.is_some()),
        redirect: input(redirect),
        git_branch: input(str_field(d, "gitBranch").filter(|b| !b.is_empty())),
    }
}

/// The handler for `vercel:ProjectDomain`.
pub(crate) struct DomainHandler {
    pub shared: Arc<Shared>,
}

impl DomainHandler {
    async fn get(&self, project: &str, domain: &str) -> Result<Option<Value>, Failure> {
        let path = format!("/v9/projects/{project}/domains/{domain}");
        match self.shared.client.send(Method::GET, &path, &[], None, &[]).await {
            Ok(v) => Ok(Some(v)),
            Err(f) if f.is_not_found() => Ok(None),
            Err(f) => Err(f),
        }
    }

    async fn adopt(&self, args: &ProjectDomainArgs, since: Option<i64>) -> Result<Option<Value>, ProviderError> {
        let (project, domain) = (args.project_id.get(), args.domain.get());
        let found = self
            .get(project, domain)
            .await
            .map_err(|f| f.into_error(&format!("looking for domain {domain} of project {project}")))?;
        Ok(found
            .filter(|d| since.is_none_or(|s| Shared::made_by_attempt(d.get("createdAt").and_then(Value::as_i64), s))))
    }
}

#[async_trait]
impl Handler<ProjectDomain> for DomainHandler {
    /// The old object blocks the new one (same key, or same domain), so replace delete-first.
    fn delete_before_replace(&self) -> bool {
        true
    }

    fn check(&self, args: &ProjectDomainArgs) -> Vec<CheckFailure> {
        let mut failures = Vec::new();
        let domain = args.domain.get();
        if !domain.contains('.') || domain.contains(char::is_whitespace) || domain.contains('/') {
            failures.push(CheckFailure::at("domain", format!("`{domain}` is not a hostname")));
        } else if domain.chars().any(|c| c.is_ascii_uppercase()) {
            failures.push(CheckFailure::at("domain", format!("write `{domain}` in lowercase, as Vercel stores it")));
        }
        if let Some(code) = args.redirect_status_code {
            if ![301, 302, 307, 308].contains(&code) {
                failures.push(CheckFailure::at("redirect_status_code", "use 301, 302, 307 or 308"));
            }
            if args.redirect.is_none() {
                failures.push(CheckFailure::at("redirect_status_code", "a status code needs a `redirect`"));
            }
        }
        if opt(&args.redirect) == Some(domain.as_str()) {
            failures.push(CheckFailure::at("redirect", "a domain cannot redirect to itself"));
        }
        failures
    }

    async fn create(
        &self,
        ctx: &OpContext,
        args: &ProjectDomainArgs,
    ) -> Result<Created<ProjectDomainOutputs>, ProviderError> {
        let (project, domain) = (args.project_id.get(), args.domain.get());
        let op = ctx.operation_id.as_str();
        let context = format!("adding domain {domain} to project {project}");
        let done = |d: Value| {
            self.shared.settle(op);
            Created { id: domain.clone(), outputs: outputs(&d) }
        };
        if let Some(since) = self.shared.unknown_attempt(op)
            && let Some(d) = self.adopt(args, Some(since)).await?
        {
            return Ok(done(d));
        }
        let mut body = Map::new();
        body.insert("name".into(), json!(domain));
        if let Some(r) = opt(&args.redirect) {
            body.insert("redirect".into(), json!(r));
        }
        if let Some(c) = args.redirect_status_code {
            body.insert("redirectStatusCode".into(), json!(c));
        }
        if let Some(b) = opt(&args.git_branch) {
            body.insert("gitBranch".into(), json!(b));
        }
        let started = now_ms();
        let path = format!("/v10/projects/{project}/domains");
        match self.shared.client.send(Method::POST, &path, &[], Some(&Value::Object(body)), &[]).await {
            Ok(d) => Ok(done(d)),
            Err(f) if f.status() == Some(409) || f.code().is_some_and(|c| c.starts_with("domain_already")) => {
                if let Some(since) = self.shared.unknown_attempt(op)
                    && let Some(d) = self.adopt(args, Some(since)).await?
                {
                    return Ok(done(d));
                }
                self.shared.settle(op);
                let api = f.into_error("");
                Err(conflict_with_import(&format!("domain {domain}"), &format!("{project}/{domain}"), &api))
            }
            Err(f) => Err(self.shared.create_failed(op, started, f, &context)),
        }
    }

    async fn read(
        &self,
        _ctx: &OpContext,
        stored: &Stored<ProjectDomain>,
    ) -> Result<Option<Observed<ProjectDomain>>, ProviderError> {
        let project = stored.args.project_id.get();
        let context = format!("reading domain {} of project {project}", stored.id);
        let get = || async { self.get(project, &stored.id).await.map_err(|f| f.into_error(&context)) };
        let found = self.shared.read_lagging(stored.outputs.created_at, get).await?;
        Ok(found.map(|d| Observed {
            id: stored.id.clone(),
            args: observed_args(&d, project, Some(&stored.args)),
            outputs: outputs(&d),
        }))
    }

    async fn update(
        &self,
        _ctx: &OpContext,
        stored: &Stored<ProjectDomain>,
        args: &ProjectDomainArgs,
        _changes: &[PropertyChange],
    ) -> Result<ProjectDomainOutputs, ProviderError> {
        let project = args.project_id.get();
        let path = format!("/v9/projects/{project}/domains/{}", stored.id);
        let mut body = Map::new();
        body.insert("redirect".into(), opt(&args.redirect).map_or(Value::Null, |r| json!(r)));
        body.insert("gitBranch".into(), opt(&args.git_branch).map_or(Value::Null, |b| json!(b)));
        if let Some(c) = args.redirect_status_code {
            body.insert("redirectStatusCode".into(), json!(c));
        }
        let d = self
            .shared
            .client
            .send(Method::PATCH, &path, &[], Some(&Value::Object(body)), &[])
            .await
            .map_err(|f| f.into_error(&format!("updating domain {} of project {project}", stored.id)))?;
        Ok(outputs(&d))
    }

    async fn delete(&self, _ctx: &OpContext, stored: &Stored<ProjectDomain>) -> Result<(), ProviderError> {
        let project = stored.args.project_id.get();
        let path = format!("/v9/projects/{project}/domains/{}", stored.id);
        match self.shared.client.send(Method::DELETE, &path, &[], None, &[]).await {
            Ok(_) => Ok(()),
            Err(f) if f.is_not_found() => Ok(()),
            Err(f) => Err(f.into_error(&format!("removing domain {} from project {project}", stored.id))),
        }
    }

    async fn find(
        &self,
        _ctx: &OpContext,
        args: &ProjectDomainArgs,
    ) -> Result<Found<ProjectDomainOutputs>, ProviderError> {
        let found: Result<Option<Created<ProjectDomainOutputs>>, ProviderError> = async {
            Ok(self.adopt(args, None).await?.map(|d| Created { id: args.domain.get().clone(), outputs: outputs(&d) }))
        }
        .await;
        Ok(found?.into())
    }

    async fn import(&self, _ctx: &OpContext, id: &str) -> Result<Option<Observed<ProjectDomain>>, ProviderError> {
        let (project, domain) = split_import_id("domain", id, "domain")?;
        let context = format!("importing domain {domain} of project {project}");
        let Some(d) = self.get(project, domain).await.map_err(|f| f.into_error(&context))? else {
            return Ok(None);
        };
        let project_id = str_field(&d, "projectId").unwrap_or_else(|| project.to_owned());
        Ok(Some(Observed {
            id: str_field(&d, "name").unwrap_or_else(|| domain.to_owned()),
            args: observed_args(&d, &project_id, None),
            outputs: outputs(&d),
        }))
    }
}
