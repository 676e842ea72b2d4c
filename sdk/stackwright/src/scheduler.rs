//! Runs a DAG of steps concurrently: at most `parallel` at once and at most a provider's own
//! limit per provider, a step only after all its dependencies succeeded; a failure skips its
//! dependents but not its neighbours; an interrupt stops scheduling and waits for what runs.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;

struct Counters {
    total: AtomicUsize,
    per_provider: Vec<AtomicUsize>,
    freed: Notify,
}

/// Why a node's work did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeStop<E> {
    /// It gave up its turn to an interrupt before doing anything; it counts as not started.
    NotStarted,
    /// It failed.
    Failed(E),
}

/// A step's place under the parallel and provider limits. Steps are started a little ahead of
/// the limits, so a step can prepare (resolve its arguments, make its pending record durable)
/// while others call their providers; it takes a call permit with [`Slot::acquire`] just before
/// its provider call and gives it back with [`Slot::release`] as soon as the call returns.
pub struct Slot {
    counters: Option<Arc<Counters>>,
    provider: usize,
    released: AtomicBool,
    calls: Option<(Arc<Semaphore>, Arc<Semaphore>)>,
    held: std::sync::Mutex<Option<(OwnedSemaphorePermit, OwnedSemaphorePermit)>>,
    interrupt: Option<watch::Receiver<bool>>,
}

impl Slot {
    /// A slot that counts against nothing (for nested calls that must not free their parent's).
    pub fn detached() -> Self {
        Slot {
            counters: None,
            provider: 0,
            released: AtomicBool::new(true),
            calls: None,
            held: std::sync::Mutex::new(None),
            interrupt: None,
        }
    }

    /// Waits for a call permit (the provider's first, then the global one). Returns false if the
    /// run was interrupted: the step must not call its provider. Idempotent while held.
    pub async fn acquire(&self) -> bool {
        let Some((global, provider)) = &self.calls else { return true };
        if self.held.lock().expect("slot lock").is_some() {
            return true;
        }
        let interrupted = || self.interrupt.as_ref().is_some_and(|i| *i.borrow());
        if interrupted() {
            return false;
        }
        let (Ok(p), Ok(g)) = (provider.clone().acquire_owned().await, global.clone().acquire_owned().await) else {
            return false;
        };
        if interrupted() {
            return false;
        }
        *self.held.lock().expect("slot lock") = Some((p, g));
        true
    }

    /// Gives the call permit back and frees the step's place for another. Idempotent.
    pub fn release(&self) {
        self.held.lock().expect("slot lock").take();
        if let Some(c) = &self.counters
            && !self.released.swap(true, Ordering::SeqCst)
        {
            c.total.fetch_sub(1, Ordering::SeqCst);
            c.per_provider[self.provider].fetch_sub(1, Ordering::SeqCst);
            c.freed.notify_one();
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.release();
    }
}

/// How one node of the DAG ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeOutcome<T, E> {
    /// It ran and succeeded.
    Done(T),
    /// It ran and failed.
    Failed(E),
    /// It did not run because this dependency failed (or was itself skipped).
    Skipped(usize),
    /// It was never started (interrupted, or blocked by a cycle).
    NotStarted,
}

/// One node: its dependencies and the provider whose limit it counts against.
pub struct DagNode {
    /// Indices of nodes that must succeed first.
    pub deps: Vec<usize>,
    /// The provider's name.
    pub provider: String,
}

