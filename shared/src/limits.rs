//! Every limit the decoder enforces, in one place.

/// Limits checked while decoding peer input, before anything is allocated.
///
/// The defaults suit a typical action game; raise them deliberately. Both ends
/// must agree on the limits they enforce on each other: a server that sends a
/// snapshot larger than the client's `max_server_message_bytes` will see that
/// client drop it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Largest client → server message, in bytes. Default: 4096.
    pub max_client_message_bytes: usize,
    /// Largest server → client message, in bytes. Default: 1 MiB.
    pub max_server_message_bytes: usize,
    /// Most entities in one snapshot (full or delta). Default: 16,384.
    pub max_entities_per_snapshot: usize,
    /// Most input frames in one `Inputs` message. Default: 32.
    pub max_inputs_per_message: usize,
    /// Most events in one `Events` message. Default: 256.
    pub max_events_per_message: usize,
    /// Longest text field (tokens, names, reasons), in bytes. Default: 256.
    pub max_text_bytes: usize,
    /// Most primitive fields in one flattened entity state. Default: 1,024.
    pub max_fields_per_entity: usize,
    /// Longest seat token in a hello (the optional trailing field), in
    /// bytes. Default: 1,024.
    pub max_seat_token_bytes: usize,
    /// Largest encoded game message (the value after the `GameMessage` tag,
    /// [`crate::GameProtocol::Message`]), in bytes. It must fit in
    /// `max_client_message_bytes` with its tag byte. Default: 1,024.
    pub max_game_message_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_client_message_bytes: 4096,
            max_server_message_bytes: 1 << 20,
            max_entities_per_snapshot: 16_384,
            max_inputs_per_message: 32,
            max_events_per_message: 256,
            max_text_bytes: 256,
            max_fields_per_entity: 1024,
            max_seat_token_bytes: 1024,
            max_game_message_bytes: 1024,
        }
    }
}
