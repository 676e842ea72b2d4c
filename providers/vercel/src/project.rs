//! `vercel:Project`: a project with its framework, build settings and Git repository link.
//!
//! Everything is updated in place (`PATCH /v9/projects/{id}`), including the name; a change of
//! repository is done as unlink, link, then set the production branch, as the Terraform
//! provider does. A build setting left as `None` is not managed: whatever Vercel detects or
//! someone sets in the dashboard is kept. Set it to manage it (`Some("")` is an explicit empty
//! command).

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
use crate::common::{Shared, conflict_with_import, input, opt, str_field};

/// The `vercel:Project` resource type.
pub struct Project;

impl Resource for Project {
    const TYPE: &'static str = "vercel:Project";
    type Args = ProjectArgs;
    type Outputs = ProjectOutputs;
}

/// The Git host of a linked repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GitProvider {
    /// github.com
    Github,
    /// gitlab.com
    Gitlab,
    /// bitbucket.org
    Bitbucket,
}

impl GitProvider {
    fn as_str(self) -> &'static str {
        match self {
            GitProvider::Github => "github",
            GitProvider::Gitlab => "gitlab",
            GitProvider::Bitbucket => "bitbucket",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "github" => Some(GitProvider::Github),
            "gitlab" => Some(GitProvider::Gitlab),
            "bitbucket" => Some(GitProvider::Bitbucket),
            _ => None,
        }
    }
}

/// A linked Git repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitRepository {
    /// Where the repository lives.
    pub provider: GitProvider,
    /// `owner/name` (GitLab groups may nest: `group/sub/name`).
    pub repo: String,
    /// The branch whose pushes deploy to production; `None` leaves Vercel's choice alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub production_branch: Option<String>,
}

impl GitRepository {
    /// A GitHub repository, `owner/name`.
    pub fn github(repo: impl Into<String>) -> Self {
        GitRepository { provider: GitProvider::Github, repo: repo.into(), production_branch: None }
    }

    /// The same repository with this production branch.
    pub fn production_branch(mut self, branch: impl Into<String>) -> Self {
        self.production_branch = Some(branch.into());
        self
    }
}

/// Arguments of `vercel:Project`.
#[derive(Clone, Default, Serialize, Deserialize, Args)]
pub struct ProjectArgs {
    /// The project's name: lowercase letters, digits, `.`, `_` and `-`. Renamed in place.
    pub name: Input<String>,
    /// The framework preset, e.g. `nextjs`; `None` lets Vercel detect it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub framework: Option<Input<String>>,
    /// Overrides the build command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_command: Option<Input<String>>,
    /// Overrides the install command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub install_command: Option<Input<String>>,
    /// Overrides the development command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dev_command: Option<Input<String>>,
    /// Overrides the output directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_directory: Option<Input<String>>,
    /// The directory inside the repository that holds the app.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_directory: Option<Input<String>>,
    /// The linked Git repository. Changing it unlinks the old one and links the new one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git_repository: Option<GitRepository>,
}

impl ProjectArgs {
    /// A project called `name` with everything else left to Vercel.
    pub fn new(name: impl Into<Input<String>>) -> Self {
        ProjectArgs { name: name.into(), ..Default::default() }
    }
}

/// Outputs of `vercel:Project`.
#[derive(Clone, Serialize, Deserialize, Outputs)]
pub struct ProjectOutputs {
    /// The project id, `prj_…` (also the resource's id).
    pub id: String,
    /// The project's name.
    pub name: String,
    /// The team (or user) that owns it.
    #[sw(computed)]
    pub account_id: String,
    /// When it was created, in Unix milliseconds.
    #[sw(computed)]
    pub created_at: i64,
}

