//! Group commit: steps send their records to one writer task, which appends everything that
//! has queued up with a single flush and then acknowledges each sender.
//!
//! A step's result may be *deferred*: it joins the next write anyone makes (in practice the
//! pending record of the step it unblocks), so a chain of N steps costs about N syncs instead of
//! 2N. Order is what keeps this safe: every write first takes every deferred record, so once a
//! step's pending record is durable, every result deferred before it is durable too — a provider
//! is never called before the results it was computed from are on disk. A deferred record that
//! no write picks up is flushed by itself a moment later ([`LINGER`]): one timer per handle, armed
//! by the first deferred record, so a burst of results costs one extra write at most.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use stackwright_state::{Journal, Record, StackState, StateError};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

type Request = (Vec<Record>, oneshot::Sender<Result<(), String>>);

/// How long a deferred record waits for a write to join before it is written by itself. Nobody
/// waits for it (the run's last step flushes explicitly), so it can be long next to the time the
/// next step of a chain takes to make its pending record durable, which then carries it: a
/// shorter wait turns a chain's N syncs back into up to 2N whenever the machine is busy.
pub(crate) const LINGER: Duration = Duration::from_millis(5);

/// Sends records to the writer task.
#[derive(Clone)]
pub(crate) struct JournalHandle {
    tx: mpsc::UnboundedSender<Request>,
    deferred: Arc<Mutex<Vec<Record>>>,
    /// Whether a timer to flush the deferred records is running.
    armed: Arc<AtomicBool>,
}

impl JournalHandle {
    /// A handle that accepts no records, for runs that only read (a preview's refresh).
    pub fn closed() -> Self {
        let (tx, _) = mpsc::unbounded_channel();
        JournalHandle { tx, deferred: Arc::default(), armed: Arc::default() }
    }

    /// Sends `records` after every deferred record, in one request; the receiver resolves when
    /// they are durable.
    fn send(&self, records: Vec<Record>) -> Result<oneshot::Receiver<Result<(), String>>, String> {
        let (ack, done) = oneshot::channel();
        // Taking the deferred records and sending under one lock keeps the journal's order the
        // order in which records were handed over.
        let mut deferred = self.deferred.lock().expect("deferred lock");
        let mut all = std::mem::take(&mut *deferred);
        all.extend(records);
        if all.is_empty() {
            let _ = ack.send(Ok(()));
            return Ok(done);
        }
        self.tx.send((all, ack)).map_err(|_| "the state journal is closed".to_string())?;
        Ok(done)
    }

    /// Appends records (after any deferred ones) and waits until they are durable.
    pub async fn write(&self, records: Vec<Record>) -> Result<(), String> {
        if records.is_empty() {
            return Ok(());
        }
        let done = self.send(records)?;
        done.await.map_err(|_| "the state journal writer stopped".to_string())?
    }

    /// Hands over records to join the next write; a timer flushes them if no write comes within
    /// [`LINGER`].
    pub fn defer(&self, records: Vec<Record>) {
        if records.is_empty() {
            return;
        }
        self.deferred.lock().expect("deferred lock").extend(records);
        if self.armed.swap(true, Ordering::SeqCst) {
            return;
        }
        // The timer holds the writer only weakly: it must not keep it running after the last
        // handle is dropped (every run flushes explicitly before it lets go).
        let (tx, deferred, armed) = (self.tx.downgrade(), self.deferred.clone(), self.armed.clone());
        tokio::spawn(async move {
            tokio::time::sleep(LINGER).await;
            // Disarm before taking the records, so a record deferred meanwhile arms a new timer
            // or is taken by this flush; none is left behind.
            armed.store(false, Ordering::SeqCst);
            let Some(tx) = tx.upgrade() else { return };
            let _ = JournalHandle { tx, deferred, armed }.flush().await;
        });
    }

    /// Writes every deferred record now and waits until they are durable.
    pub async fn flush(&self) -> Result<(), String> {
        let done = self.send(Vec::new())?;
        done.await.map_err(|_| "the state journal writer stopped".to_string())?
    }
}

/// The state a writer keeps current: records are applied to it once durable.
pub(crate) trait Applied: Send + 'static {
    /// Applies one durable record.
    fn apply(&mut self, record: &Record);
}

impl Applied for StackState {
    fn apply(&mut self, record: &Record) {
        StackState::apply(self, record)
    }
}

/// Shared with the run that planned from it: copied on the first durable record, so a run that
/// writes nothing copies nothing.
impl Applied for Arc<StackState> {
    fn apply(&mut self, record: &Record) {
        Arc::make_mut(self).apply(record)
    }
}

/// What the writer reports when it stops.
pub(crate) struct JournalStats {
    pub bytes: u64,
    pub flushes: u64,
}

