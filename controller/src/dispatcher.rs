//! Notifications from workers, handed to whoever subscribed to the object they are about.

use std::collections::HashMap;
use std::sync::Mutex;

use octo_ipc::{Notification, Target};
use tokio::sync::mpsc;
use tracing::debug;

#[derive(Default)]
pub struct Dispatcher {
    subscribers: Mutex<HashMap<Target, Vec<mpsc::UnboundedSender<Notification>>>>,
}

impl Dispatcher {
    /// Every later notification addressed to `target` arrives on the returned receiver. Dropping
    /// the receiver ends the subscription.
    pub fn subscribe(&self, target: Target) -> mpsc::UnboundedReceiver<Notification> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.lock().entry(target).or_default().push(tx);
        rx
    }

    pub fn unsubscribe(&self, target: Target) {
        self.lock().remove(&target);
    }

    pub fn dispatch(&self, notification: Notification) {
        let target = notification.target();
        let mut subs = self.lock();
        let Some(list) = subs.get_mut(&target) else {
            debug!(%target, "notification with no subscriber");
            return;
        };
        list.retain(|tx| tx.send(notification.clone()).is_ok());
        if list.is_empty() {
            subs.remove(&target);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Target, Vec<mpsc::UnboundedSender<Notification>>>> {
        self.subscribers.lock().unwrap_or_else(|p| p.into_inner())
    }
}
