//! The SRTP hot path allocates nothing per packet: a counting global allocator (one per test binary,
//! hence its own file) watches encrypt and decrypt of RTP and RTCP in steady state, for every profile,
//! and a flood of forged packets from unknown SSRCs.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use octo_worker::core::srtp::{MasterKey, SrtpProfile, SrtpRecvContext, SrtpSendContext};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations_during(f: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    f();
    ALLOCATIONS.load(Ordering::Relaxed) - before
}

fn write_rtp(buf: &mut [u8], seq: u16, ssrc: u32) -> usize {
    // V=2, one CSRC, one-byte-header extension of one word, 1000 bytes of payload.
    let header = [0x91, 96, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 9, 0xBE, 0xDE, 0, 1, 0x10, 0x42, 0, 0];
    buf[..24].copy_from_slice(&header);
    buf[2..4].copy_from_slice(&seq.to_be_bytes());
    buf[8..12].copy_from_slice(&ssrc.to_be_bytes());
    buf[24..1024].fill(seq as u8);
    1024
}

fn write_rtcp(buf: &mut [u8], ssrc: u32) -> usize {
    buf[..4].copy_from_slice(&[0x81, 201, 0, 7]);
    buf[4..8].copy_from_slice(&ssrc.to_be_bytes());
    buf[8..32].fill(7);
    32
}

/// The only test in this binary, so no other test thread allocates while it counts.
#[test]
fn steady_state_packets_allocate_nothing() {
    let mut buf = [0u8; 1500];
    for profile in SrtpProfile::ALL {
        let key = MasterKey::new(profile, &vec![3; profile.key_len()], &vec![4; profile.salt_len()]).unwrap();
        let mut tx = SrtpSendContext::new(&key);
        let mut rx = SrtpRecvContext::new(&key);
        let ssrcs = [0x1111_1111u32, 0x2222_2222, 0x3333_3333];
        // Warm up: the first packet of each SSRC creates its state (in tables allocated up front).
        let mut seq = 65_000u16;
        for &ssrc in &ssrcs {
            let n = write_rtp(&mut buf, seq, ssrc);
            let n = tx.encrypt_rtp(&mut buf, n).unwrap();
            rx.decrypt_rtp(&mut buf, n).unwrap();
            let n = write_rtcp(&mut buf, ssrc);
            let n = tx.encrypt_rtcp(&mut buf, n).unwrap();
            rx.decrypt_rtcp(&mut buf, n).unwrap();
        }

        let mut rtp_ok = 0;
        let rtp_allocs = allocations_during(|| {
            // 700 packets per SSRC: crosses the sequence-number wrap (ROC 0 → 1).
            for _ in 0..700 {
                seq = seq.wrapping_add(1);
                for &ssrc in &ssrcs {
                    let n = write_rtp(&mut buf, seq, ssrc);
                    let n = tx.encrypt_rtp(&mut buf, n).unwrap();
                    rtp_ok += usize::from(rx.decrypt_rtp(&mut buf, n) == Ok(1024));
                }
            }
        });
        assert_eq!(rtp_ok, 2100, "{profile:?}");
        assert_eq!(rx.rtp_roc(ssrcs[0]), Some(1), "{profile:?}");
        assert_eq!(rtp_allocs, 0, "{profile:?}: RTP allocations in steady state");

        let mut rtcp_ok = 0;
        let rtcp_allocs = allocations_during(|| {
            for _ in 0..300 {
                for &ssrc in &ssrcs {
                    let n = write_rtcp(&mut buf, ssrc);
                    let n = tx.encrypt_rtcp(&mut buf, n).unwrap();
                    rtcp_ok += usize::from(rx.decrypt_rtcp(&mut buf, n) == Ok(32));
                }
            }
        });
        assert_eq!(rtcp_ok, 900, "{profile:?}");
        assert_eq!(rtcp_allocs, 0, "{profile:?}: RTCP allocations in steady state");

        // Forged packets from 1000 unknown SSRCs: refused, no state, no allocation.
        let forged_allocs = allocations_during(|| {
            for i in 0..1000u32 {
                let n = write_rtp(&mut buf, i as u16, 0xF000_0000 + i);
                assert!(rx.decrypt_rtp(&mut buf, n + 16).is_err());
            }
        });
        assert_eq!(forged_allocs, 0, "{profile:?}: forged packets");
        assert_eq!(rx.rtp_ssrc_count(), ssrcs.len());
    }
}
