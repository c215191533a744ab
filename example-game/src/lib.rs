//! The arena example game rules.