/// Starts the writer. Records are applied to `state` once durable. Dropping every handle stops
/// the writer.
pub(crate) fn spawn<S: Applied>(
    mut journal: Box<dyn Journal>,
    state: Arc<Mutex<S>>,
) -> (JournalHandle, JoinHandle<Result<JournalStats, StateError>>) {
    let (tx, mut rx) = mpsc::unbounded_channel::<Request>();
    let task = tokio::spawn(async move {
        let mut failure: Option<String> = None;
        let mut flushes = 0;
        let mut first_error = None;
        while let Some(first) = rx.recv().await {
            let mut batch = vec![first];
            while let Ok(more) = rx.try_recv() {
                batch.push(more);
            }
            if let Some(message) = &failure {
                for (_, ack) in batch {
                    let _ = ack.send(Err(message.clone()));
                }
                continue;
            }
            let records: Vec<Record> = batch.iter().flat_map(|(r, _)| r.iter().cloned()).collect();
            match journal.append(&records).await {
                Ok(()) => {
                    flushes += 1;
                    let mut s = state.lock().expect("state lock");
                    for r in &records {
                        s.apply(r);
                    }
                    drop(s);
                    for (_, ack) in batch {
                        let _ = ack.send(Ok(()));
                    }
                }
                Err(e) => {
                    let message = format!("could not write the state journal: {e}");
                    failure = Some(message.clone());
                    first_error = Some(e);
                    for (_, ack) in batch {
                        let _ = ack.send(Err(message.clone()));
                    }
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(JournalStats { bytes: journal.bytes_written(), flushes }),
        }
    });
    (JournalHandle { tx, deferred: Arc::default(), armed: Arc::default() }, task)
}

#[cfg(test)]
mod tests {
    use super::*;
    use stackwright_core::Urn;

    /// A journal that keeps each append (one flush) as a group.
    struct Groups(Arc<Mutex<Vec<Vec<Record>>>>);

    #[async_trait::async_trait]
    impl Journal for Groups {
        async fn append(&mut self, records: &[Record]) -> Result<(), StateError> {
            self.0.lock().unwrap().push(records.to_vec());
            Ok(())
        }
        fn bytes_written(&self) -> u64 {
            0
        }
    }

    fn remove(name: &str) -> Record {
        Record::Remove { op: None, urn: Urn::from(name) }
    }

    #[tokio::test]
    async fn a_deferred_result_joins_the_next_write_ahead_of_it_in_one_flush() {
        let groups = Arc::new(Mutex::new(Vec::new()));
        let state = Arc::new(Mutex::new(StackState::new("dev")));
        let (writer, task) = spawn(Box::new(Groups(groups.clone())), state);
        writer.defer(vec![remove("result")]);
        writer.write(vec![remove("next-pending")]).await.unwrap();
        // Nothing is left for the linger timer or the final flush to write.
        writer.flush().await.unwrap();
        drop(writer);
        let stats = task.await.unwrap().unwrap();
        assert_eq!(stats.flushes, 1);
        assert_eq!(*groups.lock().unwrap(), vec![vec![remove("result"), remove("next-pending")]]);
    }

    #[tokio::test]
    async fn an_update_that_writes_nothing_leaves_the_shared_state_uncopied() {
        let loaded = Arc::new(StackState::new("dev"));
        let shared = Arc::new(Mutex::new(loaded.clone()));
        let (writer, task) = spawn(Box::new(Groups(Arc::default())), shared.clone());
        writer.write(Vec::new()).await.unwrap();
        writer.flush().await.unwrap();
        drop(writer);
        assert_eq!(task.await.unwrap().unwrap().flushes, 0);
        assert!(Arc::ptr_eq(&shared.lock().unwrap(), &loaded), "no record, no copy");

        // The first durable record gives the writer its own copy; the loaded state is untouched.
        let (writer, task) = spawn(Box::new(Groups(Arc::default())), shared.clone());
        let resource = stackwright_state::ResourceState {
            urn: Urn::from("a"),
            type_token: "builtin:Data".into(),
            provider: "builtin".into(),
            id: "a".into(),
            inputs: serde_json::json!({}),
            outputs: serde_json::json!({}),
            dependencies: Vec::new(),
            protect: false,
            retain_on_delete: false,
        };
        writer.write(vec![Record::Upsert { op: None, resource, retire_previous: false }]).await.unwrap();
        drop(writer);
        task.await.unwrap().unwrap();
        assert!(!Arc::ptr_eq(&shared.lock().unwrap(), &loaded));
        assert!(shared.lock().unwrap().resources.contains_key(&Urn::from("a")));
        assert!(loaded.resources.is_empty());
    }
}
