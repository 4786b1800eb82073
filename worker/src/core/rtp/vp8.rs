//! The VP8 payload descriptor (RFC 7741 §4.2), read once per packet at ingress and rewritten in
//! place per consumer.
//!
//! ```text
//!  |X|R|N|S|R| PID |   X: extended control bits present, S: start of partition, PID: partition
//!  |I|L|T|K| RSV   |   (X) I: picture id, L: TL0PICIDX, T: TID, K: KEYIDX
//!  |M| PictureID   |   (I) M: 15-bit picture id (a second byte follows)
//!  |   PictureID   |   (M)
//!  |   TL0PICIDX   |   (L)
//!  |TID|Y| KEYIDX  |   (T/K) TID: temporal layer, Y: layer sync
//! ```
//!
//! A consumer that forwards a subset of the temporal layers, or switches between simulcast
//! encodings, rewrites the picture id and TL0PICIDX so the decoder sees them continuous: Chrome's
//! frame buffer treats a gap in picture ids as a lost frame and waits for it (or asks for a
//! keyframe).

/// What the forwarding path needs of one packet's descriptor; byte offsets are from the start of
/// the RTP payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Vp8Descriptor {
    /// 7 or 15 bits, as the sender wrote it.
    pub picture_id: Option<u16>,
    pub picture_id_15_bits: bool,
    pub picture_id_at: u8,
    pub tl0_pic_idx: Option<u8>,
    pub tl0_at: u8,
    /// 0 when the packet says nothing (one temporal layer).
    pub temporal_id: u8,
    /// Y: this frame depends only on the base layer, so a receiver may start a higher temporal layer
    /// here.
    pub layer_sync: bool,
    /// The first packet of a frame (S=1 and partition 0).
    pub start_of_frame: bool,
}

/// Reads the descriptor at the start of `payload`; `None` when it is truncated.
pub fn parse(payload: &[u8]) -> Option<Vp8Descriptor> {
    let &b0 = payload.first()?;
    let mut d = Vp8Descriptor { start_of_frame: b0 & 0x10 != 0 && b0 & 0x07 == 0, ..Default::default() };
    if b0 & 0x80 == 0 {
        return Some(d);
    }
    let &x = payload.get(1)?;
    let mut pos = 2usize;
    if x & 0x80 != 0 {
        let &hi = payload.get(pos)?;
        d.picture_id_at = pos as u8;
        if hi & 0x80 != 0 {
            let &lo = payload.get(pos + 1)?;
            d.picture_id = Some(u16::from_be_bytes([hi & 0x7f, lo]));
            d.picture_id_15_bits = true;
            pos += 2;
        } else {
            d.picture_id = Some(u16::from(hi));
            pos += 1;
        }
    }
    if x & 0x40 != 0 {
        d.tl0_pic_idx = Some(*payload.get(pos)?);
        d.tl0_at = pos as u8;
        pos += 1;
    }
    if x & 0x30 != 0 {
        let &t = payload.get(pos)?;
        if x & 0x20 != 0 {
            d.temporal_id = t >> 6;
            d.layer_sync = t & 0x20 != 0;
        }
    }
    Some(d)
}

impl Vp8Descriptor {
    /// Modulus of this packet's picture id.
    pub fn picture_id_modulus(&self) -> u32 {
        if self.picture_id_15_bits { 1 << 15 } else { 1 << 7 }
    }

    /// Writes `picture_id` and `tl0_pic_idx` into `payload`, the packet this descriptor was read
    /// from; fields the packet lacks are left alone (the sizes never change).
    pub fn rewrite(&self, payload: &mut [u8], picture_id: u16, tl0_pic_idx: u8) {
        if self.picture_id.is_some() {
            let at = usize::from(self.picture_id_at);
            if self.picture_id_15_bits {
                if let Some(b) = payload.get_mut(at..at + 2) {
                    let v = (picture_id & 0x7fff).to_be_bytes();
                    b[0] = 0x80 | v[0];
                    b[1] = v[1];
                }
            } else if let Some(b) = payload.get_mut(at) {
                *b = (picture_id & 0x7f) as u8;
            }
        }
        if self.tl0_pic_idx.is_some()
            && let Some(b) = payload.get_mut(usize::from(self.tl0_at))
        {
            *b = tl0_pic_idx;
        }
    }
}

