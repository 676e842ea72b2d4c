//! `vercel:EnvironmentVariable`: one variable of a project, for a set of targets (production,
//! preview, development), optionally for one Git branch.
//!
//! The value is always secret in Stackwright's state, plans and logs. Its *kind* decides how
//! Vercel keeps it: `plain` (readable in the dashboard), `encrypted` (the default) or
//! `sensitive` (write-only: no API call ever returns it). The value, targets, branch, comment
//! and the plain/encrypted kind are updated in place; the project, the key and a change to or
//! from `sensitive` replace the variable (as in the Terraform provider).
//!
//! **Sensitive values cannot be read back**, so a refresh keeps the value from the state: drift
//! in a sensitive value is unknowable and is never reported as a change of `value`. It does
//! show as a change of the `updated_at` output, the only trace Vercel gives.
//!
//! A variable is unique on (key, branch, overlapping target). A replacement that keeps those
//! (a change of `sensitive`) therefore collides with the old variable while both exist: declare
//! such variables with `ResourceOptions::new().delete_before_replace()`.

use std::collections::BTreeSet;
use std::sync::Arc;

use async_trait::async_trait;
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use stackwright_core::{
    Args, CheckFailure, Created, FieldSchema, Found, Handler, Input, Observed, OpContext, Outputs, PropertyChange,
    ProviderError, Resource, Stored,
};

use crate::client::{Failure, now_ms};
use crate::common::{Shared, conflict_with_import, input, opt, split_import_id, str_field};

/// The `vercel:EnvironmentVariable` resource type.
pub struct EnvironmentVariable;

impl Resource for EnvironmentVariable {
    const TYPE: &'static str = "vercel:EnvironmentVariable";
    type Args = EnvironmentVariableArgs;
    type Outputs = EnvironmentVariableOutputs;
}

/// Where a variable applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EnvTarget {
    /// Production deployments.
    Production,
    /// Preview deployments.
    Preview,
    /// `vercel dev` and `vercel env pull`.
    Development,
}

impl EnvTarget {
    /// Every target.
    pub const ALL: [EnvTarget; 3] = [EnvTarget::Production, EnvTarget::Preview, EnvTarget::Development];

    fn parse(s: &str) -> Option<Self> {
        match s {
            "production" => Some(EnvTarget::Production),
            "preview" => Some(EnvTarget::Preview),
            "development" => Some(EnvTarget::Development),
            _ => None,
        }
    }
}

/// How Vercel keeps the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EnvKind {
    /// Stored in clear, readable in the dashboard.
    Plain,
    /// Encrypted at rest, readable by the team (the default).
    #[default]
    Encrypted,
    /// Write-only: never returned by the API. Not allowed on the development target.
    Sensitive,
}

impl EnvKind {
    fn as_str(self) -> &'static str {
        match self {
            EnvKind::Plain => "plain",
            EnvKind::Encrypted => "encrypted",
            EnvKind::Sensitive => "sensitive",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "plain" => EnvKind::Plain,
            "sensitive" => EnvKind::Sensitive,
            // `encrypted`, and the legacy `secret` and `system`, hold readable values.
            _ => EnvKind::Encrypted,
        }
    }
}

/// Arguments of `vercel:EnvironmentVariable`.
///
/// Serialized with one extra, derived field, `sensitive`, which is what forces replacement:
/// plain ↔ encrypted is an in-place update, to or from sensitive is a replacement.
#[derive(Clone, Deserialize)]
pub struct EnvironmentVariableArgs {
    /// The project's id (wire `project.id()`). A change replaces the variable.
    pub project_id: Input<String>,
    /// The variable's name. A change replaces the variable.
    pub key: Input<String>,
    /// The value; always secret in Stackwright.
    pub value: Input<String>,
    /// Where it applies; at least one.
    #[serde(default)]
    pub targets: BTreeSet<EnvTarget>,
    /// How Vercel keeps the value.
    #[serde(default)]
    pub kind: EnvKind,
    /// Only for this branch's preview deployments (needs `targets` = preview only).
    #[serde(default)]
    pub git_branch: Option<Input<String>>,
    /// A note shown in the dashboard.
    #[serde(default)]
    pub comment: Option<Input<String>>,
}

