//! A test provider whose "cloud" is a map in memory or a directory of files (so it outlives a
//! killed process), with configurable latency and fault injection: a random error rate of a
//! given kind, a failure or a crash at the Nth call. It records every call for assertions.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use stackwright_core::{
    Args, Created, ErrorKind, Found, Handler, Input, Observed, OpContext, Outputs, PropertyChange, Provider,
    ProviderError, Resource, Stored,
};

/// The `test:Item` resource type.
pub struct Item;

impl Resource for Item {
    const TYPE: &'static str = "test:Item";
    type Args = ItemArgs;
    type Outputs = ItemOutputs;
}

/// Arguments of `test:Item`.
#[derive(Clone, Default, Serialize, Deserialize, Args)]
pub struct ItemArgs {
    /// Any value; updated in place.
    #[serde(default)]
    pub value: Input<Value>,
    /// A change replaces the item.
    #[sw(replace)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<Input<String>>,
    /// A secret value; updated in place.
    #[sw(secret)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<Input<String>>,
}

/// Outputs of `test:Item`.
#[derive(Clone, Serialize, Deserialize, Outputs)]
pub struct ItemOutputs {
    /// The stored value.
    pub value: Value,
    /// Counts writes; changes on every update.
    #[sw(computed)]
    pub revision: u64,
    /// A token the provider generated at create time, secret.
    #[sw(secret)]
    pub token: String,
}

/// One object in the test world.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorldItem {
    /// The resource it was created for.
    pub urn: String,
    /// Its value.
    pub value: Value,
    /// Its key.
    pub key: Option<String>,
    /// Its secret.
    pub secret: Option<String>,
    /// Write count.
    pub revision: u64,
    /// Generated token.
    pub token: String,
    /// The marker written at create time (the operation id), which `find` searches for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
}

/// Where the test provider keeps its objects.
#[derive(Debug, Clone)]
pub enum World {
    /// In memory, shared by clones.
    Memory(Arc<Mutex<BTreeMap<String, WorldItem>>>),
    /// One JSON file per object in a directory, written atomically.
    Directory(PathBuf),
}

impl World {
    /// An empty in-memory world.
    pub fn memory() -> Self {
        World::Memory(Arc::default())
    }

    /// A world stored in `dir`.
    pub fn directory(dir: impl Into<PathBuf>) -> Self {
        World::Directory(dir.into())
    }

    /// All objects, by id.
    pub fn items(&self) -> BTreeMap<String, WorldItem> {
        match self {
            World::Memory(m) => m.lock().expect("world lock").clone(),
            World::Directory(dir) => {
                let mut out = BTreeMap::new();
                if let Ok(entries) = std::fs::read_dir(dir) {
                    for e in entries.flatten() {
                        let name = e.file_name().to_string_lossy().into_owned();
                        if let Some(id) = name.strip_suffix(".json")
                            && let Ok(bytes) = std::fs::read(e.path())
                            && let Ok(item) = serde_json::from_slice(&bytes)
                        {
                            out.insert(id.to_owned(), item);
                        }
                    }
                }
                out
            }
        }
    }

    fn get(&self, id: &str) -> Option<WorldItem> {
        match self {
            World::Memory(m) => m.lock().expect("world lock").get(id).cloned(),
            World::Directory(dir) => {
                std::fs::read(dir.join(format!("{id}.json"))).ok().and_then(|b| serde_json::from_slice(&b).ok())
            }
        }
    }

    /// Writes an object (also used by tests to cause drift).
    pub fn put(&self, id: &str, item: WorldItem) -> Result<(), ProviderError> {
        match self {
            World::Memory(m) => {
                m.lock().expect("world lock").insert(id.to_owned(), item);
                Ok(())
            }
            World::Directory(dir) => {
                let io = |e: std::io::Error| ProviderError::other(format!("test world {}: {e}", dir.display()));
                std::fs::create_dir_all(dir).map_err(io)?;
                let tmp = dir.join(format!("{id}.tmp"));
                std::fs::write(&tmp, serde_json::to_vec(&item).expect("item serializes")).map_err(io)?;
                std::fs::rename(&tmp, dir.join(format!("{id}.json"))).map_err(io)
            }
        }
    }

    /// Removes an object (also used by tests to cause drift).
    pub fn remove(&self, id: &str) {
        match self {
            World::Memory(m) => {
                m.lock().expect("world lock").remove(id);
            }
            World::Directory(dir) => {
                let _ = std::fs::remove_file(dir.join(format!("{id}.json")));
            }
        }
    }
}

