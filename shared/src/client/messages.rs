//! The client's reliable game messages waiting to be sent
//! ([`super::ClientSession::send_message`], PROTOCOL.md §5.2).

use std::collections::VecDeque;

use serde::Serialize;

use crate::codec::{EncodeError, Writer};
use crate::limits::Limits;
use crate::message::ClientMessage;

/// Why [`super::ClientSession::send_message`] refused a message. Each is local
/// misuse: nothing was queued, and the session goes on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendMessageError {
    /// The session is not established: before the welcome, after
    /// [`super::ClientSession::leave`], or after it ended.
    #[error("the session is not established")]
    NotEstablished,
    /// The encoded message is larger than the server accepts
    /// ([`Limits::max_game_message_bytes`]); the server would close the
    /// session with `MessageTooBig`.
    #[error("game message of {size} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// The encoded size (the value after the tag).
        size: usize,
        /// The limit.
        max: usize,
    },
    /// [`super::ClientConfig::max_queued_messages`] messages already wait for
    /// [`super::ClientSession::poll_transmit`]: the driver is not sending.
    #[error("{max} game messages already wait to be sent")]
    QueueFull {
        /// The limit.
        max: usize,
    },
    /// serde refused the message.
    #[error(transparent)]
    Encode(#[from] EncodeError),
}

/// Encoded `GameMessage`s (tag included), oldest first, at most `max`.
#[derive(Debug, Clone, Default)]
pub(crate) struct MessageQueue {
    pending: VecDeque<Vec<u8>>,
}

impl MessageQueue {
    /// Encodes `msg` as a whole `GameMessage` and queues it.
    pub(crate) fn push<M: Serialize + serde::de::DeserializeOwned>(
        &mut self,
        msg: M,
        limits: &Limits,
        max: usize,
    ) -> Result<(), SendMessageError> {
        if self.pending.len() >= max {
            return Err(SendMessageError::QueueFull { max });
        }
        let mut w = Writer::new();
        ClientMessage::<(), M>::GameMessage(msg).encode(&mut w)?;
        let bytes = w.into_vec();
        // The value after the tag byte; the whole message must also fit the
        // client → server message limit.
        let size = bytes.len().saturating_sub(1);
        let max_bytes = limits
            .max_game_message_bytes
            .min(limits.max_client_message_bytes.saturating_sub(1));
        if size > max_bytes {
            return Err(SendMessageError::TooLarge {
                size,
                max: max_bytes,
            });
        }
        self.pending.push_back(bytes);
        Ok(())
    }

    pub(crate) fn pop(&mut self) -> Option<Vec<u8>> {
        self.pending.pop_front()
    }

    pub(crate) fn clear(&mut self) {
        self.pending.clear();
    }
}
