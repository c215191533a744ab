//! Transports: how bytes reach a session.

pub(crate) mod wss;