/// What to inject into calls.
#[derive(Debug, Clone)]
pub struct Faults {
    /// Added to every call before it does its work (the request travelling).
    pub latency: Duration,
    /// Added after the work is done, before the call returns (the response travelling). A crash
    /// in this window finds the work done but unacknowledged, as with a real cloud.
    pub response_latency: Duration,
    /// Probability in [0, 1] that a call fails with `error_kind` before doing anything.
    pub error_rate: f64,
    /// The kind of injected random errors.
    pub error_kind: ErrorKind,
    /// Retry-after hint attached to injected throttling errors.
    pub retry_after: Option<Duration>,
    /// The Nth call (1-based, counting create, update and delete) fails with `error_kind`.
    pub fail_at_call: Option<u64>,
    /// The Nth call (1-based) kills the process after doing its work, before it returns.
    pub crash_at_call: Option<u64>,
    /// Seed for the random errors.
    pub seed: u64,
    /// Object ids chosen by the "server" (random), as real APIs do, instead of the operation id;
    /// `find` then has to search for the tag written at create time.
    pub server_ids: bool,
    /// Whether `find` can recognise objects at all; without it the provider answers
    /// [`Found::Unknown`], like a provider that does not implement `find`.
    pub find: bool,
    /// Creating an item whose `key` another item already has fails with `conflict`, like an API
    /// with unique names.
    pub unique_keys: bool,
    /// The Nth call (1-based, counting create, update and delete) does its work and then fails
    /// with a transient error, as when the answer is lost after the server committed.
    pub lose_answer_at_call: Option<u64>,
    /// Probability in [0, 1] that a create, update or delete does its work and then fails with a
    /// transient error (the answer lost on the way back), drawn from the same seeded generator
    /// as `error_rate`.
    pub lose_answer_rate: f64,
    /// The Nth call (1-based) panics before doing anything.
    pub panic_at_call: Option<u64>,
    /// The first this many `read`, `find` and `import` calls fail with `error_kind`.
    pub read_failures: u64,
    /// The first this many `find` calls answer "absent" even when the object exists, like an
    /// API whose reads lag behind its writes.
    pub stale_finds: u64,
    /// Injected errors also echo the request the way real APIs do: as a JSON body (the
    /// secret JSON-escaped, the `value` argument as nested JSON) and as a URL (the secret
    /// percent-encoded with `%20` and form-encoded with `+`).
    pub echo_escaped: bool,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            latency: Duration::ZERO,
            response_latency: Duration::ZERO,
            error_rate: 0.0,
            error_kind: ErrorKind::Transient,
            retry_after: None,
            fail_at_call: None,
            crash_at_call: None,
            seed: 1,
            server_ids: false,
            find: true,
            unique_keys: false,
            lose_answer_at_call: None,
            lose_answer_rate: 0.0,
            panic_at_call: None,
            read_failures: 0,
            stale_finds: 0,
            echo_escaped: false,
        }
    }
}

/// One recorded call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRecord {
    /// `create`, `update`, `delete`, `read` or `find`.
    pub op: &'static str,
    /// The resource.
    pub urn: String,
    /// The stored object's id, for calls on an existing object (`read`, `update`, `delete`).
    pub id: Option<String>,
    /// Global sequence number when the call started.
    pub started: u64,
    /// Global sequence number when it finished.
    pub finished: u64,
    /// Whether it succeeded.
    pub ok: bool,
}

/// The test provider's shared state: world, faults, counters and call log.
pub struct TestProviderState {
    world: World,
    faults: Faults,
    calls: AtomicU64,
    reads: AtomicU64,
    finds: AtomicU64,
    sequence: AtomicU64,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    rng: Mutex<rand::rngs::StdRng>,
    log: Mutex<Vec<CallRecord>>,
}

/// A handle on a test provider; clones share state.
#[derive(Clone)]
pub struct TestProvider {
    state: Arc<TestProviderState>,
    name: String,
    max_concurrency: Option<usize>,
}

impl TestProvider {
    /// A test provider named `test` over `world`.
    pub fn new(world: World, faults: Faults) -> Self {
        let rng = rand::rngs::StdRng::seed_from_u64(faults.seed);
        TestProvider {
            state: Arc::new(TestProviderState {
                world,
                faults,
                calls: AtomicU64::new(0),
                reads: AtomicU64::new(0),
                finds: AtomicU64::new(0),
                sequence: AtomicU64::new(0),
                in_flight: AtomicUsize::new(0),
                max_in_flight: AtomicUsize::new(0),
                rng: Mutex::new(rng),
                log: Mutex::new(Vec::new()),
            }),
            name: "test".into(),
            max_concurrency: None,
        }
    }

    /// The same provider registered under another instance name (two instances of one type, as
    /// with two servers or two teams). Clones keep sharing the world.
    pub fn named(mut self, name: &str) -> Self {
        self.name = name.to_owned();
        self
    }

    /// Sets the provider's own concurrency limit.
    pub fn with_max_concurrency(mut self, limit: usize) -> Self {
        self.max_concurrency = Some(limit);
        self
    }

