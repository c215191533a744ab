//! The handshake on arbitrary bytes, both ends.
//!
//! * As a client message: a hello goes through `ServerHandshake::handle_hello`;
//!   the server's answer (welcome, policy reject, or mismatch reject) crosses
//!   the wire and `ClientHandshake::handle` must see exactly that answer.
//! * As a server message: `ClientHandshake::handle` classifies it correctly.
#![no_main]

use core::time::Duration;

use libfuzzer_sys::fuzz_target;
use tickwire_fuzz::{Event, GAME_HASH, Input};
use tickwire_shared::handshake::{ClientHandshake, HandshakeError, ServerHandshake};
use tickwire_shared::{
    ClientMessage, Hello, Limits, PROTOCOL_VERSION, RejectCode, ResumeToken, ServerMessage, Welcome,
};

fn server_side(hello: Hello, now: Duration, limits: &Limits) {
    let server = ServerHandshake::new(now, Duration::from_secs(5));
    assert!(!server.is_expired(now));
    assert!(server.is_expired(server.deadline()));
    let compatible = hello.protocol_version == PROTOCOL_VERSION && hello.game_hash == GAME_HASH;
    let client = ClientHandshake::new(hello.clone());
    let (reply, expected) = match server.handle_hello(hello.clone(), GAME_HASH) {
        Err(rejection) => {
            assert!(!compatible, "a compatible hello was rejected");
            let code = if hello.protocol_version != PROTOCOL_VERSION {
                RejectCode::VersionMismatch
            } else {
                RejectCode::GameMismatch
            };
            assert_eq!(rejection.code, code);
            let reply = rejection.to_message::<Event>().to_bytes().unwrap();
            (reply, Err((rejection.code, rejection.message)))
        }
        Ok(pending) => {
            assert!(compatible, "an incompatible hello was accepted");
            assert_eq!(pending.hello(), &hello);
            // The server's policy: tokens starting with "ok" are accepted.
            let auth_ok = pending
                .hello()
                .auth_token
                .as_deref()
                .is_none_or(|t| t.starts_with("ok"));
            if auth_ok {
                let welcome = Welcome {
                    client_id: 42,
                    tick_rate: 60,
                    tick: now.as_millis() as u32,
                    snapshot_interval: 2,
                    resume_token: hello
                        .resume_token
                        .unwrap_or(ResumeToken::from_random([3; 16])),
                    room: hello.room.clone().unwrap_or_else(|| "lobby".into()),
                    resumed: hello.resume_token.is_some(),
                    implicit_acks: None,
                };
                let (est, msg) = pending.accept::<Event>(welcome.clone());
                assert_eq!(est.client_id, welcome.client_id);
                assert_eq!(est.resume_token, welcome.resume_token);
                (msg.to_bytes().unwrap(), Ok(welcome))
            } else {
                let rejection = pending.reject(RejectCode::AuthFailed, "bad token");
                let reply = rejection.to_message::<Event>().to_bytes().unwrap();
                (reply, Err((rejection.code, rejection.message)))
            }
        }
    };
    let msg = ServerMessage::<Event>::decode(&reply, limits).expect("our reply decodes");
    match (client.handle(msg), expected) {
        (Ok(got), Ok(sent)) => assert_eq!(got, sent),
        (Err(HandshakeError::Rejected { code, message }), Err(sent)) => {
            assert_eq!((code, message), sent);
        }
        (got, sent) => panic!("client saw {got:?}, server sent {sent:?}"),
    }
}

fn client_side(msg: ServerMessage<'_, Event>) {
    let client = ClientHandshake::new(Hello::new(GAME_HASH));
    match (msg.clone(), client.handle(msg)) {
        (ServerMessage::Welcome(w), Ok(got)) => assert_eq!(w, got),
        (ServerMessage::Reject(r), Err(HandshakeError::Rejected { code, message })) => {
            assert_eq!((r.code, r.message), (code, message));
        }
        (ServerMessage::Close(c), Err(HandshakeError::Closed { code, reason })) => {
            assert_eq!((c.code, c.reason), (code, reason));
        }
        (
            ServerMessage::Snapshot(_)
            | ServerMessage::Events(_)
            | ServerMessage::Ping { .. }
            | ServerMessage::Pong { .. },
            Err(HandshakeError::UnexpectedMessage { .. }),
        ) => {}
        (sent, got) => panic!("client saw {got:?} for {sent:?}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    let now = Duration::from_millis(data.len() as u64 * 16);
    if let Ok(ClientMessage::Hello(hello)) = ClientMessage::<Input>::decode(data, &limits) {
        server_side(hello, now, &limits);
    }
    if let Ok(msg) = ServerMessage::<Event>::decode(data, &limits) {
        client_side(msg);
    }
});
