//! The worker core's face: every input the process receives goes through [`Worker::handle_input`].

use std::collections::{BTreeMap, VecDeque};
use std::time::Instant;

use octo_ipc::{
    ControllerMessage, ErrorCode, Notification, Request, RequestError, Response, RouterId, RouterRequest, Target,
    WorkerDump, WorkerMessage, WorkerNotification, WorkerRequest,
};

use super::router::Router;

/// Something that happened to the worker.
#[derive(Debug)]
pub enum Input {
    /// A decoded message from the controller.
    Controller(ControllerMessage),
}

/// Something the worker wants done.
#[derive(Debug, PartialEq)]
pub enum Output {
    /// A message for the controller.
    Controller(WorkerMessage),
}

pub struct Worker {
    pid: u32,
    routers: BTreeMap<RouterId, Router>,
    outputs: VecDeque<Output>,
    closed: bool,
}

impl Worker {
    /// A worker announces itself with [`WorkerNotification::Running`] so the controller knows the
    /// process got as far as its loop.
    pub fn new(pid: u32) -> Self {
        let mut outputs = VecDeque::new();
        outputs.push_back(Output::Controller(WorkerMessage::Notification(Notification::Worker(
            WorkerNotification::Running { pid },
        ))));
        Self { pid, routers: BTreeMap::new(), outputs, closed: false }
    }

    pub fn handle_input(&mut self, _now: Instant, input: Input) {
        match input {
            Input::Controller(ControllerMessage::Request { id, request }) => {
                let result = self.handle_request(request);
                self.outputs.push_back(Output::Controller(WorkerMessage::Response { id, result }));
            }
        }
    }

    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// The earliest instant at which the core wants a timeout; nothing is timed yet.
    pub fn poll_timeout(&self) -> Option<Instant> {
        None
    }

    /// True once the controller asked the worker to close: the shell flushes and exits.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    fn handle_request(&mut self, request: Request) -> Result<Response, RequestError> {
        if self.closed {
            return Err(RequestError::new(ErrorCode::InvalidState, "worker is closing"));
        }
        let target = request.target();
        match request {
            Request::Worker(req) => self.handle_worker_request(req),
            Request::Router(id, req) => {
                let router = self.routers.get(&id).ok_or_else(|| RequestError::not_found(target))?;
                match req {
                    RouterRequest::Dump => Ok(Response::RouterDump(router.dump())),
                    RouterRequest::Close => {
                        self.routers.remove(&id);
                        Ok(Response::Ok)
                    }
                }
            }
            // No router holds transports, producers or consumers yet, so any id is unknown.
            Request::Transport(..) | Request::Producer(..) | Request::Consumer(..) => {
                Err(RequestError::not_found(target))
            }
        }
    }

    fn handle_worker_request(&mut self, req: WorkerRequest) -> Result<Response, RequestError> {
        match req {
            WorkerRequest::Dump => Ok(Response::WorkerDump(WorkerDump {
                pid: self.pid,
                router_ids: self.routers.keys().copied().collect(),
            })),
            WorkerRequest::CreateRouter { router_id } => {
                if self.routers.contains_key(&router_id) {
                    return Err(RequestError::new(
                        ErrorCode::AlreadyExists,
                        format!("{} already exists", Target::Router(router_id)),
                    ));
                }
                self.routers.insert(router_id, Router::new(router_id));
                Ok(Response::Ok)
            }
            WorkerRequest::Close => {
                self.routers.clear();
                self.closed = true;
                Ok(Response::Ok)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use octo_ipc::{RouterDump, TransportId, TransportRequest};

    use super::*;

    fn request(worker: &mut Worker, id: u32, request: Request) -> Result<Response, RequestError> {
        worker.handle_input(Instant::now(), Input::Controller(ControllerMessage::Request { id, request }));
        match worker.poll_output() {
            Some(Output::Controller(WorkerMessage::Response { id: got, result })) => {
                assert_eq!(got, id);
                result
            }
            other => panic!("expected a response, got {other:?}"),
        }
    }

    fn started() -> Worker {
        let mut w = Worker::new(77);
        assert_eq!(
            w.poll_output(),
            Some(Output::Controller(WorkerMessage::Notification(Notification::Worker(WorkerNotification::Running {
                pid: 77
            }))))
        );
        w
    }

    #[test]
    fn routers_are_created_dumped_and_closed() {
        let mut w = started();
        let r = RouterId(5);
        assert_eq!(request(&mut w, 1, Request::Worker(WorkerRequest::CreateRouter { router_id: r })), Ok(Response::Ok));
        assert_eq!(
            request(&mut w, 2, Request::Router(r, RouterRequest::Dump)),
            Ok(Response::RouterDump(RouterDump {
                id: r,
                transport_ids: vec![],
                producer_ids: vec![],
                consumer_ids: vec![]
            }))
        );
        assert_eq!(
            request(&mut w, 3, Request::Worker(WorkerRequest::Dump)),
            Ok(Response::WorkerDump(WorkerDump { pid: 77, router_ids: vec![r] }))
        );
        assert_eq!(request(&mut w, 4, Request::Router(r, RouterRequest::Close)), Ok(Response::Ok));
        let err = request(&mut w, 5, Request::Router(r, RouterRequest::Dump)).unwrap_err();
        assert_eq!(err.code, ErrorCode::NotFound);
        assert_eq!(w.poll_output(), None);
    }

    #[test]
    fn duplicate_router_id_is_refused() {
        let mut w = started();
        let create = Request::Worker(WorkerRequest::CreateRouter { router_id: RouterId(1) });
        assert!(request(&mut w, 1, create.clone()).is_ok());
        assert_eq!(request(&mut w, 2, create).unwrap_err().code, ErrorCode::AlreadyExists);
    }

    #[test]
    fn unknown_target_is_named_in_the_error() {
        let mut w = started();
        let t = TransportId(0xabc);
        let err = request(&mut w, 9, Request::Transport(t, TransportRequest::Dump)).unwrap_err();
        assert_eq!(err.code, ErrorCode::NotFound);
        assert!(err.message.contains(&t.to_string()), "{err}");
        let r = RouterId(0xdef);
        let err = request(&mut w, 10, Request::Router(r, RouterRequest::Close)).unwrap_err();
        assert!(err.message.contains(&format!("router {r}")), "{err}");
    }

    #[test]
    fn close_answers_then_refuses_more() {
        let mut w = started();
        assert!(request(&mut w, 1, Request::Worker(WorkerRequest::CreateRouter { router_id: RouterId(1) })).is_ok());
        assert_eq!(request(&mut w, 2, Request::Worker(WorkerRequest::Close)), Ok(Response::Ok));
        assert!(w.is_closed());
        assert_eq!(request(&mut w, 3, Request::Worker(WorkerRequest::Dump)).unwrap_err().code, ErrorCode::InvalidState);
    }
}
