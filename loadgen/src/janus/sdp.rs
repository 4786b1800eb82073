//! The little SDP the Janus target needs: a writer for the load generator's own offer (a
//! publisher) and answer (a subscriber), and a reader for what Janus sends back. Only what a
//! BUNDLEd, rtcp-muxed, non-trickled session of Opus and VP8 uses; everything else is skipped.

use std::fmt::Write;
use std::net::SocketAddr;

use octo_ipc::{DtlsFingerprint, FingerprintAlgorithm};

use crate::media::send_stream::{Kind, MID_EXTENSION_ID};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SdpError {
    #[error("the description has no {0}")]
    Missing(&'static str),
    #[error("malformed line {0:?}")]
    Malformed(String),
}

/// Which way a media section carries media, seen from the side that writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    SendOnly,
    RecvOnly,
    SendRecv,
    Inactive,
}

impl Direction {
    fn as_str(self) -> &'static str {
        match self {
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::SendRecv => "sendrecv",
            Direction::Inactive => "inactive",
        }
    }

    /// The direction an answer gives to a section offered this way.
    pub fn answered(self) -> Direction {
        match self {
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            other => other,
        }
    }
}

/// One media section the load generator writes.
#[derive(Debug, Clone)]
pub struct LocalMedia {
    pub kind: Kind,
    pub mid: String,
    pub payload_type: u8,
    pub direction: Direction,
    /// The SSRC it sends on (publishers), declared as browsers do.
    pub ssrc: Option<u32>,
    /// Section rejected in an answer (port 0).
    pub rejected: bool,
}

/// The load generator's side of a session: its ICE credentials and certificate, DTLS client.
#[derive(Debug, Clone)]
pub struct LocalDescription {
    pub ufrag: String,
    pub password: String,
    pub fingerprint: DtlsFingerprint,
    /// Its host candidate (all sections share it: BUNDLE).
    pub candidate: Option<SocketAddr>,
    pub cname: String,
    pub media: Vec<LocalMedia>,
}

/// The PRIORITY the load generator's checks carry: a host candidate's (RFC 8445 §5.1.2.1).
const HOST_PRIORITY: u32 = (126 << 24) | (65_535 << 8) | 255;

fn algorithm_name(a: FingerprintAlgorithm) -> &'static str {
    match a {
        FingerprintAlgorithm::Sha1 => "sha-1",
        FingerprintAlgorithm::Sha224 => "sha-224",
        FingerprintAlgorithm::Sha256 => "sha-256",
        FingerprintAlgorithm::Sha384 => "sha-384",
        FingerprintAlgorithm::Sha512 => "sha-512",
    }
}

fn algorithm_of(name: &str) -> Option<FingerprintAlgorithm> {
    Some(match name.to_ascii_lowercase().as_str() {
        "sha-1" => FingerprintAlgorithm::Sha1,
        "sha-224" => FingerprintAlgorithm::Sha224,
        "sha-256" => FingerprintAlgorithm::Sha256,
        "sha-384" => FingerprintAlgorithm::Sha384,
        "sha-512" => FingerprintAlgorithm::Sha512,
        _ => return None,
    })
}