impl Serialize for EnvironmentVariableArgs {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Wire<'a> {
            project_id: &'a Input<String>,
            key: &'a Input<String>,
            value: &'a Input<String>,
            targets: &'a BTreeSet<EnvTarget>,
            kind: EnvKind,
            sensitive: bool,
            #[serde(skip_serializing_if = "Option::is_none")]
            git_branch: &'a Option<Input<String>>,
            #[serde(skip_serializing_if = "Option::is_none")]
            comment: &'a Option<Input<String>>,
        }
        Wire {
            project_id: &self.project_id,
            key: &self.key,
            value: &self.value,
            targets: &self.targets,
            kind: self.kind,
            sensitive: self.kind == EnvKind::Sensitive,
            git_branch: &self.git_branch,
            comment: &self.comment,
        }
        .serialize(s)
    }
}

const fn field(name: &'static str, replace: bool, secret: bool) -> FieldSchema {
    FieldSchema { name, replace, secret, computed: false }
}

/// Shows `value` as `[secret]`, as `#[derive(Args)]` does for `#[sw(secret)]` fields.
impl std::fmt::Debug for EnvironmentVariableArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnvironmentVariableArgs")
            .field("project_id", &self.project_id)
            .field("key", &self.key)
            .field("value", &format_args!("[secret]"))
            .field("targets", &self.targets)
            .field("kind", &self.kind)
            .field("git_branch", &self.git_branch)
            .field("comment", &self.comment)
            .finish()
    }
}

impl Args for EnvironmentVariableArgs {
    fn schema() -> &'static [FieldSchema] {
        const SCHEMA: &[FieldSchema] = &[
            field("project_id", true, false),
            field("key", true, false),
            field("value", false, true),
            field("targets", false, false),
            field("kind", false, false),
            field("sensitive", true, false),
            field("git_branch", false, false),
            field("comment", false, false),
        ];
        SCHEMA
    }
}

impl EnvironmentVariableArgs {
    /// An encrypted variable for every target.
    pub fn new(
        project_id: impl Into<Input<String>>,
        key: impl Into<Input<String>>,
        value: impl Into<Input<String>>,
    ) -> Self {
        EnvironmentVariableArgs {
            project_id: project_id.into(),
            key: key.into(),
            value: value.into(),
            targets: EnvTarget::ALL.into_iter().collect(),
            kind: EnvKind::Encrypted,
            git_branch: None,
            comment: None,
        }
    }

    /// Applies only to these targets.
    pub fn targets(mut self, targets: impl IntoIterator<Item = EnvTarget>) -> Self {
        self.targets = targets.into_iter().collect();
        self
    }

    /// Keeps the value in clear.
    pub fn plain(mut self) -> Self {
        self.kind = EnvKind::Plain;
        self
    }

    /// Makes the value write-only, and drops the development target (where it is not allowed).
    pub fn sensitive(mut self) -> Self {
        self.kind = EnvKind::Sensitive;
        self.targets.remove(&EnvTarget::Development);
        self
    }

    /// Applies only to preview deployments of `branch`.
    pub fn git_branch(mut self, branch: impl Into<Input<String>>) -> Self {
        self.git_branch = Some(branch.into());
        self.targets = BTreeSet::from([EnvTarget::Preview]);
        self
    }

    /// Adds a comment.
    pub fn comment(mut self, comment: impl Into<Input<String>>) -> Self {
        self.comment = Some(comment.into());
        self
    }
}

/// Outputs of `vercel:EnvironmentVariable`.
#[derive(Clone, Serialize, Deserialize, Outputs)]
pub struct EnvironmentVariableOutputs {
    /// Vercel's id for the variable (also the resource's id).
    #[sw(computed)]
    pub id: String,
    /// The variable's name.
    pub key: String,
    /// When it was created, in Unix milliseconds.
    #[sw(computed)]
    pub created_at: i64,
    /// When it last changed, in Unix milliseconds. For a sensitive variable this is the only
    /// sign of a change made outside the program.
    #[sw(computed)]
    pub updated_at: i64,
}

