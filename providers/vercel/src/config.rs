//! The provider's configuration: the API token (secret), the team every call is scoped to, the
//! API's base URL and a few timings.
//!
//! The token comes from [`VercelConfig::token`] or, when that is not set, from the `VERCEL_TOKEN`
//! environment variable. It is never stored in the stack's state, never printed by `Debug`, and
//! scrubbed from every log line and error message the provider produces.

use std::fmt;
use std::time::Duration;

use stackwright_core::ProviderError;

/// The real API.
pub const DEFAULT_BASE_URL: &str = "https://api.vercel.com";

/// The environment variable read when no token is configured.
pub const TOKEN_ENV: &str = "VERCEL_TOKEN";

/// Which team the provider acts in. Sent on every call as `?teamId=` or `?slug=`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TeamScope {
    /// A team id such as `team_abc123`.
    Id(String),
    /// A team slug such as `acme`.
    Slug(String),
}

impl TeamScope {
    /// The query parameter that selects this team.
    pub fn query(&self) -> (&'static str, &str) {
        match self {
            TeamScope::Id(id) => ("teamId", id),
            TeamScope::Slug(slug) => ("slug", slug),
        }
    }

    /// The id or slug, as given.
    pub fn as_str(&self) -> &str {
        match self {
            TeamScope::Id(s) | TeamScope::Slug(s) => s,
        }
    }
}

/// How the provider reaches Vercel. Build it with [`VercelConfig::new`] and the `with_*`
/// methods, or with [`VercelConfig::from_env`].
#[derive(Clone)]
pub struct VercelConfig {
    /// The API token. `None` means: read `VERCEL_TOKEN` when the provider is built.
    pub token: Option<String>,
    /// The team every call is scoped to; `None` acts in the token owner's personal account.
    pub team: Option<TeamScope>,
    /// The API's base URL, `https://api.vercel.com` by default (an emulator's URL in tests).
    pub base_url: String,
    /// The most provider calls the engine runs at once.
    pub max_concurrency: usize,
    /// The limit for one HTTP request.
    pub request_timeout: Duration,
    /// How often a building deployment or a pending promotion is polled.
    pub poll_interval: Duration,
    /// How long a deployment may take to become ready.
    pub deployment_timeout: Duration,
    /// For how long after its creation a 404 on an object is taken as the API's read lag
    /// (eventual consistency: the object is read again until it shows) rather than as "the
    /// object is gone".
    pub consistency_grace: Duration,
}

impl fmt::Debug for VercelConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VercelConfig")
            .field("token", &self.token.as_ref().map(|_| "[secret]"))
            .field("team", &self.team)
            .field("base_url", &self.base_url)
            .field("max_concurrency", &self.max_concurrency)
            .field("request_timeout", &self.request_timeout)
            .field("poll_interval", &self.poll_interval)
            .field("deployment_timeout", &self.deployment_timeout)
            .field("consistency_grace", &self.consistency_grace)
            .finish()
    }
}

impl Default for VercelConfig {
    fn default() -> Self {
        VercelConfig {
            token: None,
            team: None,
            base_url: DEFAULT_BASE_URL.to_owned(),
            max_concurrency: 8,
            request_timeout: Duration::from_secs(60),
            poll_interval: Duration::from_secs(2),
            deployment_timeout: Duration::from_secs(15 * 60),
            consistency_grace: Duration::from_secs(10),
        }
    }
}

impl VercelConfig {
    /// The defaults: the real API, no team, the token from `VERCEL_TOKEN`.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads `VERCEL_TOKEN`, `VERCEL_TEAM_ID` (or `VERCEL_TEAM_SLUG`) and `VERCEL_API_URL`.
    pub fn from_env() -> Self {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Like [`VercelConfig::from_env`], reading variables through `lookup`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let non_empty = |k: &str| lookup(k).filter(|v| !v.trim().is_empty());
        let mut config = VercelConfig { token: non_empty(TOKEN_ENV), ..Self::default() };
        if let Some(id) = non_empty("VERCEL_TEAM_ID") {
            config.team = Some(TeamScope::Id(id));
        } else if let Some(slug) = non_empty("VERCEL_TEAM_SLUG") {
            config.team = Some(TeamScope::Slug(slug));
        }
        if let Some(url) = non_empty("VERCEL_API_URL") {
            config.base_url = url;
        }
        config
    }

