//! Piped copies: a producer or data producer of the room's main router, copied onto the room's
//! router on another worker through the pipe between the two, once per (producer, worker) however
//! many consumers there use it. The copy has the origin's id; the controller pauses, resumes and
//! closes it with its origin (the origin's pipe consumer follows the origin by itself).
//!
//! Locking as in `room.rs`: the state lock is never held across an await.

use octo_ipc::{
    ConsumerId, ConsumerRequest, DataConsumerId, DataConsumerRequest, DataProducerId, DataProducerRequest, ProducerId,
    ProducerRequest, Request, Response, RouterId, TransportId, TransportRequest,
};
use tracing::info;

use super::RoomError;
use super::room::Room;
use super::spread::forget_cell;

/// What is piped: a media producer or a data producer of the main router.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Origin {
    Producer(ProducerId),
    Data(DataProducerId),
}

impl Origin {
    pub(super) fn close_request(self) -> Request {
        match self {
            Origin::Producer(id) => Request::Producer(id, ProducerRequest::Close),
            Origin::Data(id) => Request::DataProducer(id, DataProducerRequest::Close),
        }
    }
}

impl Room {
    /// Makes sure `origin` (on the main router) has its piped copy on `worker`.
    pub(super) async fn ensure_copy(&self, origin: Origin, worker: usize) -> Result<(), RoomError> {
        if worker == self.worker {
            return Ok(());
        }
        let key = (origin, worker);
        // A copy found stale on the first round (its worker was replaced) is made again.
        for _ in 0..2 {
            let cell = self.open()?.piped.entry(key).or_default().clone();
            let ((), pid) = *cell.get_or_try_init(|| self.make_copy(origin, worker)).await?;
            if self.pid_of(worker) == Some(pid) {
                return Ok(());
            }
            forget_cell(&mut self.lock().piped, &key, &cell);
        }
        Err(RoomError::Unavailable(format!("worker {worker} keeps restarting")))
    }

    async fn make_copy(&self, origin: Origin, worker: usize) -> Result<((), u32), RoomError> {
        let pid = self.pid_of(worker).ok_or_else(|| RoomError::Unavailable(format!("worker {worker} is down")))?;
        match origin {
            Origin::Producer(id) => self.pipe_producer(id, worker).await?,
            Origin::Data(id) => self.pipe_data_producer(id, worker).await?,
        }
        info!(room = self.id, ?origin, from = self.worker, to = worker, "piped");
        Ok(((), pid))
    }

    /// The room's router on `worker` and the pipe between the main worker and it: (that router,
    /// the pipe's end on the main worker, its end on `worker`).
    async fn route_to(&self, worker: usize) -> Result<(RouterId, TransportId, TransportId), RoomError> {
        let router_id = self.router_on(worker).await?;
        let pipe = self.pipes.get(self.worker, worker).await?;
        Ok((router_id, pipe.end_on(self.worker), pipe.end_on(worker)))
    }

    /// A pipe consumer on the main worker's end of the pipe to `worker`, and a producer with the
    /// same id on the far end, in the room's router there.
    async fn pipe_producer(&self, producer_id: ProducerId, worker: usize) -> Result<(), RoomError> {
        let (router_id, near, far) = self.route_to(worker).await?;
        let consumer_id = ConsumerId(rand::random());
        let request = TransportRequest::ConsumeToPipe { consumer_id, producer_id };
        let data = match self.request(self.worker, Request::Transport(near, request)).await? {
            Response::PipeConsumerCreated(data) => data,
            _ => return Err(RoomError::UnexpectedResponse),
        };
        let request = TransportRequest::ProduceFromPipe {
            producer_id,
            router_id,
            kind: data.kind,
            rtp_parameters: data.rtp_parameters,
            paused: data.producer_paused,
        };
        if let Err(e) = self.request(worker, Request::Transport(far, request)).await {
            self.close_quietly(self.worker, Request::Consumer(consumer_id, ConsumerRequest::Close)).await;
            return Err(e);
        }
        // A pause, resume or close of the origin that came while this was under way went to the
        // copies that existed then: bring this one in line now.
        let now = self.lock().producer_paused(producer_id);
        let fix = match now {
            None => ProducerRequest::Close,
            Some(true) if !data.producer_paused => ProducerRequest::Pause,
            Some(false) if data.producer_paused => ProducerRequest::Resume,
            Some(_) => return Ok(()),
        };
        let closed = fix == ProducerRequest::Close;
        self.close_quietly(worker, Request::Producer(producer_id, fix)).await;
        if closed {
            return Err(RoomError::NotFound(format!("producer {producer_id}")));
        }
        Ok(())
    }

    /// A pipe data consumer on the main worker's end (a stream of the pipe's own SCTP association)
    /// and a data producer with the same id on the far end, in the room's router there.
    async fn pipe_data_producer(&self, data_producer_id: DataProducerId, worker: usize) -> Result<(), RoomError> {
        let (router_id, near, far) = self.route_to(worker).await?;
        let data_consumer_id = DataConsumerId(rand::random());
        let request = TransportRequest::ConsumeDataToPipe { data_consumer_id, data_producer_id };
        let data = match self.request(self.worker, Request::Transport(near, request)).await? {
            Response::DataConsumerCreated(data) => data,
            _ => return Err(RoomError::UnexpectedResponse),
        };
        let request = TransportRequest::ProduceDataFromPipe {
            data_producer_id,
            router_id,
            sctp_stream_parameters: data.sctp_stream_parameters,
            label: data.label,
            protocol: data.protocol,
        };
        if let Err(e) = self.request(worker, Request::Transport(far, request)).await {
            let close = Request::DataConsumer(data_consumer_id, DataConsumerRequest::Close);
            self.close_quietly(self.worker, close).await;
            return Err(e);
        }
        // Its origin closed while this was under way: the close did not see this copy.
        let exists = self.lock().has_data_producer(data_producer_id);
        if !exists {
            self.close_quietly(worker, Origin::Data(data_producer_id).close_request()).await;
            return Err(RoomError::NotFound(format!("data producer {data_producer_id}")));
        }
        Ok(())
    }

    /// Pauses or resumes every piped copy of `producer_id`, so that their consumers hear of it.
    pub(super) async fn set_copies_paused(&self, producer_id: ProducerId, paused: bool) {
        let origin = Origin::Producer(producer_id);
        let workers: Vec<usize> = self.lock().piped.keys().filter(|(o, _)| *o == origin).map(|(_, w)| *w).collect();
        for worker in workers {
            let request = if paused { ProducerRequest::Pause } else { ProducerRequest::Resume };
            self.close_quietly(worker, Request::Producer(producer_id, request)).await;
        }
    }

    /// Closes and forgets every piped copy of `origins` (they closed).
    pub(super) async fn close_copies(&self, origins: &[Origin]) {
        let copies: Vec<(Origin, usize)> = {
            let mut state = self.lock();
            let keys: Vec<_> = state.piped.keys().filter(|(o, _)| origins.contains(o)).copied().collect();
            for key in &keys {
                state.piped.remove(key);
            }
            keys
        };
        for (origin, worker) in copies {
            self.close_quietly(worker, origin.close_request()).await;
        }
    }
}