fn outputs(e: &Value) -> EnvironmentVariableOutputs {
    EnvironmentVariableOutputs {
        id: str_field(e, "id").unwrap_or_default(),
        key: str_field(e, "key").unwrap_or_default(),
        created_at: e.get("createdAt").and_then(Value::as_i64).unwrap_or_default(),
        updated_at: e.get("updatedAt").and_then(Value::as_i64).unwrap_or_default(),
    }
}

fn targets_of(e: &Value) -> BTreeSet<EnvTarget> {
    let list = e.get("target").and_then(Value::as_array).cloned().unwrap_or_default();
    list.iter().filter_map(Value::as_str).filter_map(EnvTarget::parse).collect()
}

fn target_strings(t: &BTreeSet<EnvTarget>) -> Vec<&'static str> {
    t.iter()
        .map(|t| match t {
            EnvTarget::Production => "production",
            EnvTarget::Preview => "preview",
            EnvTarget::Development => "development",
        })
        .collect()
}

/// The variable's arguments as Vercel has them. A value Vercel does not return (sensitive)
/// is taken from `stored_value`.
fn observed_args(e: &Value, project_id: &str, stored_value: Option<&str>) -> EnvironmentVariableArgs {
    let kind = EnvKind::parse(e.get("type").and_then(Value::as_str).unwrap_or("encrypted"));
    let value = match (kind, str_field(e, "value")) {
        (EnvKind::Sensitive, _) | (_, None) => stored_value.unwrap_or_default().to_owned(),
        (_, Some(v)) => v,
    };
    EnvironmentVariableArgs {
        project_id: Input::Value(project_id.to_owned()),
        key: Input::Value(str_field(e, "key").unwrap_or_default()),
        value: Input::Value(value),
        targets: targets_of(e),
        kind,
        git_branch: input(str_field(e, "gitBranch").filter(|b| !b.is_empty())),
        comment: input(str_field(e, "comment")),
    }
}

/// Whether API variable `e` (from a decrypted list) is the one `args` declares: same key,
/// branch, targets and kind, and the same value unless Vercel does not show it (sensitive).
/// Comparing the value keeps a create from adopting a variable someone else declared.
fn matches(e: &Value, args: &EnvironmentVariableArgs) -> bool {
    let kind = EnvKind::parse(e.get("type").and_then(Value::as_str).unwrap_or("encrypted"));
    str_field(e, "key").as_deref() == Some(args.key.get().as_str())
        && str_field(e, "gitBranch").filter(|b| !b.is_empty()).as_deref() == opt(&args.git_branch)
        && targets_of(e) == args.targets
        && kind == args.kind
        && (kind == EnvKind::Sensitive || str_field(e, "value").as_deref() == Some(args.value.get().as_str()))
}

/// The handler for `vercel:EnvironmentVariable`.
pub(crate) struct EnvHandler {
    pub shared: Arc<Shared>,
}

impl EnvHandler {
    async fn get(&self, project: &str, id: &str) -> Result<Option<Value>, Failure> {
        let path = format!("/v1/projects/{project}/env/{id}");
        match self.shared.client.send(Method::GET, &path, &[], None, &[]).await {
            Ok(v) => Ok(Some(v)),
            Err(f) if f.is_not_found() => Ok(None),
            Err(f) => Err(f),
        }
    }

    /// Every variable of the project, values decrypted (the log redacts them).
    async fn list(&self, project: &str) -> Result<Vec<Value>, Failure> {
        self.shared.client.list_all(&format!("/v10/projects/{project}/env"), &[("decrypt", "true")], "envs").await
    }

    /// The variable `args` declares, if the project has it.
    async fn lookup(&self, args: &EnvironmentVariableArgs) -> Result<Option<Value>, ProviderError> {
        let project = args.project_id.get();
        match self.list(project).await {
            Ok(envs) => Ok(envs.into_iter().find(|e| matches(e, args))),
            Err(f) if f.is_not_found() => Ok(None),
            Err(f) => Err(f.into_error(&format!("looking for variable {} of project {project}", args.key.get()))),
        }
    }

