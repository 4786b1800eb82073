//! The core's source of ICE credentials and SSRCs: a CSPRNG (ChaCha) seeded by the IO shell from
//! the OS, and by tests with a constant, so the core stays deterministic under test. It must be
//! cryptographic: a peer sees its own ICE password and must not be able to predict another's.

use rand::rngs::StdRng;
use rand::{Rng as _, RngCore, SeedableRng};

#[derive(Debug, Clone)]
pub struct Rng(StdRng);

const ALPHANUMERIC: &[u8; 36] = b"abcdefghijklmnopqrstuvwxyz0123456789";

impl Rng {
    pub fn from_seed(seed: [u8; 32]) -> Self {
        Self(StdRng::from_seed(seed))
    }

    /// Seeded from the operating system.
    pub fn from_os() -> Self {
        Self(StdRng::from_os_rng())
    }

    pub fn next_u32(&mut self) -> u32 {
        self.0.next_u32()
    }

    /// A non-zero SSRC.
    pub fn ssrc(&mut self) -> u32 {
        loop {
            let v = self.0.next_u32();
            if v != 0 {
                return v;
            }
        }
    }

    /// `len` characters from [a-z0-9], valid as ICE ufrag and password characters.
    pub fn ice_string(&mut self, len: usize) -> String {
        (0..len).map(|_| ALPHANUMERIC[self.0.random_range(0..ALPHANUMERIC.len())] as char).collect()
    }
}
