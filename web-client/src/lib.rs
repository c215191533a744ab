//! tickwire browser client.
