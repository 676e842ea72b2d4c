//! Group commit: steps send their records to one writer task, which appends everything that
//! has queued up with a single flush and then acknowledges each sender. A step waits for its
//! acknowledgement before its dependents start, so finished work is durable first.

use std::sync::{Arc, Mutex};

use stackwright_state::{Journal, Record, StackState, StateError};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

type Request = (Vec<Record>, oneshot::Sender<Result<(), String>>);

/// Sends records to the writer task.
#[derive(Clone)]
pub(crate) struct JournalHandle {
    tx: mpsc::UnboundedSender<Request>,
}

impl JournalHandle {
    /// A handle that accepts no records, for runs that only read (a preview's refresh).
    pub fn closed() -> Self {
        let (tx, _) = mpsc::unbounded_channel();
        JournalHandle { tx }
    }

    /// Appends records and waits until they are durable.
    pub async fn write(&self, records: Vec<Record>) -> Result<(), String> {
        if records.is_empty() {
            return Ok(());
        }
        let (ack, done) = oneshot::channel();
        self.tx.send((records, ack)).map_err(|_| "the state journal is closed".to_string())?;
        done.await.map_err(|_| "the state journal writer stopped".to_string())?
    }
}

/// What the writer reports when it stops.
pub(crate) struct JournalStats {
    pub bytes: u64,
    pub flushes: u64,
}

/// Starts the writer. Records are applied to `state` once durable. Dropping every handle stops
/// the writer.
pub(crate) fn spawn(
    mut journal: Box<dyn Journal>,
    state: Arc<Mutex<StackState>>,
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
    (JournalHandle { tx }, task)
}