/// Runs the DAG. `work(i, slot)` is spawned when node `i` is ready.
pub async fn run_dag<T, E, F, Fut>(
    nodes: &[DagNode],
    limits: &HashMap<String, usize>,
    parallel: usize,
    mut interrupt: watch::Receiver<bool>,
    work: F,
) -> Vec<NodeOutcome<T, E>>
where
    T: Send + 'static,
    E: Send + 'static,
    F: Fn(usize, Slot) -> Fut,
    Fut: Future<Output = Result<T, NodeStop<E>>> + Send + 'static,
{
    let n = nodes.len();
    let parallel = parallel.max(1);
    let mut outcomes: Vec<Option<NodeOutcome<T, E>>> = (0..n).map(|_| None).collect();
    let mut remaining: Vec<usize> = nodes.iter().map(|d| d.deps.len()).collect();
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, node) in nodes.iter().enumerate() {
        for &d in &node.deps {
            dependents[d].push(i);
        }
    }
    // One ready queue per provider, so a saturated provider never makes us scan its backlog.
    let mut providers: Vec<&str> = Vec::new();
    let mut provider_index: HashMap<&str, usize> = HashMap::new();
    let node_provider: Vec<usize> = nodes
        .iter()
        .map(|node| {
            *provider_index.entry(node.provider.as_str()).or_insert_with(|| {
                providers.push(node.provider.as_str());
                providers.len() - 1
            })
        })
        .collect();
    let provider_limit: Vec<usize> = providers.iter().map(|p| limits.get(*p).copied().unwrap_or(usize::MAX)).collect();
    let global_calls = Arc::new(Semaphore::new(parallel));
    let provider_calls: Vec<Arc<Semaphore>> =
        provider_limit.iter().map(|l| Arc::new(Semaphore::new((*l).min(Semaphore::MAX_PERMITS)))).collect();
    // Started steps may run ahead of the call limits by this factor, preparing their next call.
    const LOOKAHEAD: usize = 2;
    let mut ready: Vec<VecDeque<usize>> = vec![VecDeque::new(); providers.len()];
    let counters = Arc::new(Counters {
        total: AtomicUsize::new(0),
        per_provider: (0..providers.len()).map(|_| AtomicUsize::new(0)).collect(),
        freed: Notify::new(),
    });
    for i in 0..n {
        if remaining[i] == 0 {
            ready[node_provider[i]].push_back(i);
        }
    }
    let mut running: JoinSet<(usize, Result<T, NodeStop<E>>)> = JoinSet::new();
    let mut interrupted = *interrupt.borrow();
    let mut interrupt_closed = false;
    let mut cursor = 0;
    loop {
        // Read the flag directly too: a step that just finished may have raced its change.
        interrupted |= *interrupt.borrow();
        while !interrupted && counters.total.load(Ordering::SeqCst) < parallel * LOOKAHEAD {
            let start = (0..providers.len()).map(|k| (cursor + k) % providers.len()).find(|&p| {
                !ready[p].is_empty()
                    && counters.per_provider[p].load(Ordering::SeqCst) < provider_limit[p].saturating_mul(LOOKAHEAD)
            });
            let Some(p) = start else { break };
            cursor = (p + 1) % providers.len();
            let i = ready[p].pop_front().expect("non-empty ready queue");
            counters.total.fetch_add(1, Ordering::SeqCst);
            counters.per_provider[p].fetch_add(1, Ordering::SeqCst);
            let slot = Slot {
                counters: Some(counters.clone()),
                provider: p,
                released: AtomicBool::new(false),
                calls: Some((global_calls.clone(), provider_calls[p].clone())),
                held: std::sync::Mutex::new(None),
                interrupt: Some(interrupt.clone()),
            };
            let fut = work(i, slot);
            running.spawn(async move { (i, fut.await) });
        }
        if running.is_empty() {
            break;
        }
        tokio::select! {
            joined = running.join_next() => {
                let Some(joined) = joined else { break };
                let (i, result) = match joined {
                    Ok(r) => r,
                    Err(e) => std::panic::resume_unwind(e.into_panic()),
                };
                match result {
                    Ok(v) => {
                        outcomes[i] = Some(NodeOutcome::Done(v));
                        for &d in &dependents[i] {
                            remaining[d] -= 1;
                            if remaining[d] == 0 && outcomes[d].is_none() {
                                ready[node_provider[d]].push_back(d);
                            }
                        }
                    }
                    // It gave up its turn to an interrupt; its dependents stay unstarted too.
                    Err(NodeStop::NotStarted) => {
                        interrupted = true;
                    }
                    Err(NodeStop::Failed(error)) => {
                        outcomes[i] = Some(NodeOutcome::Failed(error));
                        let mut queue = VecDeque::from([i]);
                        while let Some(f) = queue.pop_front() {
                            for &d in &dependents[f] {
                                if outcomes[d].is_none() {
                                    outcomes[d] = Some(NodeOutcome::Skipped(f));
                                    queue.push_back(d);
                                }
                            }
                        }
                    }
                }
            }
            _ = counters.freed.notified() => {}
            changed = interrupt.changed(), if !interrupted && !interrupt_closed => {
                match changed {
                    Ok(()) => interrupted = *interrupt.borrow(),
                    // Nobody can interrupt any more: stop polling, or this branch would spin.
                    Err(_) => interrupt_closed = true,
                }
            }
        }
    }
    outcomes.into_iter().map(|o| o.unwrap_or(NodeOutcome::NotStarted)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain_and_fan() -> Vec<DagNode> {
        // 0 -> 1 -> 2, 0 -> 3, 4 independent.
        vec![
            DagNode { deps: vec![], provider: "a".into() },
            DagNode { deps: vec![0], provider: "a".into() },
            DagNode { deps: vec![1], provider: "a".into() },
            DagNode { deps: vec![0], provider: "b".into() },
            DagNode { deps: vec![], provider: "b".into() },
        ]
    }

    #[tokio::test]
    async fn a_failure_skips_dependents_only() {
        let (_tx, rx) = watch::channel(false);
        let out = run_dag(&chain_and_fan(), &HashMap::new(), 4, rx, |i, _slot| async move {
            if i == 1 { Err(NodeStop::Failed("boom".to_string())) } else { Ok(i) }
        })
        .await;
        assert_eq!(out[0], NodeOutcome::Done(0));
        assert_eq!(out[1], NodeOutcome::Failed("boom".into()));
        assert_eq!(out[2], NodeOutcome::Skipped(1));
        assert_eq!(out[3], NodeOutcome::Done(3));
        assert_eq!(out[4], NodeOutcome::Done(4));
    }

    #[tokio::test]
    async fn provider_limits_are_respected() {
        let nodes: Vec<DagNode> = (0..20).map(|_| DagNode { deps: vec![], provider: "p".into() }).collect();
        let now = Arc::new(AtomicUsize::new(0));
        let max = Arc::new(AtomicUsize::new(0));
        let (_tx, rx) = watch::channel(false);
        let limits = HashMap::from([("p".to_string(), 3)]);
        let out = run_dag::<_, (), _, _>(&nodes, &limits, 10, rx, |_, slot| {
            let (now, max) = (now.clone(), max.clone());
            async move {
                assert!(slot.acquire().await);
                let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                max.fetch_max(n, Ordering::SeqCst);
                tokio::task::yield_now().await;
                tokio::time::sleep(std::time::Duration::from_millis(2)).await;
                now.fetch_sub(1, Ordering::SeqCst);
                slot.release();
                Ok(())
            }
        })
        .await;
        assert!(out.iter().all(|o| matches!(o, NodeOutcome::Done(()))));
        assert_eq!(max.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn an_interrupt_stops_scheduling_but_lets_running_steps_finish() {
        let nodes: Vec<DagNode> = (0..10)
            .map(|i| DagNode { deps: if i == 0 { vec![] } else { vec![i - 1] }, provider: "p".into() })
            .collect();
        let (tx, rx) = watch::channel(false);
        let tx = Arc::new(tx);
        let out = run_dag::<_, (), _, _>(&nodes, &HashMap::new(), 4, rx, |i, _slot| {
            let tx = tx.clone();
            async move {
                if i == 2 {
                    tx.send(true).unwrap();
                }
                Ok(i)
            }
        })
        .await;
        assert_eq!(out[2], NodeOutcome::Done(2), "the running step finishes");
        assert!(out[3..].iter().all(|o| *o == NodeOutcome::NotStarted));
    }
}