/// A consumer's outgoing picture ids and TL0PICIDX: `out = in − offset`, where the offset grows by
/// one for every picture dropped (a temporal layer not forwarded) and is re-based at a switch so the
/// new encoding's pictures continue the old one's.
#[derive(Debug, Clone, Default)]
pub struct Vp8Rewriter {
    started: bool,
    /// Picture id offset, in the 15-bit space (7-bit ids use its low 7 bits).
    picture_offset: u16,
    /// The offset before the last drop and the picture it began at: a late packet of an earlier
    /// picture still maps with it.
    previous: Option<(u16, u16)>,
    newest_in: u16,
    newest_out: u16,
    /// The picture dropped last, so its other packets are dropped without counting again.
    dropped: Option<u16>,
    tl0_offset: u8,
    newest_tl0_out: u8,
}

const PICTURE_MASK: u16 = 0x7fff;

fn newer_picture(a: u16, b: u16) -> bool {
    let d = a.wrapping_sub(b) & PICTURE_MASK;
    d != 0 && d < 0x4000
}

impl Vp8Rewriter {
    /// The next forwarded picture is `d`'s and starts a new numbering run (a switch of encoding or
    /// the first packet): it continues right after the last picture sent.
    pub fn sync(&mut self, d: &Vp8Descriptor) {
        if let Some(pid) = d.picture_id {
            let target = if self.started { self.newest_out.wrapping_add(1) & PICTURE_MASK } else { pid };
            self.picture_offset = pid.wrapping_sub(target) & PICTURE_MASK;
            self.newest_in = pid.wrapping_sub(1) & PICTURE_MASK;
            self.newest_out = target.wrapping_sub(1) & PICTURE_MASK;
        }
        if let Some(tl0) = d.tl0_pic_idx {
            let target = if self.started { self.newest_tl0_out.wrapping_add(1) } else { tl0 };
            self.tl0_offset = tl0.wrapping_sub(target);
            self.newest_tl0_out = target.wrapping_sub(1);
        }
        self.previous = None;
        self.dropped = None;
        self.started = true;
    }

    /// The outgoing (picture id, TL0PICIDX) for a forwarded packet with descriptor `d`.
    pub fn forward(&mut self, d: &Vp8Descriptor) -> (u16, u8) {
        if !self.started {
            self.sync(d);
        }
        let mut out_pid = 0;
        if let Some(pid) = d.picture_id {
            let offset = match self.previous {
                Some((offset, since)) if newer_picture(since, pid) => offset,
                _ => self.picture_offset,
            };
            out_pid = pid.wrapping_sub(offset) & PICTURE_MASK;
            if newer_picture(pid, self.newest_in) {
                self.newest_in = pid;
                self.newest_out = out_pid;
            }
        }
        let mut out_tl0 = 0;
        if let Some(tl0) = d.tl0_pic_idx {
            out_tl0 = tl0.wrapping_sub(self.tl0_offset);
            if (out_tl0.wrapping_sub(self.newest_tl0_out) as i8) > 0 {
                self.newest_tl0_out = out_tl0;
            }
        }
        (out_pid, out_tl0)
    }

