//! The node's command connection to Redis, and whether Redis is reachable.
//!
//! Every command has a deadline, so a Redis that stops answering turns into an error in at most
//! [`COMMAND_TIMEOUT`], never a hang. A failed command marks the link down; the supervisor
//! (`supervisor.rs`) reconnects and resynchronises.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, FromRedisValue};

use super::ClusterError;

/// How long one Redis command may take.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);

pub struct Link {
    client: redis::Client,
    conn: Mutex<Option<MultiplexedConnection>>,
    up: AtomicBool,
    /// Commands that failed (timed out, refused, or Redis down).
    pub errors: AtomicU64,
    /// The last command's round trip, in microseconds.
    pub last_round_trip_us: AtomicU64,
}

impl Link {
    pub fn new(url: &str) -> Result<Link, ClusterError> {
        let client = redis::Client::open(url).map_err(|e| ClusterError::Config(format!("--cluster-redis: {e}")))?;
        Ok(Link {
            client,
            conn: Mutex::new(None),
            up: AtomicBool::new(false),
            errors: AtomicU64::new(0),
            last_round_trip_us: AtomicU64::new(0),
        })
    }

    pub fn client(&self) -> &redis::Client {
        &self.client
    }

    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// A fresh command connection (the old one, if any, is dropped).
    pub async fn connect(&self) -> Result<(), ClusterError> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(COMMAND_TIMEOUT))
            .set_response_timeout(Some(COMMAND_TIMEOUT));
        let conn = tokio::time::timeout(
            COMMAND_TIMEOUT * 2,
            self.client.get_multiplexed_async_connection_with_config(&config),
        )
        .await
        .map_err(|_| ClusterError::Down("connecting to Redis timed out".into()))?
        .map_err(|e| ClusterError::Down(e.to_string()))?;
        *self.lock() = Some(conn);
        Ok(())
    }

    pub fn mark_up(&self) {
        self.up.store(true, Ordering::Relaxed);
    }

    /// Redis is unreachable: commands fail at once until the supervisor reconnects.
    pub fn mark_down(&self) {
        self.up.store(false, Ordering::Relaxed);
        *self.lock() = None;
    }

    /// Runs `cmd` (a command or an atomic pipeline) with a deadline.
    pub async fn run<T: FromRedisValue>(&self, cmd: &impl Runnable) -> Result<T, ClusterError> {
        let Some(mut conn) = self.lock().clone() else {
            self.errors.fetch_add(1, Ordering::Relaxed);
            return Err(ClusterError::Down("Redis is unreachable".into()));
        };
        let started = Instant::now();
        let result = tokio::time::timeout(COMMAND_TIMEOUT, cmd.run_on(&mut conn)).await;
        self.last_round_trip_us.store(started.elapsed().as_micros() as u64, Ordering::Relaxed);
        match result {
            Ok(Ok(value)) => {
                T::from_redis_value(value).map_err(|e| ClusterError::Protocol(format!("unexpected Redis answer: {e}")))
            }
            Ok(Err(e)) => {
                self.errors.fetch_add(1, Ordering::Relaxed);
                // A refused command (a type error, say) is not an outage; a broken connection is.
                if e.is_io_error() || e.is_connection_dropped() || e.is_timeout() || e.is_unrecoverable_error() {
                    self.mark_down();
                    return Err(ClusterError::Down(e.to_string()));
                }
                Err(ClusterError::Protocol(e.to_string()))
            }
            Err(_) => {
                self.errors.fetch_add(1, Ordering::Relaxed);
                self.mark_down();
                Err(ClusterError::Down("Redis did not answer in time".into()))
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<MultiplexedConnection>> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A command or a pipeline: what [`Link::run`] sends.
pub trait Runnable: Sync {
    fn run_on<'a>(
        &'a self,
        conn: &'a mut MultiplexedConnection,
    ) -> impl std::future::Future<Output = redis::RedisResult<redis::Value>> + Send + 'a;
}

impl Runnable for redis::Cmd {
    fn run_on<'a>(
        &'a self,
        conn: &'a mut MultiplexedConnection,
    ) -> impl std::future::Future<Output = redis::RedisResult<redis::Value>> + Send + 'a {
        self.query_async(conn)
    }
}

impl Runnable for redis::Pipeline {
    fn run_on<'a>(
        &'a self,
        conn: &'a mut MultiplexedConnection,
    ) -> impl std::future::Future<Output = redis::RedisResult<redis::Value>> + Send + 'a {
        self.query_async(conn)
    }
}