/// The camelCase API names of the optional string settings, with their accessors.
type Setting = (&'static str, fn(&ProjectArgs) -> &Option<Input<String>>, fn(&mut ProjectArgs, Option<String>));

const SETTINGS: &[Setting] = &[
    ("framework", |a| &a.framework, |a, v| a.framework = input(v)),
    ("buildCommand", |a| &a.build_command, |a, v| a.build_command = input(v)),
    ("installCommand", |a| &a.install_command, |a, v| a.install_command = input(v)),
    ("devCommand", |a| &a.dev_command, |a, v| a.dev_command = input(v)),
    ("outputDirectory", |a| &a.output_directory, |a, v| a.output_directory = input(v)),
    ("rootDirectory", |a| &a.root_directory, |a, v| a.root_directory = input(v)),
];

fn outputs(p: &Value) -> ProjectOutputs {
    ProjectOutputs {
        id: str_field(p, "id").unwrap_or_default(),
        name: str_field(p, "name").unwrap_or_default(),
        account_id: str_field(p, "accountId").unwrap_or_default(),
        created_at: p.get("createdAt").and_then(Value::as_i64).unwrap_or_default(),
    }
}

/// The repository a project's `link` describes.
fn link_of(p: &Value) -> Option<GitRepository> {
    let link = p.get("link").filter(|l| l.is_object())?;
    let provider = GitProvider::parse(link.get("type")?.as_str()?)?;
    let s = |k: &str| str_field(link, k);
    let repo = match provider {
        GitProvider::Github => format!("{}/{}", s("org")?, s("repo")?),
        GitProvider::Gitlab => format!("{}/{}", s("projectNamespace")?, s("projectName")?),
        GitProvider::Bitbucket => format!("{}/{}", s("owner")?, s("slug")?),
    };
    Some(GitRepository { provider, repo, production_branch: s("productionBranch") })
}

/// The project's arguments as Vercel has them. With `stored`, settings the program leaves
/// unmanaged stay unmanaged.
fn observed_args(p: &Value, stored: Option<&ProjectArgs>) -> ProjectArgs {
    let mut args = ProjectArgs::new(str_field(p, "name").unwrap_or_default());
    for (key, get, set) in SETTINGS {
        let managed = stored.is_none_or(|s| get(s).is_some());
        set(&mut args, str_field(p, key).filter(|_| managed));
    }
    args.git_repository = link_of(p).map(|mut link| {
        if stored.is_some_and(|s| s.git_repository.as_ref().is_none_or(|g| g.production_branch.is_none())) {
            link.production_branch = None;
        }
        link
    });
    args
}

/// The handler for `vercel:Project`.
pub(crate) struct ProjectHandler {
    pub shared: Arc<Shared>,
}

impl ProjectHandler {
    async fn get(&self, id_or_name: &str) -> Result<Option<Value>, Failure> {
        match self.shared.client.send(Method::GET, &format!("/v9/projects/{id_or_name}"), &[], None, &[]).await {
            Ok(v) => Ok(Some(v)),
            Err(f) if f.is_not_found() => Ok(None),
            Err(f) => Err(f),
        }
    }

    async fn set_branch(&self, id: &str, branch: &str) -> Result<(), ProviderError> {
        let body = json!({ "branch": branch });
        self.shared
            .client
            .send(Method::PATCH, &format!("/v9/projects/{id}/branch"), &[], Some(&body), &[])
            .await
            .map(|_| ())
            .map_err(|f| f.into_error(&format!("setting the production branch of project {id}")))
    }

    async fn link(&self, id: &str, git: &GitRepository) -> Result<(), ProviderError> {
        let body = json!({ "type": git.provider.as_str(), "repo": git.repo });
        self.shared
            .client
            .send(Method::POST, &format!("/v9/projects/{id}/link"), &[], Some(&body), &[])
            .await
            .map_err(|f| f.into_error(&format!("linking project {id} to {}", git.repo)))?;
        if let Some(branch) = &git.production_branch {
            self.set_branch(id, branch).await?;
        }
        Ok(())
    }

    fn conflict(&self, op: &str, name: &str, f: Failure) -> ProviderError {
        self.shared.settle(op);
        let api = f.into_error("");
        conflict_with_import(&format!("Vercel project \"{name}\""), name, &api)
    }

    /// Adopts the project an earlier attempt of this create may have made.
    async fn adopt(&self, name: &str, since: i64) -> Result<Option<Value>, ProviderError> {
        let found = self.get(name).await.map_err(|f| f.into_error(&format!("looking for project \"{name}\"")))?;
        Ok(found.filter(|p| Shared::made_by_attempt(p.get("createdAt").and_then(Value::as_i64), since)))
    }
}

#[async_trait]
impl Handler<Project> for ProjectHandler {
    fn check(&self, args: &ProjectArgs) -> Vec<CheckFailure> {
        let mut failures = Vec::new();
        let name = args.name.get();
        let ok = name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'));
        if name.is_empty() || name.len() > 100 || !ok || name.contains("---") {
            failures.push(CheckFailure::at(
                "name",
                format!("`{name}` is not a valid project name: use 1-100 lowercase letters, digits, `.`, `_` or `-`, without `---`"),
            ));
        }
        for (field, value) in [("framework", &args.framework), ("root_directory", &args.root_directory)] {
            if opt(value) == Some("") {
                failures.push(CheckFailure::at(field, "an empty value means \"detect it\"; write `None` instead"));
            }
        }
        if let Some(git) = &args.git_repository {
            let parts: Vec<&str> = git.repo.split('/').collect();
            if parts.len() < 2 || parts.iter().any(|p| p.is_empty()) {
                failures.push(CheckFailure::at("git_repository", format!("`{}` is not `owner/name`", git.repo)));
            }
        }
        failures
    }

    async fn create(&self, ctx: &OpContext, args: &ProjectArgs) -> Result<Created<ProjectOutputs>, ProviderError> {
        let name = args.name.get().clone();
        let op = ctx.operation_id.as_str();
        let context = format!("creating project \"{name}\"");
        let earlier = match self.shared.unknown_attempt(op) {
            Some(since) => self.adopt(&name, since).await?.map(|p| (p, since)),
            None => None,
        };
        let (created, started) = match earlier {
            Some(found) => found,
            None => {
                let mut body = Map::new();
                body.insert("name".into(), json!(name));
                for (key, get, _) in SETTINGS {
                    if let Some(v) = opt(get(args)) {
                        body.insert((*key).into(), json!(v));
                    }
                }
                if let Some(git) = &args.git_repository {
                    body.insert("gitRepository".into(), json!({ "type": git.provider.as_str(), "repo": git.repo }));
                }
                let started = now_ms();
                let body = Value::Object(body);
                match self.shared.client.send(Method::POST, "/v11/projects", &[], Some(&body), &[]).await {
                    Ok(p) => (p, started),
                    Err(f) if f.status() == Some(409) => {
                        let since = self.shared.unknown_attempt(op);
                        match since {
                            Some(since) => match self.adopt(&name, since).await? {
                                Some(p) => (p, since),
                                None => return Err(self.conflict(op, &name, f)),
                            },
                            None => return Err(self.conflict(op, &name, f)),
                        }
                    }
                    Err(f) => return Err(self.shared.create_failed(op, started, f, &context)),
                }
            }
        };
        let out = outputs(&created);
        if let Some(branch) = args.git_repository.as_ref().and_then(|g| g.production_branch.as_deref()) {
            // The project exists now: if this fails, the engine's retry must adopt it.
            self.shared.record_unknown(op, started);
            self.set_branch(&out.id, branch).await?;
        }
        self.shared.settle(op);
        Ok(Created { id: out.id.clone(), outputs: out })
    }

    async fn read(
        &self,
        _ctx: &OpContext,
        stored: &Stored<Project>,
    ) -> Result<Option<Observed<Project>>, ProviderError> {
        let get = || async {
            self.get(&stored.id).await.map_err(|f| f.into_error(&format!("reading project {}", stored.id)))
        };
        let found = self.shared.read_lagging(stored.outputs.created_at, get).await?;
        Ok(found.map(|p| Observed {
            id: stored.id.clone(),
            args: observed_args(&p, Some(&stored.args)),
            outputs: outputs(&p),
        }))
    }

    async fn update(
        &self,
        _ctx: &OpContext,
        stored: &Stored<Project>,
        args: &ProjectArgs,
        _changes: &[PropertyChange],
    ) -> Result<ProjectOutputs, ProviderError> {
        let id = stored.id.as_str();
        let context = format!("updating project {id}");
        let mut body = Map::new();
        if stored.args.name.get() != args.name.get() {
            body.insert("name".into(), json!(args.name.get()));
        }
        for (key, get, _) in SETTINGS {
            let (old, new) = (opt(get(&stored.args)), opt(get(args)));
            if old != new {
                // `null` resets a setting to auto-detect.
                body.insert((*key).into(), new.map_or(Value::Null, |v| json!(v)));
            }
        }
        let mut latest = None;
        if !body.is_empty() {
            let path = format!("/v9/projects/{id}");
            let p = self.shared.client.send(Method::PATCH, &path, &[], Some(&Value::Object(body)), &[]).await;
            latest = Some(p.map_err(|f| {
                if f.status() == Some(409) {
                    ProviderError::conflict(format!(
                        "{context}: another project is already called \"{}\"",
                        args.name.get()
                    ))
                } else {
                    f.into_error(&context)
                }
            })?);
        }
        let (old_git, new_git) = (&stored.args.git_repository, &args.git_repository);
        let same_repo = |a: &GitRepository, b: &GitRepository| a.provider == b.provider && a.repo == b.repo;
        match (old_git, new_git) {
            (Some(old), Some(new)) if same_repo(old, new) => {
                if let Some(branch) = &new.production_branch
                    && old.production_branch.as_ref() != Some(branch)
                {
                    self.set_branch(id, branch).await?;
                }
            }
            (old, new) => {
                if old.is_some() {
                    self.shared
                        .client
                        .send(Method::DELETE, &format!("/v9/projects/{id}/link"), &[], None, &[])
                        .await
                        .map_err(|f| f.into_error(&format!("unlinking project {id}")))?;
                }
                if let Some(new) = new {
                    self.link(id, new).await?;
                }
            }
        }
        if old_git != new_git {
            latest = None;
        }
        let p = match latest {
            Some(p) => p,
            None => self
                .shared
                .client
                .send(Method::GET, &format!("/v9/projects/{id}"), &[], None, &[])
                .await
                .map_err(|f| f.into_error(&context))?,
        };
        Ok(outputs(&p))
    }

    async fn delete(&self, _ctx: &OpContext, stored: &Stored<Project>) -> Result<(), ProviderError> {
        match self.shared.client.send(Method::DELETE, &format!("/v9/projects/{}", stored.id), &[], None, &[]).await {
            Ok(_) => Ok(()),
            Err(f) if f.is_not_found() => Ok(()),
            Err(f) => Err(f.into_error(&format!("deleting project {}", stored.id))),
        }
    }

    async fn find(&self, _ctx: &OpContext, args: &ProjectArgs) -> Result<Found<ProjectOutputs>, ProviderError> {
        let found: Result<Option<Created<ProjectOutputs>>, ProviderError> = async {
            let name = args.name.get();
            let found = self.get(name).await.map_err(|f| f.into_error(&format!("looking for project \"{name}\"")))?;
            Ok(found.map(|p| Created { id: outputs(&p).id, outputs: outputs(&p) }))
        }
        .await;
        Ok(found?.into())
    }

    async fn import(&self, _ctx: &OpContext, id: &str) -> Result<Option<Observed<Project>>, ProviderError> {
        let found = self.get(id).await.map_err(|f| f.into_error(&format!("importing project {id}")))?;
        Ok(found.map(|p| Observed { id: outputs(&p).id, args: observed_args(&p, None), outputs: outputs(&p) }))
    }
}