    /// A packet of picture `d` is not forwarded: the pictures after it move down by one (once per
    /// picture, however many packets it has).
    pub fn drop(&mut self, d: &Vp8Descriptor) {
        if !self.started {
            return;
        }
        let Some(pid) = d.picture_id else { return };
        if self.dropped == Some(pid) || !newer_picture(pid, self.newest_in) {
            return;
        }
        self.previous = Some((self.picture_offset, pid));
        self.picture_offset = self.picture_offset.wrapping_add(1) & PICTURE_MASK;
        self.newest_in = pid;
        self.dropped = Some(pid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A descriptor with a 15-bit picture id, TL0PICIDX and TID/Y.
    fn payload(pid: u16, tl0: u8, tid: u8, sync: bool, start: bool) -> Vec<u8> {
        let b0 = 0x80 | if start { 0x10 } else { 0 };
        let pid = (pid & 0x7fff).to_be_bytes();
        vec![b0, 0xe0, 0x80 | pid[0], pid[1], tl0, (tid << 6) | if sync { 0x20 } else { 0 }, 0xaa, 0xbb]
    }

    #[test]
    fn reads_every_field() {
        let d = parse(&payload(0x1234, 7, 2, true, true)).unwrap();
        assert_eq!(d.picture_id, Some(0x1234));
        assert!(d.picture_id_15_bits);
        assert_eq!(d.tl0_pic_idx, Some(7));
        assert_eq!(d.temporal_id, 2);
        assert!(d.layer_sync);
        assert!(d.start_of_frame);
        // No extension at all: nothing but the start bit.
        let plain = parse(&[0x10, 0x9d]).unwrap();
        assert_eq!(plain, Vp8Descriptor { start_of_frame: true, ..Default::default() });
        // A 7-bit picture id.
        let short = parse(&[0x90, 0x80, 0x45, 0x00]).unwrap();
        assert_eq!((short.picture_id, short.picture_id_15_bits), (Some(0x45), false));
    }

    #[test]
    fn rewrite_changes_only_the_numbers() {
        let mut p = payload(0x1234, 7, 1, false, true);
        let d = parse(&p).unwrap();
        d.rewrite(&mut p, 0x7ffe, 200);
        let again = parse(&p).unwrap();
        assert_eq!((again.picture_id, again.tl0_pic_idx, again.temporal_id), (Some(0x7ffe), Some(200), 1));
        assert_eq!(&p[6..], &[0xaa, 0xbb]);
    }

    #[test]
    fn dropped_pictures_leave_no_gap() {
        let mut r = Vp8Rewriter::default();
        // L1T3 pattern of TIDs: 0 2 1 2 0 2 1 2; forward TID ≤ 1 only.
        let tids = [0u8, 2, 1, 2, 0, 2, 1, 2, 0];
        let mut out = Vec::new();
        for (i, &tid) in tids.iter().enumerate() {
            let pid = 0x7ffc_u16.wrapping_add(i as u16) & 0x7fff;
            // Two packets per picture.
            for start in [true, false] {
                let d = parse(&payload(pid, (i / 4) as u8, tid, false, start)).unwrap();
                if tid > 1 {
                    r.drop(&d);
                } else {
                    let (p, _) = r.forward(&d);
                    if start {
                        out.push(p);
                    }
                }
            }
        }
        let steps: Vec<u16> = out.windows(2).map(|w| w[1].wrapping_sub(w[0]) & 0x7fff).collect();
        assert!(steps.iter().all(|&s| s == 1), "picture ids {out:?}");
    }

    #[test]
    fn a_switch_continues_the_numbering() {
        let mut r = Vp8Rewriter::default();
        let a = parse(&payload(100, 10, 0, false, true)).unwrap();
        assert_eq!(r.forward(&a), (100, 10));
        // Another encoding, numbered on its own.
        let b = parse(&payload(5000, 77, 0, true, true)).unwrap();
        r.sync(&b);
        assert_eq!(r.forward(&b), (101, 11));
        let b2 = parse(&payload(5001, 78, 0, false, true)).unwrap();
        assert_eq!(r.forward(&b2), (102, 12));
    }

    #[test]
    fn a_late_packet_of_an_earlier_picture_keeps_its_number() {
        let mut r = Vp8Rewriter::default();
        let p10 = parse(&payload(10, 1, 0, false, true)).unwrap();
        assert_eq!(r.forward(&p10).0, 10);
        r.drop(&parse(&payload(11, 1, 2, false, true)).unwrap());
        assert_eq!(r.forward(&parse(&payload(12, 1, 1, false, true)).unwrap()).0, 11);
        // The second packet of picture 10 arrives late.
        assert_eq!(r.forward(&parse(&payload(10, 1, 0, false, false)).unwrap()).0, 10);
    }

    proptest! {
        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..16)) {
            if let Some(d) = parse(&bytes) {
                let mut copy = bytes.clone();
                d.rewrite(&mut copy, 0x1234, 9);
                prop_assert_eq!(copy.len(), bytes.len());
                let mut r = Vp8Rewriter::default();
                r.forward(&d);
                r.drop(&d);
            }
        }
    }
}