    /// The provider to register with a stack.
    pub fn provider(&self) -> Provider {
        let p = Provider::new(self.name.clone()).resource::<Item>(ItemHandler { state: self.state.clone() });
        match self.max_concurrency {
            Some(n) => p.max_concurrency(n),
            None => p,
        }
    }

    /// The world.
    pub fn world(&self) -> &World {
        &self.state.world
    }

    /// Every call so far, in finishing order.
    pub fn calls(&self) -> Vec<CallRecord> {
        self.state.log.lock().expect("log lock").clone()
    }

    /// The most calls that were ever in flight at once.
    pub fn max_in_flight(&self) -> usize {
        self.state.max_in_flight.load(Ordering::SeqCst)
    }
}

struct ItemHandler {
    state: Arc<TestProviderState>,
}

impl ItemHandler {
    /// Runs one call with latency and faults. Injected errors quote `echo`, like APIs that
    /// repeat the request in their error bodies, so tests can check the engine scrubs secrets.
    async fn call<T>(
        &self,
        op: &'static str,
        urn: &str,
        id: Option<&str>,
        counts: bool,
        echo: Option<&str>,
        work: impl FnOnce() -> Result<T, ProviderError>,
    ) -> Result<T, ProviderError> {
        let echo = echo.map(|e| format!(", request secret={e}")).unwrap_or_default();
        let s = &self.state;
        let started = s.sequence.fetch_add(1, Ordering::SeqCst);
        let now = s.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        s.max_in_flight.fetch_max(now, Ordering::SeqCst);
        if !s.faults.latency.is_zero() {
            tokio::time::sleep(s.faults.latency).await;
        }
        let n = if counts { s.calls.fetch_add(1, Ordering::SeqCst) + 1 } else { 0 };
        let failing_read = !counts && s.reads.fetch_add(1, Ordering::SeqCst) < s.faults.read_failures;
        let injected = if failing_read {
            Some(ProviderError::new(s.faults.error_kind, format!("injected failure of a read ({op} {urn}{echo})")))
        } else if counts && s.faults.fail_at_call == Some(n) {
            let mut e =
                ProviderError::new(s.faults.error_kind, format!("injected failure at call {n} ({op} {urn}{echo})"));
            e.retry_after = s.faults.retry_after;
            Some(e)
        } else if s.faults.error_rate > 0.0 && s.rng.lock().expect("rng lock").random_bool(s.faults.error_rate.min(1.0))
        {
            let mut e = ProviderError::new(
                s.faults.error_kind,
                format!("injected random {} error ({op} {urn}{echo})", s.faults.error_kind),
            );
            e.retry_after = s.faults.retry_after;
            Some(e)
        } else {
            None
        };
        if counts && s.faults.panic_at_call == Some(n) {
            s.in_flight.fetch_sub(1, Ordering::SeqCst);
            panic!("injected panic at call {n} ({op} {urn}{echo})");
        }
        let result = match injected {
            Some(e) => Err(e),
            None => work(),
        };
        let lose_answer = counts
            && result.is_ok()
            && (s.faults.lose_answer_at_call == Some(n)
                || (s.faults.lose_answer_rate > 0.0
                    && s.rng.lock().expect("rng lock").random_bool(s.faults.lose_answer_rate.min(1.0))));
        let result = match result {
            Ok(_) if lose_answer => Err(ProviderError::transient(format!(
                "injected lost answer at call {n} ({op} {urn}): the connection closed after the request was sent"
            ))),
            other => other,
        };
        if !s.faults.response_latency.is_zero() {
            tokio::time::sleep(s.faults.response_latency).await;
        }
        if counts && s.faults.crash_at_call == Some(n) {
            // Simulates the process dying after the cloud did the work but before we heard back.
            std::process::abort();
        }
        s.in_flight.fetch_sub(1, Ordering::SeqCst);
        let finished = s.sequence.fetch_add(1, Ordering::SeqCst);
        s.log.lock().expect("log lock").push(CallRecord {
            op,
            urn: urn.to_owned(),
            id: id.map(str::to_owned),
            started,
            finished,
            ok: result.is_ok(),
        });
        result
    }
}

/// What an injected error quotes of a create or update request (see [`Faults::echo_escaped`]).
fn echo_request(faults: &Faults, args: &ItemArgs) -> Option<String> {
    let secret = args.secret.as_ref().map(|s| s.get().as_str())?;
    if !faults.echo_escaped {
        return Some(secret.to_owned());
    }
    let body = serde_json::json!({ "secret": secret, "value": args.value.get() });
    let path = percent_encoding::utf8_percent_encode(secret, percent_encoding::NON_ALPHANUMERIC);
    let query: String = form_urlencoded::Serializer::new(String::new()).append_pair("secret", secret).finish();
    Some(format!("{secret}, body {body}, url https://api.test/items/{path}?{query}"))
}

