//! `Load`: kiosks issuing tickets through the given nodes until stopped,
//! keeping every ticket whose answer (201) arrived, for the tests that break
//! things under load and then check that nothing acknowledged is missing.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::api::{ApiClient, Ticket};
use super::eventually;

const WITHIN: Duration = Duration::from_secs(30);

/// Kiosks issuing through every given node until stopped; what was
/// acknowledged.
pub struct Load {
    running: Arc<AtomicBool>,
    acknowledged: Arc<Mutex<Vec<Ticket>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    pub fn start(apis: Vec<ApiClient>, branch: &'static str, service: &'static str) -> Load {
        let running = Arc::new(AtomicBool::new(true));
        let acknowledged = Arc::new(Mutex::new(Vec::new()));
        let tasks = apis
            .into_iter()
            .flat_map(|api| [api.clone(), api])
            .map(|api| {
                let (running, acknowledged) = (running.clone(), acknowledged.clone());
                tokio::spawn(async move {
                    while running.load(Ordering::SeqCst) {
                        match api.try_issue(branch, service).await {
                            Ok(t) => acknowledged.lock().expect("lock").push(t),
                            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                        }
                    }
                })
            })
            .collect();
        Load {
            running,
            acknowledged,
            tasks,
        }
    }

    pub fn count(&self) -> usize {
        self.acknowledged.lock().expect("lock").len()
    }

    pub async fn wait_more(&self, more: usize, what: &str) {
        let target = self.count() + more;
        eventually(what, WITHIN, || {
            std::future::ready((self.count() >= target).then_some(()))
        })
        .await;
    }

    pub async fn finish(self) -> Vec<Ticket> {
        self.running.store(false, Ordering::SeqCst);
        for task in self.tasks {
            task.await.expect("kiosk task");
        }
        let tickets = self.acknowledged.lock().expect("lock").clone();
        tickets
    }
}
