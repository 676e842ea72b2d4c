//! The in-memory state: one partition per team (or personal scope), id generation, unique
//! creation timestamps and the read-after-create visibility used to emulate eventual consistency.

use crate::clock::Clock;
use crate::config::{ConsistencyConfig, EmulatorConfig};
use crate::deployments::{Alias, Deployment};
use crate::domains::{DnsRecord, ProjectDomain};
use crate::env::EnvVar;
use crate::projects::Project;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use std::collections::BTreeMap;

const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const LOWER_ALNUM: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

/// Everything the emulator remembers about API objects.
pub(crate) struct Store {
    pub teams: BTreeMap<String, TeamData>,
    pub dns: Vec<DnsRecord>,
    rng: StdRng,
    last_created_ms: i64,
}

/// One team's (or one user's personal) resources.
#[derive(Default)]
pub(crate) struct TeamData {
    pub projects: BTreeMap<String, Project>,
    pub envs: BTreeMap<String, EnvVar>,
    /// Keyed by domain name: a domain can be on one project only.
    pub domains: BTreeMap<String, ProjectDomain>,
    pub deployments: BTreeMap<String, Deployment>,
    /// Keyed by alias hostname.
    pub aliases: BTreeMap<String, Alias>,
    /// Uploaded files: SHA-1 to size.
    pub files: BTreeMap<String, u64>,
}

impl TeamData {
    pub fn find_project(&self, id_or_name: &str) -> Option<&Project> {
        self.projects.get(id_or_name).or_else(|| self.projects.values().find(|p| p.name == id_or_name))
    }

    pub fn find_project_id(&self, id_or_name: &str) -> Option<String> {
        self.find_project(id_or_name).map(|p| p.id.clone())
    }
}

impl Store {
    pub fn new(seed: Option<u64>) -> Self {
        let rng = match seed {
            Some(s) => StdRng::seed_from_u64(s),
            None => StdRng::from_os_rng(),
        };
        Self { teams: BTreeMap::new(), dns: Vec::new(), rng, last_created_ms: 0 }
    }

    pub fn random_string(&mut self, len: usize, charset: &[u8]) -> String {
        (0..len).map(|_| charset[self.rng.random_range(0..charset.len())] as char).collect()
    }

    /// An id like the real ones, e.g. `prj_` followed by 28 letters and digits.
    pub fn new_id(&mut self, prefix: &str, len: usize) -> String {
        format!("{prefix}{}", self.random_string(len, ALNUM))
    }

    pub fn lower_id(&mut self, len: usize) -> String {
        self.random_string(len, LOWER_ALNUM)
    }

    pub fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && self.rng.random_bool(p.min(1.0))
    }

    /// Creation timestamps double as pagination cursors, so they must never repeat even when
    /// many objects are created within one millisecond.
    pub fn created_at(&mut self, now_epoch_ms: i64) -> i64 {
        let ts = now_epoch_ms.max(self.last_created_ms + 1);
        self.last_created_ms = ts;
        ts
    }

    /// Which team holds an alias hostname, if any.
    pub fn alias_owner(&self, alias: &str) -> Option<&str> {
        self.teams.iter().find(|(_, t)| t.aliases.contains_key(alias)).map(|(id, _)| id.as_str())
    }

    /// Which team holds a project domain, if any.
    pub fn domain_owner(&self, name: &str) -> Option<(&str, &ProjectDomain)> {
        self.teams.iter().find_map(|(id, t)| t.domains.get(name).map(|d| (id.as_str(), d)))
    }

    /// The whole state, including values the API never returns, for the admin dump.
    pub fn dump(&self, clock: &Clock) -> Value {
        let now = clock.now_ms();
        let teams: serde_json::Map<String, Value> = self
            .teams
            .iter()
            .map(|(id, t)| {
                let body = json!({
                    "projects": t.projects.values().map(|p| p.to_json(t, clock)).collect::<Vec<_>>(),
                    "envs": t.envs.values().map(|e| e.admin_json()).collect::<Vec<_>>(),
                    "domains": t.domains.values().map(|d| d.to_json()).collect::<Vec<_>>(),
                    "deployments": t.deployments.values().map(|d| d.to_json(t, clock, now)).collect::<Vec<_>>(),
                    "aliases": t.aliases.values().map(|a| a.to_json()).collect::<Vec<_>>(),
                    "files": t.files,
                });
                (id.clone(), body)
            })
            .collect();
        json!({ "clockMs": now, "teams": teams, "dns": self.dns })
    }
}

/// Read-after-create lag of one object.
#[derive(Debug, Clone, Default)]
pub(crate) struct Visibility {
    visible_at: u64,
    hidden_reads: u32,
}

impl Visibility {
    pub fn new(cfg: &ConsistencyConfig, now: u64) -> Self {
        Self { visible_at: now + cfg.hidden_ms, hidden_reads: cfg.hidden_reads }
    }

    /// A single-object read: false means answer 404. Each hidden read uses up one of the
    /// configured misses, so "N reads then visible" works without any time passing.
    pub fn read(&mut self, now: u64) -> bool {
        let hidden = now < self.visible_at || self.hidden_reads > 0;
        self.hidden_reads = self.hidden_reads.saturating_sub(1);
        !hidden
    }

    /// Lists only honour the time-based lag; counting list reads per object would be arbitrary.
    pub fn listed(&self, now: u64) -> bool {
        now >= self.visible_at
    }
}

/// A handler's view of the store, bound to the caller's team and this instant.
pub(crate) struct Ctx<'a> {
    pub store: &'a mut Store,
    pub team_id: String,
    pub slug: String,
    pub user_id: String,
    pub now: u64,
    pub epoch: i64,
    pub cfg: &'a EmulatorConfig,
    pub clock: &'a Clock,
}

impl Ctx<'_> {
    pub fn team(&mut self) -> &mut TeamData {
        self.store.teams.entry(self.team_id.clone()).or_default()
    }

    pub fn team_ref(&self) -> &TeamData {
        static EMPTY: std::sync::OnceLock<TeamData> = std::sync::OnceLock::new();
        self.store.teams.get(&self.team_id).unwrap_or_else(|| EMPTY.get_or_init(TeamData::default))
    }

    pub fn created_at(&mut self) -> i64 {
        self.store.created_at(self.epoch)
    }

    pub fn visibility(&self) -> Visibility {
        Visibility::new(&self.cfg.consistency, self.now)
    }
}
