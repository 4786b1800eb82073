//! A real `redis-server` for the cluster tests: the load generator's (Debian's binary on a free
//! loopback port, in a directory of its own, keeping nothing on disk), which the tests also stop
//! and bring back on the same port to make an outage.

pub use octo_loadgen::cluster::Redis as RedisServer;