/// The description as SDP text. The load generator is always the DTLS client (`setup:active`,
/// in an offer too: the offerer may pick its role, and Janus then takes the server's) and the
/// controlling ICE agent; it gives its one host candidate, and no trickling follows.
pub fn write(d: &LocalDescription) -> String {
    let mut s = String::new();
    let mids: Vec<&str> = d.media.iter().filter(|m| !m.rejected).map(|m| m.mid.as_str()).collect();
    let _ = write!(s, "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n");
    let _ = write!(s, "a=group:BUNDLE {}\r\na=msid-semantic: WMS loadgen\r\n", mids.join(" "));
    for m in &d.media {
        let (media, codec, fmtp) = match m.kind {
            Kind::Video => ("video", "VP8/90000", None),
            Kind::Audio => ("audio", "opus/48000/2", Some("minptime=10;useinbandfec=1")),
        };
        let port = if m.rejected { 0 } else { 9 };
        let pt = m.payload_type;
        let _ = write!(s, "m={media} {port} UDP/TLS/RTP/SAVPF {pt}\r\nc=IN IP4 0.0.0.0\r\n");
        let _ = write!(s, "a=mid:{}\r\na={}\r\n", m.mid, m.direction.as_str());
        if m.rejected {
            continue;
        }
        let _ = write!(s, "a=ice-ufrag:{}\r\na=ice-pwd:{}\r\n", d.ufrag, d.password);
        let _ = write!(
            s,
            "a=fingerprint:{} {}\r\na=setup:active\r\na=rtcp-mux\r\na=rtcp-rsize\r\n",
            algorithm_name(d.fingerprint.algorithm),
            d.fingerprint.value
        );
        let _ = write!(s, "a=extmap:{MID_EXTENSION_ID} urn:ietf:params:rtp-hdrext:sdes:mid\r\n");
        let _ = write!(s, "a=rtpmap:{pt} {codec}\r\n");
        if let Some(fmtp) = fmtp {
            let _ = write!(s, "a=fmtp:{pt} {fmtp}\r\n");
        }
        if m.kind == Kind::Video {
            for fb in ["nack", "nack pli", "ccm fir"] {
                let _ = write!(s, "a=rtcp-fb:{pt} {fb}\r\n");
            }
        }
        if let Some(ssrc) = m.ssrc {
            let _ = write!(s, "a=msid:{} {}-{}\r\n", d.cname, d.cname, m.mid);
            let _ = write!(s, "a=ssrc:{ssrc} cname:{}\r\n", d.cname);
        }
        if let Some(c) = d.candidate {
            let _ = write!(s, "a=candidate:1 1 udp {HOST_PRIORITY} {} {} typ host\r\n", c.ip(), c.port());
            let _ = write!(s, "a=end-of-candidates\r\n");
        }
    }
    s
}

/// One media section of Janus's description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteMedia {
    pub kind: Option<Kind>,
    pub mid: String,
    pub port: u16,
    pub direction: Direction,
    /// Payload types with their encoding names (`VP8`, `opus`, `rtx`…), in offer order.
    pub payload_types: Vec<(u8, String)>,
    /// The primary SSRC it sends on, and its RTX SSRC (`ssrc-group:FID`).
    pub ssrc: Option<u32>,
    pub rtx_ssrc: Option<u32>,
}

impl RemoteMedia {
    /// The payload type of `codec` (case-insensitive), if offered.
    pub fn payload_type(&self, codec: &str) -> Option<u8> {
        self.payload_types.iter().find(|(_, name)| name.eq_ignore_ascii_case(codec)).map(|(pt, _)| *pt)
    }
}

/// What the load generator needs of Janus's offer or answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteDescription {
    pub ufrag: String,
    pub password: String,
    pub fingerprints: Vec<DtlsFingerprint>,
    /// UDP host candidates, in the order given.
    pub candidates: Vec<SocketAddr>,
    pub media: Vec<RemoteMedia>,
}