    /// Uses this API token.
    pub fn with_token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Scopes every call to the team with this id (`team_…`).
    pub fn with_team_id(mut self, id: impl Into<String>) -> Self {
        self.team = Some(TeamScope::Id(id.into()));
        self
    }

    /// Scopes every call to the team with this slug.
    pub fn with_team_slug(mut self, slug: impl Into<String>) -> Self {
        self.team = Some(TeamScope::Slug(slug.into()));
        self
    }

    /// Talks to this base URL instead of `https://api.vercel.com` (e.g. an emulator).
    pub fn with_base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = url.into();
        self
    }

    /// Sets how often deployments and promotions are polled.
    pub fn with_poll_interval(mut self, every: Duration) -> Self {
        self.poll_interval = every;
        self
    }

    /// Sets the read-after-create lag tolerated before a 404 means "gone".
    pub fn with_consistency_grace(mut self, grace: Duration) -> Self {
        self.consistency_grace = grace;
        self
    }

    /// Sets the engine's limit on concurrent calls to this provider.
    pub fn with_max_concurrency(mut self, limit: usize) -> Self {
        self.max_concurrency = limit.max(1);
        self
    }

    /// The token to use: the configured one, else `VERCEL_TOKEN` as `lookup` reports it.
    pub(crate) fn resolve_token(&self, lookup: impl Fn(&str) -> Option<String>) -> Result<String, ProviderError> {
        let token = self.token.clone().or_else(|| lookup(TOKEN_ENV)).filter(|t| !t.trim().is_empty());
        token.ok_or_else(|| {
            ProviderError::unauthorized(format!(
                "vercel provider: no API token; set `VercelConfig::token` or the {TOKEN_ENV} environment variable"
            ))
        })
    }

    /// Checks the configuration.
    pub(crate) fn validate(&self) -> Result<(), ProviderError> {
        let url = self.base_url.trim_end_matches('/');
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(ProviderError::invalid_input(format!(
                "vercel provider: the base URL `{url}` must start with https:// (or http:// for an emulator)"
            )));
        }
        if let Some(team) = &self.team
            && team.as_str().trim().is_empty()
        {
            return Err(ProviderError::invalid_input("vercel provider: the team id or slug is empty"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_comes_from_config_then_environment() {
        let env = |k: &str| (k == TOKEN_ENV).then(|| "from-env".to_owned());
        assert_eq!(VercelConfig::new().with_token("given").resolve_token(env).unwrap(), "given");
        assert_eq!(VercelConfig::new().resolve_token(env).unwrap(), "from-env");
        let err = VercelConfig::new().resolve_token(|_| None).unwrap_err();
        assert_eq!(err.kind, stackwright_core::ErrorKind::Unauthorized);
        assert!(err.message.contains("VERCEL_TOKEN"), "{err}");
    }

    #[test]
    fn from_lookup_reads_team_and_url() {
        let vars = |k: &str| match k {
            "VERCEL_TOKEN" => Some("t".to_owned()),
            "VERCEL_TEAM_SLUG" => Some("acme".to_owned()),
            "VERCEL_API_URL" => Some("http://127.0.0.1:3900".to_owned()),
            _ => None,
        };
        let c = VercelConfig::from_lookup(vars);
        assert_eq!(c.team, Some(TeamScope::Slug("acme".into())));
        assert_eq!(c.base_url, "http://127.0.0.1:3900");
        assert_eq!(c.token.as_deref(), Some("t"));
    }

    #[test]
    fn debug_hides_the_token() {
        let c = VercelConfig::new().with_token("very-secret-token-123");
        let shown = format!("{c:?}");
        assert!(!shown.contains("very-secret-token-123"), "{shown}");
        assert!(shown.contains("[secret]"));
    }

    #[test]
    fn validate_rejects_odd_urls_and_empty_teams() {
        assert!(VercelConfig::new().with_base_url("ftp://x").validate().is_err());
        assert!(VercelConfig::new().with_team_id(" ").validate().is_err());
        assert!(VercelConfig::new().with_base_url("http://127.0.0.1:1/").validate().is_ok());
    }
}
