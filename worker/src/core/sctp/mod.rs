//! SCTP over DTLS for DataChannels: the association and DCEP.

pub mod association;
pub mod dcep;
mod forward_tsn_guard;

pub use association::{SCTP_PORT, SctpAssociation, SctpCounters, SctpError, SctpEvent, SctpRole, ppid};
pub use dcep::{ChannelType, DataChannelOpen, DcepError, DcepMessage, Reliability};