/// Reads Janus's description. ICE and DTLS attributes may sit at session or media level (Janus
/// writes them per section; the first found wins, BUNDLE makes them one).
pub fn parse(sdp: &str) -> Result<RemoteDescription, SdpError> {
    let mut ufrag = None;
    let mut password = None;
    let mut fingerprints = Vec::new();
    let mut candidates = Vec::new();
    let mut media: Vec<RemoteMedia> = Vec::new();
    for line in sdp.lines().map(str::trim_end).filter(|l| !l.is_empty()) {
        let malformed = || SdpError::Malformed(line.chars().take(80).collect());
        if let Some(rest) = line.strip_prefix("m=") {
            let mut f = rest.split(' ');
            let kind = match f.next() {
                Some("video") => Some(Kind::Video),
                Some("audio") => Some(Kind::Audio),
                _ => None,
            };
            let port = f.next().and_then(|p| p.parse().ok()).ok_or_else(malformed)?;
            media.push(RemoteMedia {
                kind,
                mid: String::new(),
                port,
                direction: Direction::SendRecv,
                payload_types: Vec::new(),
                ssrc: None,
                rtx_ssrc: None,
            });
            continue;
        }
        let Some(attr) = line.strip_prefix("a=") else { continue };
        let (name, value) = attr.split_once(':').unwrap_or((attr, ""));
        match name {
            "ice-ufrag" if ufrag.is_none() => ufrag = Some(value.to_owned()),
            "ice-pwd" if password.is_none() => password = Some(value.to_owned()),
            "fingerprint" => {
                let (alg, hex) = value.split_once(' ').ok_or_else(malformed)?;
                let algorithm = algorithm_of(alg).ok_or_else(malformed)?;
                let fp = DtlsFingerprint { algorithm, value: hex.trim().to_ascii_uppercase() };
                if !fingerprints.contains(&fp) {
                    fingerprints.push(fp);
                }
            }
            "candidate" => {
                // foundation component transport priority address port typ type …
                let f: Vec<&str> = value.split(' ').collect();
                if f.len() >= 8 && f[2].eq_ignore_ascii_case("udp") && f[1] == "1" {
                    let addr = format!("{}:{}", f[4], f[5])
                        .parse()
                        .or_else(|_| format!("[{}]:{}", f[4], f[5]).parse().map_err(|_| malformed()))?;
                    if !candidates.contains(&addr) {
                        candidates.push(addr);
                    }
                }
            }
            _ => {
                let Some(m) = media.last_mut() else { continue };
                match name {
                    "mid" => m.mid = value.to_owned(),
                    "sendonly" => m.direction = Direction::SendOnly,
                    "recvonly" => m.direction = Direction::RecvOnly,
                    "sendrecv" => m.direction = Direction::SendRecv,
                    "inactive" => m.direction = Direction::Inactive,
                    "rtpmap" => {
                        let (pt, codec) = value.split_once(' ').ok_or_else(malformed)?;
                        let pt = pt.parse().map_err(|_| malformed())?;
                        let name = codec.split('/').next().unwrap_or_default().to_owned();
                        m.payload_types.push((pt, name));
                    }
                    "ssrc-group" => {
                        let f: Vec<&str> = value.split(' ').collect();
                        if f.first() == Some(&"FID") && f.len() == 3 {
                            m.ssrc = f[1].parse().ok();
                            m.rtx_ssrc = f[2].parse().ok();
                        }
                    }
                    "ssrc" if m.ssrc.is_none() => {
                        m.ssrc = value.split(' ').next().and_then(|s| s.parse().ok());
                    }
                    _ => {}
                }
            }
        }
    }
    Ok(RemoteDescription {
        ufrag: ufrag.ok_or(SdpError::Missing("ice-ufrag"))?,
        password: password.ok_or(SdpError::Missing("ice-pwd"))?,
        fingerprints: if fingerprints.is_empty() { return Err(SdpError::Missing("fingerprint")) } else { fingerprints },
        candidates,
        media,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shape of a VideoRoom subscriber offer as Janus 1.1 writes it.
    const JANUS_OFFER: &str = "v=0\r\n\
o=- 1700000000 1 IN IP4 127.0.0.1\r\n\
s=VideoRoom 1234\r\n\
t=0 0\r\n\
a=group:BUNDLE 0 1\r\n\
a=ice-options:trickle\r\n\
a=fingerprint:sha-256 d2:B9:31:8F:DF:24:D8:0E:ED:D2:EF:25:9E:AF:6F:B8:34:AE:53:9C:E6:F3:8F:F2:64:15:FA:E8:7F:53:2D:38\r\n\
a=msid-semantic: WMS *\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n\
c=IN IP4 127.0.0.1\r\n\
a=sendonly\r\n\
a=mid:0\r\n\
a=rtcp-mux\r\n\
a=ice-ufrag:ts2A\r\n\
a=ice-pwd:5LyBnODzGmtSxoo+sANJYd\r\n\
a=setup:actpass\r\n\
a=rtpmap:111 opus/48000/2\r\n\
a=ssrc:1504930811 cname:janus\r\n\
a=candidate:1 1 udp 2015363327 127.0.0.1 40321 typ host\r\n\
a=end-of-candidates\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 96 97\r\n\
c=IN IP4 127.0.0.1\r\n\
a=sendonly\r\n\
a=mid:1\r\n\
a=rtcp-mux\r\n\
a=ice-ufrag:ts2A\r\n\
a=ice-pwd:5LyBnODzGmtSxoo+sANJYd\r\n\
a=setup:actpass\r\n\
a=rtpmap:96 VP8/90000\r\n\
a=rtcp-fb:96 nack\r\n\
a=rtpmap:97 rtx/90000\r\n\
a=fmtp:97 apt=96\r\n\
a=ssrc-group:FID 2386419423 3006931066\r\n\
a=ssrc:2386419423 cname:janus\r\n\
a=ssrc:3006931066 cname:janus\r\n\
a=candidate:1 1 udp 2015363327 127.0.0.1 40321 typ host\r\n\
a=candidate:2 1 tcp 1015363327 127.0.0.1 9 typ host tcptype active\r\n\
a=end-of-candidates\r\n";

    #[test]
    fn reads_a_janus_subscriber_offer() {
        let d = parse(JANUS_OFFER).unwrap();
        assert_eq!((d.ufrag.as_str(), d.password.as_str()), ("ts2A", "5LyBnODzGmtSxoo+sANJYd"));
        assert_eq!(d.fingerprints.len(), 1);
        assert!(d.fingerprints[0].value.starts_with("D2:B9"), "hex is upper-cased as the DTLS check expects");
        assert_eq!(d.candidates, vec!["127.0.0.1:40321".parse::<SocketAddr>().unwrap()], "UDP only, once");
        assert_eq!(d.media.len(), 2);
        let (audio, video) = (&d.media[0], &d.media[1]);
        assert_eq!(
            (audio.kind, audio.mid.as_str(), audio.ssrc, audio.rtx_ssrc),
            (Some(Kind::Audio), "0", Some(1504930811), None)
        );
        assert_eq!(video.kind, Some(Kind::Video));
        assert_eq!((video.ssrc, video.rtx_ssrc), (Some(2386419423), Some(3006931066)), "FID names the primary first");
        assert_eq!((video.payload_type("vp8"), video.payload_type("rtx")), (Some(96), Some(97)));
        assert_eq!(video.direction.answered(), Direction::RecvOnly);
    }

    #[test]
    fn an_answer_without_credentials_or_certificate_is_refused() {
        assert_eq!(parse("v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"), Err(SdpError::Missing("ice-ufrag")));
        let no_fp = "v=0\r\na=ice-ufrag:a\r\na=ice-pwd:b\r\n";
        assert_eq!(parse(no_fp), Err(SdpError::Missing("fingerprint")));
        assert!(matches!(parse("v=0\r\nm=video x UDP\r\n"), Err(SdpError::Malformed(_))));
        assert!(matches!(parse("a=fingerprint:md5 AA\r\n"), Err(SdpError::Malformed(_))));
    }

    #[test]
    fn garbage_never_panics() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let alphabet = b"am=:/ 0123456789\r\nvideoaudiortpmapssrcFIDcandidateudp.";
        for _ in 0..2000 {
            let text: String = (0..(state % 300) as usize)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    alphabet[(state % alphabet.len() as u64) as usize] as char
                })
                .collect();
            let _ = parse(&text);
        }
    }

    #[test]
    fn writes_an_offer_janus_can_read_back() {
        let d = LocalDescription {
            ufrag: "lg00000001".into(),
            password: "loadgenloadgenloadgen1".into(),
            fingerprint: DtlsFingerprint { algorithm: FingerprintAlgorithm::Sha256, value: "AB:CD".into() },
            candidate: Some("10.0.0.1:5000".parse().unwrap()),
            cname: "loadgen-0".into(),
            media: vec![
                LocalMedia {
                    kind: Kind::Video,
                    mid: "0".into(),
                    payload_type: 96,
                    direction: Direction::SendOnly,
                    ssrc: Some(7),
                    rejected: false,
                },
                LocalMedia {
                    kind: Kind::Audio,
                    mid: "1".into(),
                    payload_type: 111,
                    direction: Direction::SendOnly,
                    ssrc: Some(9),
                    rejected: false,
                },
            ],
        };
        let text = write(&d);
        assert!(text.contains("a=group:BUNDLE 0 1\r\n"));
        assert!(text.contains("a=setup:active\r\n"));
        assert!(text.contains("a=rtpmap:111 opus/48000/2\r\n"));
        assert!(text.contains(&format!("a=extmap:{MID_EXTENSION_ID} urn:ietf:params:rtp-hdrext:sdes:mid\r\n")));
        let back = parse(&text).unwrap();
        assert_eq!(back.ufrag, "lg00000001");
        assert_eq!(back.fingerprints[0].value, "AB:CD");
        assert_eq!(back.media[0].ssrc, Some(7));
        assert_eq!(back.media[1].payload_type("opus"), Some(111));
        assert_eq!(back.media[0].direction, Direction::SendOnly);
        assert_eq!(back.candidates, vec!["10.0.0.1:5000".parse::<SocketAddr>().unwrap()]);
    }
}