fn outputs(item: &WorldItem) -> ItemOutputs {
    ItemOutputs { value: item.value.clone(), revision: item.revision, token: item.token.clone() }
}

fn args_of(item: &WorldItem) -> ItemArgs {
    ItemArgs {
        value: Input::Value(item.value.clone()),
        key: item.key.clone().map(Input::Value),
        secret: item.secret.clone().map(Input::Value),
    }
}

#[async_trait]
impl Handler<Item> for ItemHandler {
    async fn create(&self, ctx: &OpContext, args: &ItemArgs) -> Result<Created<ItemOutputs>, ProviderError> {
        let echo = echo_request(&self.state.faults, args);
        self.call("create", ctx.urn.as_str(), None, true, echo.as_deref(), || {
            let faults = &self.state.faults;
            let key = args.key.as_ref().map(|k| k.get().clone());
            if faults.unique_keys
                && let Some(k) = &key
                && self.state.world.items().values().any(|i| i.key.as_ref() == Some(k))
            {
                return Err(ProviderError::conflict(format!("an item with key {k:?} already exists")));
            }
            // By default the operation id doubles as the object id, so `find` recovers it after a
            // crash; with server ids, `find` must search for the tag.
            let id = if faults.server_ids {
                format!("item-{:016x}", rand::random::<u64>())
            } else {
                ctx.operation_id.clone()
            };
            let item = WorldItem {
                urn: ctx.urn.to_string(),
                value: args.value.get().clone(),
                key,
                secret: args.secret.as_ref().map(|k| k.get().clone()),
                revision: 1,
                token: format!("tok-{}", &id[id.len().saturating_sub(8)..]),
                tag: Some(ctx.operation_id.clone()),
            };
            self.state.world.put(&id, item.clone())?;
            Ok(Created { id, outputs: outputs(&item) })
        })
        .await
    }

    async fn read(&self, ctx: &OpContext, stored: &Stored<Item>) -> Result<Option<Observed<Item>>, ProviderError> {
        self.call("read", ctx.urn.as_str(), Some(&stored.id), false, None, || {
            Ok(self.state.world.get(&stored.id).map(|item| Observed {
                id: stored.id.clone(),
                args: args_of(&item),
                outputs: outputs(&item),
            }))
        })
        .await
    }

    async fn update(
        &self,
        ctx: &OpContext,
        stored: &Stored<Item>,
        args: &ItemArgs,
        _changes: &[PropertyChange],
    ) -> Result<ItemOutputs, ProviderError> {
        let echo = echo_request(&self.state.faults, args);
        self.call("update", ctx.urn.as_str(), Some(&stored.id), true, echo.as_deref(), || {
            let mut item = self
                .state
                .world
                .get(&stored.id)
                .ok_or_else(|| ProviderError::not_found(format!("item {} does not exist", stored.id)))?;
            item.value = args.value.get().clone();
            item.secret = args.secret.as_ref().map(|k| k.get().clone());
            item.revision += 1;
            self.state.world.put(&stored.id, item.clone())?;
            Ok(outputs(&item))
        })
        .await
    }

    async fn delete(&self, ctx: &OpContext, stored: &Stored<Item>) -> Result<(), ProviderError> {
        self.call("delete", ctx.urn.as_str(), Some(&stored.id), true, None, || {
            self.state.world.remove(&stored.id);
            Ok(())
        })
        .await
    }

    async fn find(&self, ctx: &OpContext, args: &ItemArgs) -> Result<Found<ItemOutputs>, ProviderError> {
        let echo = echo_request(&self.state.faults, args);
        self.call("find", ctx.urn.as_str(), None, false, echo.as_deref(), || {
            if !self.state.faults.find {
                return Ok(Found::Unknown);
            }
            if self.state.finds.fetch_add(1, Ordering::SeqCst) < self.state.faults.stale_finds {
                return Ok(Found::Absent);
            }
            let tagged = self.state.world.items().into_iter().find(|(_, i)| i.tag.as_ref() == Some(&ctx.operation_id));
            Ok(match tagged {
                Some((id, item)) => Found::Object(Created { id, outputs: outputs(&item) }),
                None => Found::Absent,
            })
        })
        .await
    }

    async fn import(&self, ctx: &OpContext, id: &str) -> Result<Option<Observed<Item>>, ProviderError> {
        self.call("read", ctx.urn.as_str(), Some(id), false, None, || {
            Ok(self.state.world.get(id).map(|item| Observed {
                id: id.to_owned(),
                args: args_of(&item),
                outputs: outputs(&item),
            }))
        })
        .await
    }
}
