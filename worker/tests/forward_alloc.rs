//! The forwarding path allocates nothing per packet once its buffers have warmed up.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use octo_ipc::{ConsumerRequest, MediaKind, Request};
use octo_worker::core::SocketId;
use octo_worker::core::testing::{Harness, Peer, vp8_payload};

struct Counting;
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);
static COUNTING: AtomicBool = AtomicBool::new(false);

// SAFETY: forwards to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn forwarding_allocates_nothing_per_packet() {
    let mut h = Harness::new();
    let mut publisher = Peer::new(50_000);
    let t = h.create_transport(1);
    h.connect(&mut publisher, &t);
    let producer = h.produce(&publisher, 100, MediaKind::Video);
    let mut subs: Vec<Peer> = (0..3).map(|i| Peer::new(51_000 + i)).collect();
    for (i, sub) in subs.iter_mut().enumerate() {
        let t = h.create_transport(1000 + i as u128);
        h.connect(sub, &t);
        let c = h.consume(sub, 5000 + i as u128, producer);
        h.request(Request::Consumer(c.id, ConsumerRequest::Resume)).unwrap();
    }
    let mut datagrams = Vec::new();
    for seq in 0..3000u16 {
        publisher.send_rtp(96, 1111, seq, u32::from(seq) * 3000, &vp8_payload(seq == 0, seq as u8));
        datagrams.extend(publisher.take_outgoing());
    }
    let mut buf = vec![0u8; 1600];
    let mut forwarded = 0;
    for (i, d) in datagrams.iter().enumerate() {
        if i == 2000 {
            COUNTING.store(true, Ordering::Relaxed);
        }
        buf[..d.len()].copy_from_slice(d);
        // A packet a millisecond: all at one instant, the subscribers' pacers would hold most.
        let now = h.now + std::time::Duration::from_millis(i as u64);
        h.worker.handle_datagram(now, SocketId(0), publisher.addr, &mut buf, d.len());
        while let Some(t) = h.worker.poll_transmit() {
            forwarded += 1;
            h.worker.recycle(t.buf);
        }
    }
    COUNTING.store(false, Ordering::Relaxed);
    assert_eq!(forwarded, 3 * 3000);
    assert_eq!(ALLOCATIONS.load(Ordering::Relaxed), 0, "allocations while forwarding 1000 packets to 3 consumers");
}
