//! Requests, responses and notifications, each addressed to a typed [`Target`].

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::RequestError;
use crate::ids::{ConsumerId, ProducerId, RouterId, TransportId};

/// The object a request or notification is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Target {
    Worker,
    Router(RouterId),
    Transport(TransportId),
    Producer(ProducerId),
    Consumer(ConsumerId),
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Worker => f.write_str("worker"),
            Target::Router(id) => write!(f, "{} {id}", RouterId::LABEL),
            Target::Transport(id) => write!(f, "{} {id}", TransportId::LABEL),
            Target::Producer(id) => write!(f, "{} {id}", ProducerId::LABEL),
            Target::Consumer(id) => write!(f, "{} {id}", ConsumerId::LABEL),
        }
    }
}

/// A request from the controller, with the object it is addressed to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Request {
    Worker(WorkerRequest),
    Router(RouterId, RouterRequest),
    Transport(TransportId, TransportRequest),
    Producer(ProducerId, ProducerRequest),
    Consumer(ConsumerId, ConsumerRequest),
}

impl Request {
    pub fn target(&self) -> Target {
        match self {
            Request::Worker(_) => Target::Worker,
            Request::Router(id, _) => Target::Router(*id),
            Request::Transport(id, _) => Target::Transport(*id),
            Request::Producer(id, _) => Target::Producer(*id),
            Request::Consumer(id, _) => Target::Consumer(*id),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum WorkerRequest {
    /// Answered with [`Response::WorkerDump`].
    Dump,
    /// Creates an empty router with the id the controller chose.
    CreateRouter { router_id: RouterId },
    /// Closes every router and ends the worker process after the response is written.
    Close,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum RouterRequest {
    /// Answered with [`Response::RouterDump`].
    Dump,
    Close,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TransportRequest {
    Dump,
    Close,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ProducerRequest {
    Dump,
    Close,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ConsumerRequest {
    Dump,
    Close,
}

/// A successful answer; which variant depends on the request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Response {
    /// The request succeeded and has nothing to report.
    Ok,
    WorkerDump(WorkerDump),
    RouterDump(RouterDump),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerDump {
    pub pid: u32,
    pub router_ids: Vec<RouterId>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouterDump {
    pub id: RouterId,
    pub transport_ids: Vec<TransportId>,
    pub producer_ids: Vec<ProducerId>,
    pub consumer_ids: Vec<ConsumerId>,
}

/// Something that happened in the worker without being asked, addressed to the object it concerns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Notification {
    Worker(WorkerNotification),
    Router(RouterId, RouterNotification),
    Transport(TransportId, TransportNotification),
    Producer(ProducerId, ProducerNotification),
    Consumer(ConsumerId, ConsumerNotification),
}

impl Notification {
    pub fn target(&self) -> Target {
        match self {
            Notification::Worker(_) => Target::Worker,
            Notification::Router(id, _) => Target::Router(*id),
            Notification::Transport(id, _) => Target::Transport(*id),
            Notification::Producer(id, _) => Target::Producer(*id),
            Notification::Consumer(id, _) => Target::Consumer(*id),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum WorkerNotification {
    /// Sent once when the worker's loop is ready for requests.
    Running { pid: u32 },
}

/// Why an object closed without its owner asking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CloseReason {
    /// The worker process hosting it exited or was killed. Sent by the controller on the worker's behalf.
    WorkerDied,
    /// The object that contained it closed.
    ParentClosed,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum RouterNotification {
    Closed { reason: CloseReason },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TransportNotification {
    Closed { reason: CloseReason },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ProducerNotification {
    Closed { reason: CloseReason },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ConsumerNotification {
    Closed { reason: CloseReason },
}

/// Everything the controller writes to a worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ControllerMessage {
    Request { id: u32, request: Request },
}

/// Everything a worker writes to the controller.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum WorkerMessage {
    Response { id: u32, result: Result<Response, RequestError> },
    Notification(Notification),
}
