//! `octo-worker` on its own, fed by this test over a real socketpair.

use std::time::Duration;

use octo_controller::worker_process;
use octo_ipc::*;
use octo_tests::bin;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn read_message(stream: &mut tokio::net::UnixStream, decoder: &mut FrameDecoder) -> WorkerMessage {
    let mut buf = [0u8; 4096];
    loop {
        if let Some(m) = decoder.next_message::<WorkerMessage>().unwrap() {
            return m;
        }
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await.unwrap().unwrap();
        assert!(n > 0, "worker closed the channel");
        decoder.push(&buf[..n]);
    }
}

#[tokio::test]
async fn answers_over_its_channel_and_exits_cleanly_when_it_closes() {
    let (mut child, mut stream) = worker_process::spawn(&bin("octo-worker"), 0, None, &[]).unwrap();
    let mut decoder = FrameDecoder::new();
    let hello = read_message(&mut stream, &mut decoder).await;
    assert_eq!(
        hello,
        WorkerMessage::Notification(Notification::Worker(WorkerNotification::Running { pid: child.id().unwrap() }))
    );
    let mut frame = Vec::new();
    let request = Request::Worker(WorkerRequest::CreateRouter { router_id: RouterId(5), media_codecs: Vec::new() });
    encode_frame(&ControllerMessage::Request { id: 41, request }, &mut frame).unwrap();
    stream.write_all(&frame).await.unwrap();
    match read_message(&mut stream, &mut decoder).await {
        WorkerMessage::Response { id: 41, result: Ok(Response::RouterCreated { rtp_capabilities }) } => {
            assert!(rtp_capabilities.codecs.is_empty());
            assert!(!rtp_capabilities.header_extensions.is_empty());
        }
        other => panic!("{other:?}"),
    }
    drop(stream);
    let status = tokio::time::timeout(Duration::from_secs(5), child.wait()).await.unwrap().unwrap();
    assert_eq!(status.code(), Some(0));
}

#[tokio::test]
async fn garbage_from_the_controller_is_an_error_exit_not_a_panic() {
    let cases: [&[u8]; 4] = [
        b"\xff\xff\xff\xff",                 // length over the cap
        b"\x00\x00\x00\x03\x3e\x00\x00",     // a worker frame sent the wrong way
        b"\x00\x00\x00\x04\xc7\xee\xee\xee", // bad variant
        b"\x00\x00\x00\x00",                 // empty frame
    ];
    for bytes in cases {
        let (mut child, mut stream) = worker_process::spawn(&bin("octo-worker"), 0, None, &[]).unwrap();
        stream.write_all(bytes).await.unwrap();
        let status = tokio::time::timeout(Duration::from_secs(5), child.wait()).await.unwrap().unwrap();
        // 1 is the worker's own error exit; a panic would be 101, a crash a signal.
        assert_eq!(status.code(), Some(1), "{bytes:?} gave {status:?}");
    }
}

#[tokio::test]
async fn a_channel_cut_mid_frame_is_an_error_exit() {
    let (mut child, mut stream) = worker_process::spawn(&bin("octo-worker"), 0, None, &[]).unwrap();
    stream.write_all(b"\x00\x00\x01\x00\xc7partial").await.unwrap();
    drop(stream);
    let status = tokio::time::timeout(Duration::from_secs(5), child.wait()).await.unwrap().unwrap();
    assert_eq!(status.code(), Some(1));
}
