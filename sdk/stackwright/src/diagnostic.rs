//! One shape for everything the engine tells a user about a resource — check failures, policy
//! violations, step failures, drift and refusals: severity, resource, property path, summary and
//! detail. Text output and JSON events render this one type.

use std::fmt;

use serde::Serialize;
use stackwright_core::{Path, Urn};

/// How serious a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Something failed or was refused.
    Error,
    /// Worth knowing; nothing was refused because of it.
    Warning,
    /// For information only.
    Info,
}

impl Severity {
    /// The lowercase word shown to users.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }
}

/// A message about a resource (or the whole stack when `resource` is empty). Texts are already
/// scrubbed of secrets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// How serious it is.
    pub severity: Severity,
    /// The resource it is about, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<Urn>,
    /// The argument it is about, if any (e.g. `tags.owner`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<Path>,
    /// One line: what happened.
    pub summary: String,
    /// More: why, and what to do.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl Diagnostic {
    /// An error about `resource`.
    pub fn error(resource: Option<Urn>, summary: impl Into<String>) -> Self {
        Diagnostic { severity: Severity::Error, resource, path: None, summary: summary.into(), detail: None }
    }

    /// A warning about `resource`.
    pub fn warning(resource: Option<Urn>, summary: impl Into<String>) -> Self {
        Diagnostic { severity: Severity::Warning, ..Self::error(resource, summary) }
    }

    /// The same diagnostic about the argument at `path`.
    pub fn at(mut self, path: Option<Path>) -> Self {
        self.path = path;
        self
    }

    /// The same diagnostic with a detail.
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }
}

impl fmt::Display for Diagnostic {
    /// `error: resource `db`, field `name`: summary. detail`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.severity.as_str())?;
        match (&self.resource, &self.path) {
            (Some(r), Some(p)) => write!(f, "resource `{r}`, field `{p}`: ")?,
            (Some(r), None) => write!(f, "resource `{r}`: ")?,
            (None, Some(p)) => write!(f, "field `{p}`: ")?,
            (None, None) => {}
        }
        f.write_str(&self.summary)?;
        if let Some(d) = &self.detail {
            write!(f, ". {d}")?;
        }
        Ok(())
    }
}

impl From<&crate::policy::Violation> for Diagnostic {
    fn from(v: &crate::policy::Violation) -> Self {
        let severity = match v.enforcement {
            crate::policy::Enforcement::Mandatory => Severity::Error,
            crate::policy::Enforcement::Advisory => Severity::Warning,
        };
        Diagnostic {
            severity,
            resource: Some(v.resource.clone()),
            path: None,
            summary: format!("violates policy `{}`", v.policy),
            detail: Some(v.message.clone()),
        }
    }
}

impl Diagnostic {
    /// A check failure of `resource`'s arguments.
    pub fn check(resource: &str, failure: &stackwright_core::CheckFailure) -> Self {
        Diagnostic::error(Some(Urn::from(resource)), "invalid argument")
            .at(failure.path.clone())
            .with_detail(failure.message.clone())
    }

    /// One property of `drift` that changed outside the program (or the whole resource, gone).
    pub fn drift(drift: &crate::refresh::Drift) -> Vec<Self> {
        let r = Some(drift.urn.clone());
        if drift.gone {
            return vec![Diagnostic::warning(r, "deleted outside the program")];
        }
        drift
            .changes
            .iter()
            .map(|c| {
                let (old, new) = (
                    c.old.as_ref().unwrap_or(&serde_json::Value::Null),
                    c.new.as_ref().unwrap_or(&serde_json::Value::Null),
                );
                Diagnostic::warning(r.clone(), "changed outside the program")
                    .at(Some(c.path.clone()))
                    .with_detail(format!("{} → {}", crate::render::value(old), crate::render::value(new)))
            })
            .collect()
    }
}