    fn body(args: &EnvironmentVariableArgs, with_key: bool) -> Value {
        let mut body = json!({
            "value": args.value.get(),
            "type": args.kind.as_str(),
            "target": target_strings(&args.targets),
            "gitBranch": opt(&args.git_branch),
            "comment": opt(&args.comment),
        });
        if with_key {
            body["key"] = json!(args.key.get());
            if args.git_branch.is_none() {
                body.as_object_mut().map(|o| o.remove("gitBranch"));
            }
            if args.comment.is_none() {
                body.as_object_mut().map(|o| o.remove("comment"));
            }
        }
        body
    }
}

#[async_trait]
impl Handler<EnvironmentVariable> for EnvHandler {
    /// The old object blocks the new one (same key, or same domain), so replace delete-first.
    fn delete_before_replace(&self) -> bool {
        true
    }

    fn check(&self, args: &EnvironmentVariableArgs) -> Vec<CheckFailure> {
        let mut failures = Vec::new();
        let key = args.key.get();
        let mut chars = key.chars();
        let valid = matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            failures.push(CheckFailure::at(
                "key",
                format!("`{key}` is not a valid name: use letters, digits and `_`, not starting with a digit"),
            ));
        }
        if args.targets.is_empty() {
            failures.push(CheckFailure::at("targets", "give at least one target"));
        }
        if args.kind == EnvKind::Sensitive && args.targets.contains(&EnvTarget::Development) {
            failures.push(CheckFailure::at("targets", "a sensitive variable cannot target development"));
        }
        if args.git_branch.is_some() && args.targets != BTreeSet::from([EnvTarget::Preview]) {
            failures.push(CheckFailure::at("git_branch", "a branch needs `targets` to be exactly preview"));
        }
        failures
    }

    async fn create(
        &self,
        ctx: &OpContext,
        args: &EnvironmentVariableArgs,
    ) -> Result<Created<EnvironmentVariableOutputs>, ProviderError> {
        let (project, key) = (args.project_id.get(), args.key.get());
        let op = ctx.operation_id.as_str();
        let context = format!("creating variable {key} of project {project}");
        let adopt = |e: Value| {
            self.shared.settle(op);
            let out = outputs(&e);
            Created { id: out.id.clone(), outputs: out }
        };
        if let Some(since) = self.shared.unknown_attempt(op)
            && let Some(e) = self.lookup(args).await?
            && Shared::made_by_attempt(e.get("createdAt").and_then(Value::as_i64), since)
        {
            return Ok(adopt(e));
        }
        let body = Self::body(args, true);
        let started = now_ms();
        let path = format!("/v10/projects/{project}/env");
        match self.shared.client.send(Method::POST, &path, &[], Some(&body), &[args.value.get()]).await {
            Ok(answer) => {
                let created = match answer.get("created") {
                    Some(Value::Array(items)) => items.first().cloned(),
                    Some(v @ Value::Object(_)) => Some(v.clone()),
                    _ => None,
                };
                let failed = answer.get("failed").and_then(Value::as_array).and_then(|f| f.first().cloned());
                match (created, failed) {
                    (Some(e), _) => Ok(adopt(e)),
                    (None, Some(f)) => {
                        self.shared.settle(op);
                        let message = f.pointer("/error/message").and_then(Value::as_str).unwrap_or("refused");
                        Err(conflict_with_import(
                            &format!("variable {key} of project {project} (for these targets and branch)"),
                            &format!("{project}/<variable id>"),
                            &ProviderError::conflict(message),
                        ))
                    }
                    (None, None) => {
                        Err(ProviderError::transient(format!("{context}: the API answered without the variable")))
                    }
                }
            }
            Err(f) if f.code() == Some("ENV_CONFLICT") || f.status() == Some(409) => {
                if let Some(since) = self.shared.unknown_attempt(op)
                    && let Some(e) = self.lookup(args).await?
                    && Shared::made_by_attempt(e.get("createdAt").and_then(Value::as_i64), since)
                {
                    return Ok(adopt(e));
                }
                self.shared.settle(op);
                let api = f.into_error("");
                Err(conflict_with_import(
                    &format!("variable {key} of project {project} (for these targets and branch)"),
                    &format!("{project}/<variable id>"),
                    &api,
                ))
            }
            Err(f) => Err(self.shared.create_failed(op, started, f, &context)),
        }
    }

    async fn read(
        &self,
        _ctx: &OpContext,
        stored: &Stored<EnvironmentVariable>,
    ) -> Result<Option<Observed<EnvironmentVariable>>, ProviderError> {
        let project = stored.args.project_id.get();
        let what = format!("variable {} ({}) of project {project}", stored.args.key.get(), stored.id);
        let get =
            || async { self.get(project, &stored.id).await.map_err(|f| f.into_error(&format!("reading {what}"))) };
        let found = self.shared.read_lagging(stored.outputs.created_at, get).await?;
        Ok(found.map(|e| Observed {
            id: stored.id.clone(),
            args: observed_args(&e, project, Some(stored.args.value.get())),
            outputs: outputs(&e),
        }))
    }

    async fn update(
        &self,
        _ctx: &OpContext,
        stored: &Stored<EnvironmentVariable>,
        args: &EnvironmentVariableArgs,
        _changes: &[PropertyChange],
    ) -> Result<EnvironmentVariableOutputs, ProviderError> {
        let project = args.project_id.get();
        let path = format!("/v9/projects/{project}/env/{}", stored.id);
        let body = Self::body(args, false);
        let context = format!("updating variable {} of project {project}", args.key.get());
        let e = self
            .shared
            .client
            .send(Method::PATCH, &path, &[], Some(&body), &[args.value.get(), stored.args.value.get()])
            .await
            .map_err(|f| f.into_error(&context))?;
        Ok(outputs(&e))
    }

    async fn delete(&self, _ctx: &OpContext, stored: &Stored<EnvironmentVariable>) -> Result<(), ProviderError> {
        let project = stored.args.project_id.get();
        let path = format!("/v9/projects/{project}/env/{}", stored.id);
        match self.shared.client.send(Method::DELETE, &path, &[], None, &[]).await {
            Ok(_) => Ok(()),
            Err(f) if f.is_not_found() => Ok(()),
            Err(f) => Err(f.into_error(&format!("deleting variable {} of project {project}", stored.args.key.get()))),
        }
    }

    async fn find(
        &self,
        _ctx: &OpContext,
        args: &EnvironmentVariableArgs,
    ) -> Result<Found<EnvironmentVariableOutputs>, ProviderError> {
        let found: Result<Option<Created<EnvironmentVariableOutputs>>, ProviderError> = async {
            Ok(self.lookup(args).await?.map(|e| {
                let out = outputs(&e);
                Created { id: out.id.clone(), outputs: out }
            }))
        }
        .await;
        Ok(found?.into())
    }

    async fn import(&self, _ctx: &OpContext, id: &str) -> Result<Option<Observed<EnvironmentVariable>>, ProviderError> {
        let (project, env) = split_import_id("variable", id, "variable id or key")?;
        let context = format!("importing variable {env} of project {project}");
        let found = match self.get(project, env).await.map_err(|f| f.into_error(&context))? {
            Some(e) => Some(e),
            None => {
                // Also accept a key, when exactly one variable has it.
                let all = match self.list(project).await {
                    Ok(all) => all,
                    Err(f) if f.is_not_found() => Vec::new(),
                    Err(f) => return Err(f.into_error(&context)),
                };
                let mut same_key: Vec<Value> =
                    all.into_iter().filter(|e| str_field(e, "key").as_deref() == Some(env)).collect();
                if same_key.len() > 1 {
                    return Err(ProviderError::invalid_input(format!(
                        "{context}: {} variables are called {env}; import one by id",
                        same_key.len()
                    )));
                }
                same_key.pop()
            }
        };
        let project_id =
            match self.shared.client.send(Method::GET, &format!("/v9/projects/{project}"), &[], None, &[]).await {
                Ok(p) => str_field(&p, "id").unwrap_or_else(|| project.to_owned()),
                Err(f) if f.is_not_found() => return Ok(None),
                Err(f) => return Err(f.into_error(&context)),
            };
        Ok(found.map(|e| Observed {
            id: str_field(&e, "id").unwrap_or_default(),
            args: observed_args(&e, &project_id, None),
            outputs: outputs(&e),
        }))
    }
}
